"""The CNN at work on images: fit it, wrap it as a predictor, store its attribution maps.

The images themselves are read from pixel columns by ``explanations.job_data.image_data_from_frame``.
No Django here.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from explanations.ml.catalogue import classifier_for
from explanations.ml.explainers.base import FeatureSpace
from explanations.ml.explainers.image import ImagePredictor
from explanations.ml.params import params_clean
from explanations.ml.torch_cnn import TorchCNNClassifier


def cnn_fit(params: dict[str, Any], images: np.ndarray, y: np.ndarray, *, seed: int, on_epoch=None) -> TorchCNNClassifier:
    if len(np.unique(y)) < 2:
        raise ValueError("The training rows contain only one class; a classifier needs at least two.")
    spec = classifier_for("cnn", "image")
    model = spec.load()(params_clean(spec.params, params), None, seed)
    return model.fit(images, y, on_epoch=on_epoch)


def image_predictor_build(key: str, model: TorchCNNClassifier, space: FeatureSpace) -> ImagePredictor:
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
