"""Classifiers at work on tables: fit the pipeline a catalogue entry builds, and wrap it as a ``Predictor``.

What each classifier is (key, label, parameters, queue, builder) is written in ``explanations.ml.catalogue``;
its models are built in ``explanations.ml.pipelines`` (and beside the torch networks), imported when a model
is first fitted. This module needs numpy only, so job validation in the web process may import it.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from explanations.ml.catalogue import (
    CLASSIFIER_VARIANTS,
    CLASSIFIERS,
    ClassifierSpec,
    classifier_for,
    classifier_spec_get,
)
from explanations.ml.explainers.base import ClassProbabilities, FeatureSpace, Predictor
from explanations.ml.params import params_clean

# The registry itself is the catalogue's; worker code reads it from here too.
__all__ = ["CLASSIFIERS", "CLASSIFIER_VARIANTS", "PREDICT_JOBS", "ClassifierSpec", "classifier_fit", "classifier_for",
           "classifier_spec_get", "predict_proba_full", "predictor_build", "transformed_groups"]

# Fitted models predict on one core: the explainers call them with a few hundred rows at a time, where a pool of
# threads costs more than it saves (a 200-tree forest on 10 Adult rows: 14 ms on one job, 90 ms on two), and the
# engines spread larger work over their own threads (``engine_threads``).
PREDICT_JOBS = 1


def classifier_fit(
    key: str, params: dict[str, Any], space: FeatureSpace, X: np.ndarray, y: np.ndarray, *, seed: int
) -> Any:
    """Validate ``params``, build and fit the pipeline on encoded rows ``X`` and class codes ``y``."""
    spec = classifier_spec_get(key)
    cleaned = params_clean(spec.params, params)
    if len(np.unique(y)) < 2:
        raise ValueError("The training rows contain only one class; a classifier needs at least two.")
    if "n_neighbors" in cleaned:
        cleaned["n_neighbors"] = min(cleaned["n_neighbors"], len(X))  # a small table cannot have more neighbours
    model = spec.load()(cleaned, space, seed)
    with warnings.catch_warnings():
        # SVC(probability=True) is deprecated in scikit-learn 1.9 (gone in 1.11), but its suggested replacement,
        # CalibratedClassifierCV, refuses classes with fewer rows than folds, which real tables have.
        warnings.filterwarnings("ignore", message="The `probability` parameter was deprecated", category=FutureWarning)
        model.fit(X, y)
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    if getattr(final, "n_jobs", None) not in (None, PREDICT_JOBS):
        final.set_params(n_jobs=PREDICT_JOBS)
    return model


def predict_proba_full(model: Any, X: np.ndarray, n_classes: int, *, predict_proba=None) -> np.ndarray:
    """Probabilities for every class in the space (from ``predict_proba``, else the model's own); a class missing
    from the training split gets 0."""
    known = (predict_proba or model.predict_proba)(X)
    full = np.zeros((known.shape[0], n_classes), dtype=np.float64)
    full[:, np.asarray(model.classes_, dtype=int)] = known
    return full


def transformed_groups(model: Any) -> list[list[int]]:
    """For each encoded feature, the columns of the ``prep`` output it became (one-hot columns or one number)."""
    prep = model.named_steps["prep"]
    n_features = prep.n_features_in_
    groups: list[list[int]] = [[] for _ in range(n_features)]
    start = 0
    for name, transformer, columns in prep.transformers_:
        if name == "remainder":
            continue
        if name == "categorical":
            widths = [len(categories) for categories in transformer.categories_]
        else:
            widths = [1] * len(columns)
        for column, width in zip(columns, widths, strict=True):
            groups[column] = list(range(start, start + width))
            start += width
    return groups


def predictor_build(key: str, model: Any, space: FeatureSpace) -> Predictor:
    """What explainers may call for this fitted model, including hooks for TreeSHAP / linear SHAP."""
    if hasattr(model, "predictor"):  # a model a user uploaded says how it is called (``explanations.ml.uploaded``)
        return model.predictor(key, space)
    family = classifier_spec_get(key).family
    estimator = model.named_steps["model"]
    n_classes = len(space.class_names)
    transform, predict = model.named_steps["prep"].transform, model.predict_proba
    from explanations.ml.engine.table_predict import table_predictor  # numba: workers only

    fast = table_predictor(model)  # the same numbers without scikit-learn's cost per call, where it covers the model
    if fast is not None:
        transform, predict = fast.transform, fast.predict_proba

    def proba(X: np.ndarray) -> np.ndarray:
        return predict_proba_full(model, np.asarray(X, dtype=np.float64), n_classes, predict_proba=predict)

    if fast is not None and fast.predict_label is not None:
        classes = np.asarray(model.classes_, dtype=np.int64)  # sorted: the first of tied classes stays the first
        proba = ClassProbabilities(proba, lambda X: classes[fast.predict_label(np.asarray(X, dtype=np.float64))])
    return Predictor(
        predict_proba=proba,
        key=key,
        tree_model=estimator if family == "tree" else None,
        linear_model=estimator if family == "linear" else None,
        transform=transform,
        groups=transformed_groups(model),
        pipeline=model,
    )
