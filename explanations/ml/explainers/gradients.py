"""Gradient attributions on the CNN through Captum: saliency, input × gradient, DeepLIFT, DeepLIFT SHAP, SmoothGrad.

Each class is one Captum method (its key, label and parameters are its entry in ``explanations.ml.catalogue``); the
numbers come from ``captum_methods`` (checked there against a hand-computed network). A batch of images is explained
for every class in one go (the inputs repeated once per class, in chunks), so a job's rows run batched on the GPU when
the worker has one. The maps are saved per class of the job, like Integrated Gradients' and SHAP's, so the row page
can show "why this class, why not each other class".
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from explanations.ml.engine import stop_check
from explanations.ml.explainers.base import Predictor, row_seed
from explanations.ml.explainers.captum_methods import (
    RANDOM_METHODS,
    Attribute,
    baselines_build,
    every_class_attribute,
    gradient_method_build,
    module_for_captum,
)
from explanations.ml.explainers.image import TorchImageExplainer


class CaptumImageExplainer(TorchImageExplainer):
    """A Captum method on the CNN: ``attribute_build`` says which; rows are explained in one batch per call."""

    algorithm: ClassVar[str] = ""
    baseline_kind: ClassVar[str] = ""  # "" none, "setting" (the ``baseline`` parameter), "background"

    @classmethod
    def samples_per_row(cls, params: dict[str, Any]) -> int:
        """About one backward pass per class: a handful of model calls, far fewer than a LIME row."""
        return 10

    def fit(self, X_train: np.ndarray, predictor: Predictor, space, *, seed: int = 0) -> CaptumImageExplainer:
        super().fit(X_train, predictor, space, seed=seed)
        self.module_ = module_for_captum(predictor.module)
        self.attribute_ = self.attribute_build()
        return self

    def model_baselines(self) -> np.ndarray | None:
        kind = self.settings.get("baseline") if self.baseline_kind == "setting" else self.baseline_kind
        if not kind:
            return None
        inputs = self.X_train_.transpose(0, 3, 1, 2)
        return baselines_build("sample" if kind == "background" else kind, inputs,
                               size=self.settings.get("background_size", 1), seed=self.seed_)

    def attribute_build(self) -> Attribute:
        settings = {**self.settings, "_range": 1.0}  # pixels are 0..1
        return gradient_method_build(self.key, self.module_, settings, self.model_baselines(), self.device_)

    def maps(self, X: np.ndarray, rows: list[int]) -> np.ndarray:
        """``(n, k_model, h, w, c)``: every row's map towards every trained class."""
        k, per_input = len(self.classes_), self.inputs_per_image()
        if self.key not in RANDOM_METHODS:
            values = every_class_attribute(self.attribute_, self.tensor(X), k, on_chunk=stop_check, per_input=per_input)
        else:  # a seed per row: a row's map does not depend on the rows batched with it
            values = np.concatenate([every_class_attribute(self.attribute_, self.tensor(X[i:i + 1]), k,
                                                           seed=row_seed(self.seed_, row) % (2**31), on_chunk=stop_check,
                                                           per_input=per_input)
                                     for i, row in enumerate(rows)])
        return values.transpose(0, 1, 3, 4, 2)

    def inputs_per_image(self) -> int:
        """Model inputs one explained image becomes inside the method (DeepLIFT SHAP: one per background image)."""
        return self.settings.get("background_size", 1) if self.baseline_kind == "background" else 1

    def _explain_rows(
        self, X: np.ndarray, rows: list[int], predicted: np.ndarray, proba: np.ndarray | None = None
    ) -> list[dict[str, Any]]:
        proba = self.predict_proba(X) if proba is None else proba
        maps = self.maps(X, rows)
        out = []
        for values, label, probs in zip(maps, predicted, proba):
            explained, runner_up = self.explained_classes(int(label), probs)
            data = self.map_data(values, explained, runner_up, self.extra())
            out.append({"label": int(label), "target": explained, "runner_up": runner_up, **data})
        return out

    def extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"algorithm": self.algorithm}
        if self.baseline_kind == "setting":
            extra["baseline"] = self.settings["baseline"]
        return extra


class SaliencyExplainer(CaptumImageExplainer):
    algorithm = "saliency"


class InputXGradientExplainer(CaptumImageExplainer):
    algorithm = "input x gradient"


class DeepLiftExplainer(CaptumImageExplainer):
    algorithm = "deeplift"
    baseline_kind = "setting"


class DeepLiftShapExplainer(CaptumImageExplainer):
    algorithm = "deeplift shap"
    baseline_kind = "background"

    @classmethod
    def samples_per_row(cls, params: dict[str, Any]) -> int:
        return int(params.get("background_size", 20))


class SmoothGradExplainer(CaptumImageExplainer):
    algorithm = "smoothgrad"
    baseline_kind = "zero"

    @classmethod
    def samples_per_row(cls, params: dict[str, Any]) -> int:
        return int(params.get("nt_samples", 20)) * (16 if params.get("inner") == "integrated_gradients" else 1)

    def extra(self) -> dict[str, Any]:
        return {"algorithm": f"smoothgrad over {self.settings['inner'].replace('_', ' ')}"}
