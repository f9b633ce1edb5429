"""Model files written before the ML code moved into ``explanations.ml`` still load (and only through the loader)."""

from __future__ import annotations

import importlib
import io
import sys

import joblib
import numpy as np
import pytest

from explanations.ml import torch_mlp
from explanations.ml.model_files import MOVED_MODULES, model_file_load
from explanations.ml.torch_mlp import TorchMLPClassifier


def dumped_under(model, monkeypatch: pytest.MonkeyPatch, old_module: str) -> bytes:
    """``joblib.dump`` of ``model`` as an earlier version wrote it: its class named by ``old_module``."""
    with monkeypatch.context() as patch:
        patch.setattr(type(model), "__module__", old_module)
        patch.setitem(sys.modules, old_module, sys.modules[MOVED_MODULES[old_module]])
        buffer = io.BytesIO()
        joblib.dump(model, buffer)
    return buffer.getvalue()


def test_a_model_pickled_under_its_old_module_name_loads(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] > 0).astype(int)
    model = TorchMLPClassifier(epochs=3, random_state=0, device="cpu").fit(X, y)
    old = dumped_under(model, monkeypatch, "explanations.torch_mlp")
    assert b"explanations.torch_mlp" in old and b"explanations.ml" not in old
    assert TorchMLPClassifier.__module__ == "explanations.ml.torch_mlp" and "explanations.torch_mlp" not in sys.modules

    with pytest.raises(ModuleNotFoundError, match="explanations.torch_mlp"):
        joblib.load(io.BytesIO(old))  # what the worker would hit without the loader
    loaded = model_file_load(io.BytesIO(old))

    assert type(loaded) is torch_mlp.TorchMLPClassifier
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), atol=1e-6)
    assert not set(MOVED_MODULES) & set(sys.modules)  # the old names lived only while unpickling


def test_a_model_pickled_now_loads_the_same_way():
    model = TorchMLPClassifier(epochs=2, random_state=1, device="cpu").fit(np.eye(6), np.arange(6) % 2)
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    assert b"explanations.ml.torch_mlp" in buffer.getvalue()
    loaded = model_file_load(io.BytesIO(buffer.getvalue()))
    np.testing.assert_allclose(loaded.predict_proba(np.eye(6)), model.predict_proba(np.eye(6)), atol=1e-6)


@pytest.mark.parametrize("old", sorted(MOVED_MODULES))
def test_every_old_module_name_points_at_a_module_that_exists_and_is_gone_itself(old):
    assert importlib.import_module(MOVED_MODULES[old]).__name__ == MOVED_MODULES[old]
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(old)
