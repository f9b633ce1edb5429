"""Gradient attributions on the tabular PyTorch MLP (Captum): saliency, input × gradient, DeepLIFT, Integrated
Gradients, Gradient SHAP, SmoothGrad, attributing to the table's original columns.

The network sees the rows after the pipeline's encoding (numbers scaled, categories one-hot); each method's
attributions to those inputs are summed back onto the column they came from (``Predictor.groups``), as the
other table explainers' are, and the result reads like LIME's bars: ``age = 54: +0.31``. Only the ``mlp``
classifier has gradients: ``classifiers`` says so, and the job form refuses other pairings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from explanations.ml.explainers.base import (
    BaseExplainer,
    ExplainerError,
    FeatureSpace,
    Predictor,
    category_condition,
    row_seed,
)
from explanations.ml.explainers.captum_methods import (
    RANDOM_METHODS,
    baselines_build,
    gradient_method_build,
    module_for_captum,
    torch,
)

XLABEL = "Attribution to the network's score (logit) for {class_name}"


class TorchTabularExplainer(BaseExplainer):
    """One Captum method on the MLP's encoded inputs, summed back onto the original columns, rows in one batch.

    The method is the key's (``captum_methods.gradient_method_build``); a subclass names how its data calls it
    (``algorithm``) and what it compares the row with. Its entries say that only the ``mlp`` explains (``classifiers``).
    """

    baseline_kind: ClassVar[str] = ""  # "" none, "setting" (the ``baseline`` parameter), "background", "zero"
    algorithm: ClassVar[str] = ""
    plot_function = "explanations.ml.plots.lime:lime_plot"  # [[condition, weight], ...] as bars
    alt_text_function = "explanations.ml.plots.lime:lime_alt_text"

    @classmethod
    def attributions(cls, data: dict[str, Any], feature_names: Sequence[str]) -> np.ndarray:
        values = data.get("values", {})
        return np.array([float(values.get(name, 0.0)) for name in feature_names])

    @classmethod
    def summary_text(cls, data: dict[str, Any]) -> str:
        return "; ".join(f"{condition}: {w:+.3f}" for condition, w in data.get("weights", []))

    @classmethod
    def plot_options(cls, trust: dict[str, Any] | None) -> dict[str, Any]:
        return {"xlabel": XLABEL}

    @classmethod
    def samples_per_row(cls, params: dict[str, Any]) -> int:
        """A few backward passes per row (times the steps or samples of the methods that take them)."""
        return max(int(params.get("steps") or params.get("nsamples") or params.get("nt_samples") or 1), 1)

    def fit(self, X_train: np.ndarray, predictor: Predictor, space: FeatureSpace, *, seed: int = 0) -> TorchTabularExplainer:
        super().fit(X_train, predictor, space, seed=seed)
        pipeline = predictor.pipeline
        network = getattr(getattr(pipeline, "named_steps", {}).get("model"), "module_", None)
        if network is None or predictor.transform is None or predictor.groups is None:
            raise ExplainerError(f"{self.label} needs the PyTorch neural network (its gradients); pick “Neural network”.")
        model = pipeline.named_steps["model"]
        self.device_ = model.device_
        self.model_classes_ = np.asarray(model.classes_, dtype=int)
        self.module_ = module_for_captum(network)
        self.groups_ = predictor.groups
        encoded = self.encode(self.X_train_)
        kind = self.settings.get("baseline") if self.baseline_kind == "setting" else self.baseline_kind
        baselines = None if not kind else baselines_build("sample" if kind == "background" else kind, encoded,
                                                          size=self.settings.get("background_size", 1), seed=seed)
        self.attribute_ = gradient_method_build(self.key, self.module_, {**self.settings, "_range": 1.0}, baselines,
                                                self.device_)
        return self

    def encode(self, X: np.ndarray) -> np.ndarray:
        encoded = self.predictor_.transform(np.asarray(X, dtype=np.float64))
        encoded = encoded.toarray() if hasattr(encoded, "toarray") else encoded
        return np.asarray(encoded, dtype=np.float32)

    def encoded_attributions(self, X: np.ndarray, rows: list[int], predicted: np.ndarray) -> np.ndarray:
        """``(n, encoded inputs)`` towards each row's predicted class."""
        inputs = torch.from_numpy(self.encode(X)).to(self.device_)
        targets = np.searchsorted(self.model_classes_, predicted).tolist()
        if self.key not in RANDOM_METHODS:
            spans = [(0, len(X), None)]
        else:  # one seed per row: a row's attribution does not depend on its batch
            spans = [(i, i + 1, row_seed(self.seed_, row) % (2**31)) for i, row in enumerate(rows)]
        parts = []
        for start, stop, seed in spans:
            with torch.random.fork_rng(devices=[self.device_] if self.device_.type == "cuda" else []), torch.enable_grad():
                if seed is not None:
                    torch.manual_seed(seed)
                chunk = inputs[start:stop].clone().requires_grad_(True)
                parts.append(self.attribute_(chunk, targets[start:stop]).detach().float().cpu().numpy())
        return np.concatenate(parts)

    def _condition(self, feature: int, value: float) -> str:
        if feature in self.space_.categories:
            return category_condition(self.space_, feature, value)
        return f"{self.space_.feature_names[feature]} = {self.space_.value_text(feature, value)}"

    def _explain_rows(
        self, X: np.ndarray, rows: list[int], predicted: np.ndarray, proba: np.ndarray | None = None
    ) -> list[dict[str, Any]]:
        encoded = self.encoded_attributions(X, rows, predicted)
        names = self.space_.feature_names
        out = []
        for x, label, values in zip(X, predicted, encoded):
            per_column = np.array([values[group].sum() if group else 0.0 for group in self.groups_], dtype=np.float64)
            top = [int(j) for j in np.argsort(-np.abs(per_column), kind="stable")[: self.settings["num_features"]]]
            out.append({
                "label": int(label),
                "weights": [[self._condition(j, x[j]), float(per_column[j])] for j in top],
                "feature_of": [names[j] for j in top],
                "values": {name: round(float(v), 8) for name, v in zip(names, per_column)},
                "algorithm": self.algorithm, "output": "logit",
                **({"baseline": self.settings["baseline"]} if "baseline" in self.settings else {}),
            })
        return out


# One thin class per key, only so that each catalogue entry names a class that finds its entry (key, label,
# parameters) by that name; each says which Captum method it runs and what it compares the row with.


class SaliencyTabularExplainer(TorchTabularExplainer):
    algorithm = "saliency"


class InputXGradientTabularExplainer(TorchTabularExplainer):
    algorithm = "input x gradient"


class DeepLiftTabularExplainer(TorchTabularExplainer):
    algorithm, baseline_kind = "deeplift", "setting"


class IntegratedGradientsTabularExplainer(TorchTabularExplainer):
    algorithm, baseline_kind = "integrated gradients", "setting"


class GradientShapTabularExplainer(TorchTabularExplainer):
    algorithm, baseline_kind = "expected gradients", "background"


class SmoothGradTabularExplainer(TorchTabularExplainer):
    algorithm, baseline_kind = "smoothgrad", "zero"


TABULAR_GRADIENT_EXPLAINERS = (SaliencyTabularExplainer, InputXGradientTabularExplainer, DeepLiftTabularExplainer,
                               IntegratedGradientsTabularExplainer, GradientShapTabularExplainer, SmoothGradTabularExplainer)
