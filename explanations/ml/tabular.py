"""From a cleaned pandas frame to the all-float matrix that classifiers and explainers share.

Categorical features become integer codes into a sorted list of their original values (so every
explanation can name the value back), numeric features stay numbers with missing cells filled by the
training median. The last category of every categorical feature is ``MISSING`` so that a value never
seen in training, or a missing one, still has a code at explain time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from explanations.ml.explainers.base import FeatureSpace

MISSING = "(missing)"


def category_text(value: object) -> str:
    """A category as people read it: whole floats lose their ``.0`` (Heart's ``cp`` 4.0 -> "4")."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return str(value)


def _is_missing(value: object) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def categories_sort(values: Iterable[str]) -> list[str]:
    """Numbers in numeric order ("2" before "10"), anything else alphabetically."""
    values = list(values)
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values)


def _texts_codes(series: pd.Series, mapping: dict[str, int], unknown: int) -> np.ndarray:
    """Map each cell's text to a code, touching every distinct value once (fast on millions of rows)."""
    positions, uniques = pd.factorize(series, use_na_sentinel=True)
    lookup = np.array(
        [unknown if _is_missing(value) else mapping.get(category_text(value), unknown) for value in uniques] + [unknown],
        dtype=np.float64,
    )
    return lookup[positions]  # position -1 (missing) picks the trailing ``unknown``


def space_build(
    frame: pd.DataFrame, *, features: list[str], categorical: list[str], class_names: list[str]
) -> FeatureSpace:
    """Learn the encoding from the training frame: category lists per categorical feature, medians per numeric one."""
    unknown = sorted(set(features) - set(frame.columns)) + sorted(set(categorical) - set(features))
    if unknown:
        raise ValueError(f"Column(s) {', '.join(unknown)} are not among the frame's features.")
    categorical_set = set(categorical)
    space = FeatureSpace(feature_names=list(features), categorical=[], categories={}, class_names=list(class_names))
    for j, name in enumerate(features):
        series = frame[name]
        if name in categorical_set:
            present = {category_text(value) for value in pd.unique(series.dropna())}
            present.discard(MISSING)
            space.categorical.append(j)
            space.categories[j] = categories_sort(present) + [MISSING]
        else:
            median = pd.to_numeric(series, errors="coerce").median()
            space.medians[j] = 0.0 if pd.isna(median) else float(median)
    return space


def frame_encode(space: FeatureSpace, frame: pd.DataFrame) -> np.ndarray:
    """Encode rows with a learned space: codes for categories (unknown/missing -> ``MISSING``), numbers with medians."""
    missing = sorted(set(space.feature_names) - set(frame.columns))
    if missing:
        raise ValueError(f"The table lacks column(s) {', '.join(missing)} that the model was trained on.")
    encoded = np.empty((len(frame), len(space.feature_names)), dtype=np.float64)
    for j, name in enumerate(space.feature_names):
        series = frame[name]
        if j in space.categories:
            categories = space.categories[j]
            mapping = {text: code for code, text in enumerate(categories)}
            encoded[:, j] = _texts_codes(series, mapping, unknown=len(categories) - 1)
        else:
            values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            encoded[:, j] = np.where(np.isnan(values), space.medians.get(j, 0.0), values)
    return encoded


def labels_encode(series: pd.Series, class_values: Sequence[object]) -> np.ndarray:
    """Label cells -> class codes 0..k-1 in ``class_values`` order (compared as text); -1 for anything else."""
    mapping = {category_text(value): code for code, value in enumerate(class_values)}
    return _texts_codes(series, mapping, unknown=-1).astype(np.int64)
