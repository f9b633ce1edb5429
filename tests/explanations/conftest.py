"""Small real tables for the ML-layer tests (no Django, no database)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from explanations.ml.explainers.base import FeatureSpace
from explanations.ml.tabular import frame_encode, labels_encode, space_build

REPO_ROOT = Path(__file__).resolve().parents[2]
DATASETS = next(
    (path for path in (REPO_ROOT.parent / "shared" / "datasets", REPO_ROOT / "shared" / "datasets") if path.is_dir()),
    REPO_ROOT.parent / "shared" / "datasets",
)
THAL_NAMES = {3.0: "normal", 6.0: "fixed defect", 7.0: "reversible defect"}


@dataclass
class Table:
    space: FeatureSpace
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def _split(space: FeatureSpace, frame: pd.DataFrame, y: np.ndarray, n_train: int, seed: int = 0) -> Table:
    order = np.random.default_rng(seed).permutation(len(frame))
    train, test = order[:n_train], order[n_train:]
    X = frame_encode(space, frame)
    return Table(space, X[train], y[train], X[test], y[test])


@pytest.fixture(scope="session")
def heart_csv_frame() -> pd.DataFrame:
    """Heart disease as the web side hands it over: '?' already missing, ``thal`` as text, others numbers."""
    frame = pd.read_csv(DATASETS / "heart.csv", na_values="?")
    frame["thal"] = frame["thal"].map(THAL_NAMES).astype(object)
    return frame


@pytest.fixture(scope="session")
def heart_table(heart_csv_frame: pd.DataFrame) -> Table:
    features = [c for c in heart_csv_frame.columns if c != "num"]
    space = space_build(
        heart_csv_frame,
        features=features,
        categorical=["sex", "cp", "slope", "ca", "thal"],
        class_names=["no disease", "mild", "moderate", "severe", "critical"],
    )
    return _split(space, heart_csv_frame, labels_encode(heart_csv_frame["num"], [0, 1, 2, 3, 4]), n_train=120)


@pytest.fixture(scope="session")
def zoo_table() -> Table:
    """Zoo: 7 classes, some with 4-5 animals; every feature but ``legs`` declared categorical."""
    frame = pd.read_csv(DATASETS / "zoo.csv").drop(columns=["animal_name"])
    features = [c for c in frame.columns if c != "class_type"]
    space = space_build(
        frame,
        features=features,
        categorical=[c for c in features if c != "legs"],
        class_names=["mammal", "bird", "reptile", "fish", "amphibian", "bug", "invertebrate"],
    )
    return _split(space, frame, labels_encode(frame["class_type"], [1, 2, 3, 4, 5, 6, 7]), n_train=70)


@pytest.fixture
def one_torch_thread():
    """Two cores shared by several test runs: one torch thread each is faster and bit-for-bit repeatable."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
