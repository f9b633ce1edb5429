"""SHAP values (Lundberg & Lee, 2017) for the predicted class, through the ``shap`` package.

Algorithms:

- ``tree``: exact TreeSHAP on the fitted trees, over the pipeline's transformed input; attributions of
  one-hot columns are summed back to their original feature. Output is a probability for forests and
  single trees, log-odds for gradient boosting. shap's ``TreeExplainer`` reads the trees; its values come
  from ``explanations.ml.engine.tree_shap`` (the same values, O(nodes) per row instead of O(leaves x depth²),
  rows over the engine's threads), or from shap's C++ for trees that kernel does not cover. XGBoost and LightGBM
  compute it themselves (``tree_contributions``, see ``explanations.ml.boosting``), in log-odds.
- ``linear``: exact linear SHAP on the logistic regression's transformed input, in log-odds (for more than
  two classes, the class's logit).
- ``kernel``: model-agnostic Kernel SHAP on the encoded features, against a random background sample of
  training rows, computed for the whole batch by ``explanations.ml.engine.kernel_shap`` (shap's coalition
  design, each distinct model input evaluated once, one model call per chunk of rows); a probability.
- ``permutation``: shap's ``PermutationExplainer``, row by row, against the same background; a probability.

``auto`` picks tree or linear when the predictor offers the hook, else kernel. When the requested
algorithm cannot serve the model (e.g. TreeSHAP refuses multi-class gradient boosting) the explainer
falls back to permutation and records the algorithm actually used in ``data["algorithm"]`` (and the
requested one in ``meta["algorithm"]``).

Global summary: every explanation also carries ``class_values`` ([class][feature]) and
``class_base_values``, so rows can be stacked for one reference class with ``shap_values_matrix``
(mixing each row's own predicted class would flip signs between rows).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import shap

from explanations.ml.engine.kernel_shap import KernelShapBatch
from explanations.ml.engine.rbf_svc import RbfSvcCoalitions
from explanations.ml.explainers.base import (
    BaseExplainer,
    FeatureSpace,
    Predictor,
    named_attributions,
    numpy_global_seed,
    row_seed,
)

logger = logging.getLogger(__name__)

class NativeTreeShap:
    """A model that computes its own exact TreeSHAP (``tree_contributions``), standing where shap's would."""

    def __init__(self, model: Any) -> None:
        self.model = model


class ShapExplainer(BaseExplainer):
    plot_function = "explanations.ml.plots.shap:shap_waterfall_plot"
    alt_text_function = "explanations.ml.plots.shap:shap_alt_text"
    trust_extras = ("additivity",)

    @classmethod
    def attributions(cls, data: dict[str, Any], feature_names: Sequence[str]) -> np.ndarray:
        return named_attributions(data.get("values", {}).items(), feature_names)

    @classmethod
    def class_attributions(cls, data: dict[str, Any], feature_names: Sequence[str]) -> np.ndarray | None:
        if "class_values" not in data:
            return None
        return np.asarray(data["class_values"], dtype=np.float64).reshape(len(data["class_values"]), len(feature_names))

    @classmethod
    def summary_rows_cheap(cls, data: dict[str, Any]) -> bool:
        """Exact TreeSHAP and linear SHAP cost little a row; sampled SHAP stays with the rows the user chose."""
        return data.get("algorithm") in {"tree", "linear"}

    @classmethod
    def summary_text(cls, data: dict[str, Any]) -> str:
        values = sorted(data.get("values", {}).items(), key=lambda kv: -abs(kv[1]))
        return "; ".join(f"{f}: {v:+.3f}" for f, v in values[:10])

    def fit(self, X_train: np.ndarray, predictor: Predictor, space: FeatureSpace, *, seed: int = 0) -> ShapExplainer:
        super().fit(X_train, predictor, space, seed=seed)
        rng = np.random.default_rng(seed)
        size = min(self.settings["background_size"], len(self.X_train_))
        self.background_ = self.X_train_[np.sort(rng.choice(len(self.X_train_), size, replace=False))]
        self.algorithm_ = self._algorithm_choose(self.settings["algorithm"])
        return self

    def _algorithm_choose(self, requested: str) -> str:
        """Build the shap explainer for ``requested``, falling back to permutation when it cannot serve this model."""
        predictor = self.predictor_
        if requested == "auto":
            requested = "tree" if predictor.tree_model is not None else "linear" if predictor.linear_model is not None else "kernel"
        if requested in {"tree", "linear"}:
            model = predictor.tree_model if requested == "tree" else predictor.linear_model
            if model is not None and predictor.transform is not None and predictor.groups is not None:
                try:
                    if requested == "tree" and hasattr(model, "tree_contributions"):
                        self.shap_ = NativeTreeShap(model)  # the library's own TreeSHAP (XGBoost, LightGBM)
                    elif requested == "tree":
                        from explanations.ml.engine.tree_shap import PathDependentTreeShap  # numba: workers only

                        self.shap_ = shap.TreeExplainer(model)
                        self.tree_kernel_ = PathDependentTreeShap.build(self.shap_)
                    else:
                        self.shap_ = shap.LinearExplainer(model, predictor.transform(self.background_))
                    self.classes_ = np.asarray(model.classes_, dtype=int)
                    self._model_specific_values(self.X_train_[:1])  # some refusals only show when called
                    return requested
                except Exception as error:  # shap refuses some models (e.g. multi-class gradient boosting)
                    logger.info("SHAP %s algorithm unavailable for %s (%s); using permutation", requested, predictor.key, error)
            requested = "permutation"
        if requested == "kernel":
            exact = None
            if predictor.pipeline is not None and predictor.groups is not None:
                exact = RbfSvcCoalitions.build(predictor.pipeline, predictor.groups, len(self.space_.class_names),
                                               self.background_)
            self.shap_ = KernelShapBatch(self.background_, self.predict_proba, seed=self.seed_, coalitions=exact)
        else:
            with numpy_global_seed(self.seed_):  # PermutationExplainer seeds the global RNG itself
                masker = shap.maskers.Independent(self.background_, max_samples=len(self.background_))
                self.shap_ = shap.PermutationExplainer(self.predict_proba, masker)
        return requested

    def seed_free(self) -> bool:
        """Path-dependent TreeSHAP reads only the trees: no background, no samples, so no seed."""
        return getattr(self, "algorithm_", "") == "tree"

    def _parallel_rows(self) -> bool:
        """Kernel SHAP splits a batch over threads; the TreeSHAP kernel splits its rows over threads itself, and
        the permutation method seeds numpy's global random state, so both are called on one thread."""
        return self.algorithm_ == "kernel"

    def _model_specific_values(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tree/linear SHAP on the transformed input, summed back per feature: values (n, d, k_model), base (k_model,).

        A single-output model (binary gradient boosting or logistic regression) explains its second class;
        the first class's log-odds are the negation, so both are returned as two outputs.
        """
        transformed = np.asarray(self.predictor_.transform(X), dtype=np.float64)
        if isinstance(self.shap_, NativeTreeShap):
            raw, base = self.shap_.model.tree_contributions(transformed)
            raw = raw[:, :, 0] if raw.shape[2] == 1 else raw
        else:
            tree = isinstance(self.shap_, shap.TreeExplainer)
            kernel = getattr(self, "tree_kernel_", None) if tree else None
            raw = kernel.values(transformed) if kernel is not None else self.shap_.shap_values(transformed)
            raw = np.stack(raw, axis=-1) if isinstance(raw, list) else np.asarray(raw)
            base = np.atleast_1d(np.asarray(self.shap_.expected_value, dtype=np.float64)).ravel()
        if raw.ndim == 2:
            raw, base = np.stack([-raw, raw], axis=-1), np.array([-base[0], base[0]])
        values = np.stack([raw[:, group, :].sum(axis=1) for group in self.predictor_.groups], axis=1)
        return values, base

    def _output(self) -> str:
        if self.algorithm_ == "tree":
            return "probability" if getattr(self.shap_.model, "tree_output", "") == "probability" else "log-odds"
        return "log-odds" if self.algorithm_ == "linear" else "probability"

    def _sampled_values(self, x: np.ndarray, row: int) -> tuple[np.ndarray, np.ndarray]:
        """Permutation SHAP for one encoded row: values (d, k), base (k,)."""
        nsamples = self.settings["nsamples"]
        with numpy_global_seed(row_seed(self.seed_, row)):
            max_evals = max(nsamples, 2 * x.shape[0] + 1)  # permutation needs at least one full forward/backward pass
            result = self.shap_(x[None, :], max_evals=max_evals, silent=True)
            return np.asarray(result.values[0]), np.asarray(result.base_values[0], dtype=np.float64)

    def _explain_rows(
        self, X: np.ndarray, rows: list[int], predicted: np.ndarray, proba: np.ndarray | None = None
    ) -> list[dict[str, Any]]:
        space = self.space_
        n_classes = len(space.class_names)
        full = np.zeros((len(X), len(space.feature_names), n_classes))  # every class's values, for global views
        full_base = np.zeros((len(X), n_classes))
        if self.algorithm_ in {"tree", "linear"}:
            values, base = self._model_specific_values(X)
            full[:, :, self.classes_] = values  # model outputs follow the classes seen in training
            full_base[:, self.classes_] = base
        elif self.algorithm_ == "kernel":
            full[:] = self.shap_.explain(X, self.predict_proba(X), self.settings["nsamples"])
            full_base[:] = self.shap_.expected_value_
        else:
            for i, (x, row) in enumerate(zip(X, rows)):
                row_values, row_base = self._sampled_values(x, row)
                full[i], full_base[i] = row_values, row_base
        output = self._output()
        return [
            {
                "label": int(label),
                "values": {name: float(v) for name, v in zip(space.feature_names, full[i, :, label])},
                "base_value": float(full_base[i, label]),
                "feature_values": {name: space.value_text(j, x[j]) for j, name in enumerate(space.feature_names)},
                "algorithm": self.algorithm_,
                "output": output,
                "class_values": full[i].T.round(8).tolist(),  # [class][feature]
                "class_base_values": full_base[i].round(8).tolist(),
            }
            for i, (x, label) in enumerate(zip(X, predicted))
        ]


def shap_values_matrix(data: Sequence[dict], class_index: int) -> np.ndarray:
    """Stack SHAP explanation ``data`` dicts into an (n, d) matrix of attributions towards ``class_index``."""
    return np.array([d["class_values"][class_index] for d in data], dtype=np.float64).reshape(len(data), -1)
