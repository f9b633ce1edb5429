"""Everything a job computes from its dataset before explaining: encoded table (or messages, or images), labels,
split, row names.

Built the same way (same seed, same split) by every task of a job, so tasks can run on any worker,
in any order, and twice. A text schema names one free-text column; an image schema has ``image_shape``, and
its feature columns, in order, are the pixels row by row (``pixel{width*row+col}``, channels last).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.conf import settings

from datasets.ingest import value_text
from datasets.models import Dataset
from datasets.selectors import dataset_frame_load
from explainer_site.exceptions import ApplicationError
from explanations.ml.explainers.base import FeatureSpace
from explanations.ml.lazy import lazy
from explanations.ml.tabular import frame_encode, space_build

# Imported where models are fitted and plots drawn (workers), not when the web process loads this module.
train_test_split = lazy("sklearn.model_selection", "train_test_split")

EXPLAINER_BACKGROUND_MAX = 10_000
FEATURE_MAGNITUDE_MAX = float(np.finfo(np.float32).max)  # tree models compare features as float32


@dataclass
class JobData:
    space: FeatureSpace
    X: np.ndarray  # encoded, every row of the file
    y: np.ndarray  # class index per row, -1 where the label is missing
    class_values: list[str]
    train_idx: np.ndarray
    test_idx: np.ndarray
    row_names: list[str]
    notes: list[str]

    @property
    def n_rows(self) -> int:
        return len(self.X)

    def background(self, seed: int) -> np.ndarray:
        """Training rows the explainers learn the data's distribution from (sampled when huge)."""
        idx = self.train_idx
        if len(idx) > EXPLAINER_BACKGROUND_MAX:
            idx = np.random.default_rng(seed).choice(idx, EXPLAINER_BACKGROUND_MAX, replace=False)
        return self.X[np.sort(idx)]

    def row_label(self, row: int) -> str:
        return self.space.class_names[self.y[row]] if self.y[row] >= 0 else ""

    @property
    def reference_class(self) -> int:
        """The one class every job-wide plot speaks about (SHAP summary, partial dependence, what-if curves), so a
        page never says "towards Survived" beside "probability of Died" (issue 17, item 9).

        A binary label's second class (the usual "positive" one: Survived, >50K, spam); with more classes the most
        common one among the training labels. It depends on the data only, never on a classifier or on which rows
        were explained, so every tab and every row of a job agree.
        """
        names = self.space.class_names
        if len(names) == 2:
            return 1
        labels = self.y[self.train_idx]
        labels = labels[labels >= 0]
        return int(np.bincount(labels, minlength=len(names)).argmax()) if len(labels) else 0


def job_data_build(*, dataset: Dataset, schema: dict, test_size: float, seed: int) -> JobData:
    frame = dataset_frame_load(dataset=dataset)
    return job_data_from_frame(frame, schema=schema, test_size=test_size, seed=seed)


def job_data_from_frame(frame: pd.DataFrame, *, schema: dict, test_size: float, seed: int) -> JobData:
    split = labels_split(frame, schema=schema, test_size=test_size, seed=seed)
    features = schema["features"]
    features_magnitude_check(frame, features=[f for f in features if f not in schema["categorical"]])
    space = space_build(frame.iloc[split.train_idx][features], features=features, categorical=schema["categorical"],
                        class_names=split.class_names)
    X = frame_encode(space, frame[features])
    return JobData(space=space, X=X, y=split.y, class_values=split.class_values, train_idx=split.train_idx,
                   test_idx=split.test_idx, row_names=row_names_of(frame, schema), notes=split.notes)


def text_data_from_frame(frame: pd.DataFrame, *, schema: dict, test_size: float, seed: int) -> JobData:
    """Messages as an object array (missing text becomes an empty message) with the usual labels and split."""
    split = labels_split(frame, schema=schema, test_size=test_size, seed=seed)
    column = schema["text"][0]
    texts = np.array([str(v) if pd.notna(v) else "" for v in frame[column]], dtype=object)
    space = FeatureSpace(feature_names=[column], categorical=[], categories={}, class_names=split.class_names)
    notes = list(split.notes)
    empty = int(sum(not t.strip() for t in texts))
    if empty:
        notes.append(f"{empty} rows have no text in “{column}”; they are read as empty messages.")
    return JobData(space=space, X=texts, y=split.y, class_values=split.class_values, train_idx=split.train_idx,
                   test_idx=split.test_idx, row_names=row_names_of(frame, schema), notes=notes)


def image_shape_of(schema: dict) -> tuple[int, int, int]:
    shape = [int(s) for s in schema["image_shape"]]
    return (shape[0], shape[1], shape[2] if len(shape) > 2 else 1)


def pixels_to_images(pixels: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """(n, h*w*c) numbers -> (n, h, w, c) float32 in 0..1 (0..255 is scaled); missing pixels are black."""
    pixels = np.nan_to_num(np.asarray(pixels, dtype=np.float32), nan=0.0)
    if pixels.size and pixels.max() > 1.0:
        pixels = pixels / 255.0
    return np.clip(pixels, 0.0, 1.0).reshape(len(pixels), *shape)


def image_data_from_frame(frame: pd.DataFrame, *, schema: dict, test_size: float, seed: int) -> JobData:
    split = labels_split(frame, schema=schema, test_size=test_size, seed=seed)
    features = schema["features"]
    pixels = frame[features].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float32, na_value=np.nan)
    images = pixels_to_images(pixels, image_shape_of(schema))
    space = FeatureSpace(feature_names=list(features), categorical=[], categories={}, class_names=split.class_names)
    return JobData(space=space, X=images, y=split.y, class_values=split.class_values, train_idx=split.train_idx,
                   test_idx=split.test_idx, row_names=row_names_of(frame, schema), notes=list(split.notes))


def features_magnitude_check(frame: pd.DataFrame, *, features: list[str]) -> None:
    """Numbers past float32's range (about 3.4e38) are finite in the file but infinite to the tree models, which
    refuse them: say which columns, before any training, instead of failing on an internal error."""
    huge = [f for f in features if pd.api.types.is_numeric_dtype(frame[f])
            and (frame[f].abs() > FEATURE_MAGNITUDE_MAX).any()]
    if huge:
        raise ApplicationError(
            f"{', '.join(f'“{f}”' for f in huge[:5])} hold{'s' if len(huge) == 1 else ''} numbers larger than 3.4 × 10³⁸, "
            "more than the classifiers can compute with. Rescale the column (divide it by a power of ten) or untick it.",
            {"field": "features"})


@dataclass
class LabelSplit:
    """The label as class codes and the train/test split: the same for every modality (table, text, image)."""

    y: np.ndarray
    class_values: list[str]
    class_names: list[str]
    train_idx: np.ndarray
    test_idx: np.ndarray
    notes: list[str]


def labels_split(frame: pd.DataFrame, *, schema: dict, test_size: float, seed: int) -> LabelSplit:
    label = schema["label"]
    class_values = list(schema["class_names"].keys())
    class_names = [schema["class_names"][v] for v in class_values]
    label_text = frame[label].map(lambda v: value_text(v) if pd.notna(v) else None)
    code_of = {v: i for i, v in enumerate(class_values)}
    y = np.array([code_of.get(v, -1) if v is not None else -1 for v in label_text], dtype=int)
    labelled = np.flatnonzero(y >= 0)
    notes = []
    if len(labelled) < len(y):
        notes.append(f"{len(y) - len(labelled)} rows have no value in “{label}”; they are not used for training or testing.")
    present = sorted(set(y[labelled]))
    if len(present) < 2:
        raise ApplicationError(f"“{label}” needs at least two classes with rows to train a classifier.")
    if len(labelled) < 10:
        raise ApplicationError(f"Only {len(labelled)} rows have a label; at least 10 are needed to train and test a classifier.")
    counts = np.bincount(y[labelled], minlength=len(class_values))
    n_test = max(int(round(test_size * len(labelled))), 1)
    stratify = y[labelled] if counts[counts > 0].min() >= 2 and n_test >= len(present) else None
    if stratify is None:
        notes.append("Some classes have a single row, so the test split is random rather than balanced by class.")
    train_idx, test_idx = train_test_split(labelled, test_size=test_size, random_state=seed, stratify=stratify)
    rng = np.random.default_rng(seed)
    for name, limit in (("training", settings.EXPLAINER_MAX_TRAIN_ROWS), ("test", settings.EXPLAINER_MAX_TEST_ROWS)):
        idx = train_idx if name == "training" else test_idx
        if len(idx) > limit:  # big tables: these models learn (and are scored) as well from a large random sample
            notes.append(f"Used a random sample of {limit:,} of the {len(idx):,} {name} rows, to keep the job quick.")
            idx = rng.choice(idx, size=limit, replace=False)
            train_idx, test_idx = (idx, test_idx) if name == "training" else (train_idx, idx)
    return LabelSplit(y=y, class_values=class_values, class_names=class_names, train_idx=np.sort(train_idx),
                      test_idx=np.sort(test_idx), notes=notes)


def row_names_of(frame: pd.DataFrame, schema: dict) -> list[str]:
    row_name = schema.get("row_name") or ""
    if row_name:
        return [value_text(v) if pd.notna(v) else "" for v in frame[row_name]]
    return [""] * len(frame)
