"""The bench's tables and models: encoded exactly as the app encodes uploads, trained with the app's pipelines."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline

from explanations.ml.classifiers import classifier_fit, predict_proba_full, predictor_build, transformed_groups
from explanations.ml.engine.table_predict import table_predictor
from explanations.ml.explainers.base import FeatureSpace, Predictor
from explanations.ml.pipelines import table_pipeline
from explanations.ml.tabular import frame_encode, labels_encode, space_build

REPO_ROOT = Path(__file__).resolve().parents[1]
DATASETS = next(
    (path for path in (REPO_ROOT.parent / "shared" / "datasets", REPO_ROOT / "shared" / "datasets") if path.is_dir()),
    REPO_ROOT.parent / "shared" / "datasets",
)
ADULT_CATEGORICAL = ["workclass", "education", "marital-status", "occupation", "relationship", "race", "sex", "native-country"]


@dataclass
class Table:
    name: str
    space: FeatureSpace
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def _split(name: str, space: FeatureSpace, X: np.ndarray, y: np.ndarray, test_size: float, seed: int) -> Table:
    order = np.random.default_rng(seed).permutation(len(X))
    n_test = int(round(test_size * len(X)))
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    return Table(name, space, X[train], y[train], X[test], y[test])


def adult_table(seed: int = 0) -> Table | None:
    """UCI Adult without ``fnlwgt``: 13 features, 8 of them categorical; None when the shared file is absent."""
    path = DATASETS / "adult.csv"
    if not path.is_file():
        return None
    frame = pd.read_csv(path, skipinitialspace=True, na_values="?")
    features = [c for c in frame.columns if c not in {"income", "fnlwgt"}]
    space = space_build(frame, features=features, categorical=ADULT_CATEGORICAL, class_names=["<=50K", ">50K"])
    y = labels_encode(frame["income"], ["<=50K", ">50K"])
    return _split("adult", space, frame_encode(space, frame[features]), y, test_size=0.25, seed=seed)


def breast_cancer_table(seed: int = 0) -> Table:
    """scikit-learn's breast cancer table: 30 numeric features."""
    data = load_breast_cancer(as_frame=True)
    frame = data.frame
    features = list(data.feature_names)
    space = space_build(frame, features=features, categorical=[], class_names=list(data.target_names))
    y = frame["target"].to_numpy(dtype=np.int64)
    return _split("breast_cancer", space, frame_encode(space, frame[features]), y, test_size=0.25, seed=seed)


def scikit_learn_calls(predictor: Predictor, table: Table) -> Predictor:
    """The predictor calling its pipeline as scikit-learn does (``pipeline.predict_proba``), as a notebook calls a
    model: the engine sections compare the engines with the libraries on that same callable. The app's compiled
    predict path (``explanations.ml.engine.table_predict``) is measured on its own (``bench.predict``)."""
    model, n_classes = predictor.pipeline, len(table.space.class_names)
    return replace(predictor, predict_proba=lambda X: predict_proba_full(model, np.asarray(X, dtype=np.float64), n_classes),
                   transform=model.named_steps["prep"].transform)


def forest_predictor(table: Table, *, min_samples_leaf: int = 1, seed: int = 0) -> Predictor:
    """A 100-tree random forest in the app's own pipeline (one-hot categorical codes), on one core."""
    model = RandomForestClassifier(n_estimators=100, min_samples_leaf=min_samples_leaf, random_state=seed, n_jobs=1)
    pipeline: Pipeline = table_pipeline(table.space, model, scale=False)
    pipeline.fit(table.X_train, table.y_train)
    predictor = scikit_learn_calls(predictor_build("random_forest", pipeline, table.space), table)
    predictor.groups = transformed_groups(pipeline)
    return predictor


def registry_predictor(table: Table, key: str, params: dict | None = None, *, seed: int = 0,
                       compiled: bool = False) -> Predictor:
    """A classifier from the app's registry, trained as a job trains it; called as scikit-learn calls it unless
    ``compiled`` (the app's own predict path)."""
    model = classifier_fit(key, params or {}, table.space, table.X_train, table.y_train, seed=seed)
    predictor = predictor_build(key, model, table.space)
    return predictor if compiled or table_predictor(model) is None else scikit_learn_calls(predictor, table)
