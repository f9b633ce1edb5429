from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

from explanations.ml.torch_mlp import TorchMLPClassifier


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6))
    y = np.where(X[:, 0] + X[:, 1] > 0, 2, 5)  # labels need not be 0..k-1
    return X, y


def test_fit_is_reproducible_for_a_seed_and_leaves_global_rng_alone(data) -> None:
    X, y = data
    state = torch.random.get_rng_state()
    first = TorchMLPClassifier(epochs=15, random_state=7, device="cpu").fit(X, y)
    second = clone(first).fit(X, y)
    other = TorchMLPClassifier(epochs=15, random_state=8, device="cpu").fit(X, y)
    assert torch.equal(torch.random.get_rng_state(), state)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    assert not np.array_equal(first.predict_proba(X), other.predict_proba(X))
    np.testing.assert_array_equal(first.classes_, [2, 5])
    assert first.device_.type == "cpu"
    assert (first.predict(X) == y).mean() > 0.9


def test_pickle_round_trip_keeps_predictions(data) -> None:
    X, y = data
    model = TorchMLPClassifier(epochs=5, random_state=0).fit(X, y)
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), atol=1e-6)
    assert hasattr(model, "module_")  # pickling must not strip the live model


@pytest.mark.gpu
def test_fits_on_cuda_when_available(data) -> None:
    X, y = data
    model = TorchMLPClassifier(epochs=10, random_state=0).fit(X, y)
    assert model.device_.type == "cuda"
    assert next(model.module_.parameters()).is_cuda
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    loaded = pickle.loads(pickle.dumps(model))
    assert loaded.device_.type == "cuda"
    np.testing.assert_allclose(loaded.predict_proba(X), proba, atol=1e-5)
