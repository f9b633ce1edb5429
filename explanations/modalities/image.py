"""Image datasets: pixel columns read as images (height, width, channels), a CNN, and its predictor.

A dataset is an image dataset when its schema has ``image_shape``: the feature columns, in order, are the
pixels row by row (``pixel{width*row+col}``, channels last). Values 0..255 are scaled to 0..1 (maps that
already lie in 0..1 are kept). No Django here.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd

from explanations.classifiers import CLASSIFIERS
from explanations.explainers.base import TabularSpace, params_clean
from explanations.explainers.image import ImagePredictor
from explanations.job_data import JobData, labels_split, row_names_of
from explanations.lazy import lazy

TorchCNNClassifier = lazy("explanations.torch_cnn", "TorchCNNClassifier")


def image_shape_of(schema: dict) -> tuple[int, int, int]:
    shape = [int(s) for s in schema["image_shape"]]
    return (shape[0], shape[1], shape[2] if len(shape) > 2 else 1)


def pixels_to_images(pixels: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """(n, h*w*c) numbers -> (n, h, w, c) float32 in 0..1; missing pixels are black."""
    pixels = np.nan_to_num(np.asarray(pixels, dtype=np.float32), nan=0.0)
    if pixels.size and pixels.max() > 1.0:
        pixels = pixels / 255.0
    return np.clip(pixels, 0.0, 1.0).reshape(len(pixels), *shape)


def image_data_from_frame(frame: pd.DataFrame, *, schema: dict, test_size: float, seed: int) -> JobData:
    split = labels_split(frame, schema=schema, test_size=test_size, seed=seed)
    features = schema["features"]
    pixels = frame[features].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float32, na_value=np.nan)
    images = pixels_to_images(pixels, image_shape_of(schema))
    space = TabularSpace(feature_names=list(features), categorical=[], categories={}, class_names=split.class_names)
    return JobData(space=space, X=images, y=split.y, class_values=split.class_values, train_idx=split.train_idx,
                   test_idx=split.test_idx, row_names=row_names_of(frame, schema), notes=list(split.notes))


def cnn_fit(params: dict[str, Any], images: np.ndarray, y: np.ndarray, *, seed: int, on_epoch=None) -> TorchCNNClassifier:
    if len(np.unique(y)) < 2:
        raise ValueError("The training rows contain only one class; a classifier needs at least two.")
    model = CLASSIFIERS["cnn"].build(params_clean(CLASSIFIERS["cnn"].params, params), None, seed)
    return model.fit(images, y, on_epoch=on_epoch)


def image_predictor_build(key: str, model: TorchCNNClassifier, space: TabularSpace) -> ImagePredictor:
    n_classes = len(space.class_names)
    classes = np.asarray(model.classes_, dtype=int)

    def predict_proba(images: np.ndarray) -> np.ndarray:
        known = model.predict_proba(np.asarray(images, dtype=np.float32))
        full = np.zeros((len(known), n_classes))
        full[:, classes] = known
        return full

    return ImagePredictor(predict_proba=predict_proba, key=key, module=model.module_, device=model.device_,
                          classes=classes)


def attribution_npy(attribution: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(attribution, dtype=np.float32), allow_pickle=False)
    return buffer.getvalue()
