"""What-if curves (no Django here): how the predicted probabilities move as one feature sweeps its range.

An ICE curve (Goldstein et al., 2015) changes one feature of one row and keeps the rest; partial dependence
(Friedman, 2001) averages those curves over many rows. Both are computed on the encoded matrix, so the same
grid serves every classifier and the curves of several models can be overlaid.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from explanations.ml.explainers.base import FeatureSpace
from explanations.ml.tabular import MISSING

PredictProba = Callable[[np.ndarray], np.ndarray]

GRID_POINTS = 20
PD_ROWS_MAX = 500


def feature_grid(space: FeatureSpace, feature: int, values: np.ndarray, *, points: int = GRID_POINTS,
                 current: float | None = None) -> np.ndarray:
    """Where to evaluate: every category of a categorical feature; for a number, its distinct values when few,
    else evenly spaced points between the 1st and 99th percentile of ``values`` (the training column).

    Every categorical feature's codes end with ``MISSING`` (see ``tabular.space_build``); it is a point of the grid
    only when the column had missing values in ``values``, or when ``current`` (the explained row's own code) is it.
    """
    if feature in space.categories:
        categories = space.categories[feature]
        codes = np.arange(len(categories), dtype=np.float64)
        if categories and categories[-1] == MISSING:
            missing = float(len(categories) - 1)
            seen = np.any(np.asarray(values, dtype=np.float64) == missing) or (
                current is not None and round(float(current)) == missing)
            if not seen:
                codes = codes[:-1]
        return codes
    column = np.asarray(values, dtype=np.float64)
    column = column[np.isfinite(column)]
    if not len(column):
        return np.array([space.medians.get(feature, 0.0)], dtype=np.float64)
    distinct = np.unique(column)
    if len(distinct) <= points:
        return distinct
    low, high = np.percentile(column, [1, 99])
    if high <= low:
        low, high = float(distinct[0]), float(distinct[-1])
    return np.linspace(low, high, points)


def grid_labels(space: FeatureSpace, feature: int, grid: np.ndarray) -> list[str]:
    return [space.value_text(feature, value) for value in grid]


def ice_curve(predict_proba: PredictProba, x: np.ndarray, feature: int, grid: np.ndarray) -> np.ndarray:
    """Probabilities (len(grid), n_classes) of row ``x`` with ``feature`` set to each grid value."""
    rows = np.repeat(np.asarray(x, dtype=np.float64)[None, :], len(grid), axis=0)
    rows[:, feature] = grid
    return np.asarray(predict_proba(rows), dtype=np.float64)


def partial_dependence(predict_proba: PredictProba, X: np.ndarray, feature: int, grid: np.ndarray, *,
                       max_rows: int = PD_ROWS_MAX, seed: int = 0) -> np.ndarray:
    """Mean probabilities (len(grid), n_classes) over rows ``X`` (a random ``max_rows`` of them when more)."""
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    if len(X) > max_rows:
        X = X[np.sort(np.random.default_rng(seed).choice(len(X), max_rows, replace=False))]
    rows = np.repeat(X[None, :, :], len(grid), axis=0)  # (grid, n, d)
    rows[:, :, feature] = np.asarray(grid, dtype=np.float64)[:, None]
    proba = np.asarray(predict_proba(rows.reshape(-1, X.shape[1])), dtype=np.float64)
    return proba.reshape(len(grid), len(X), -1).mean(axis=1)


def curves_by_class(proba: np.ndarray, class_names: list[str]) -> dict[str, list[float]]:
    """(grid, classes) -> {class name: [p, ...]}, the API's shape."""
    return {name: [round(float(p), 6) for p in proba[:, k]] for k, name in enumerate(class_names)}
