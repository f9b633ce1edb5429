"""Text classifiers at work: fit the TF-IDF pipeline of a key's "text" entry on messages and wrap it as a predictor.

The specs live in the one registry (``explanations.ml.catalogue``); the messages are read by
``explanations.job_data.text_data_from_frame``. No Django here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from explanations.ml.catalogue import classifier_for
from explanations.ml.classifiers import predict_proba_full
from explanations.ml.explainers.base import FeatureSpace, Predictor


def text_classifier_fit(key: str, params: dict[str, Any], space: FeatureSpace, texts: np.ndarray, y: np.ndarray,
                        *, seed: int) -> Any:
    if len(np.unique(y)) < 2:
        raise ValueError("The training rows contain only one class; a classifier needs at least two.")
    model = classifier_for(key, "text").load()(params, space, seed)
    return model.fit(list(texts), y)


def text_predictor_build(key: str, model: Any, space: FeatureSpace) -> Predictor:
    n_classes = len(space.class_names)
    return Predictor(predict_proba=lambda texts: predict_proba_full(model, [str(t) for t in texts], n_classes), key=key)
