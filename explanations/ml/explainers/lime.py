"""LIME (Ribeiro et al., 2016) for tables: lime's ``LimeTabularExplainer`` semantics, computed in batches.

``fit`` builds lime's own explainer (quartile bins, bin frequencies, scaler, kernel width) and hands its
statistics to ``explanations.ml.engine.lime_batch.LimeBatch``, which samples for many rows at once, calls the model
once per chunk of rows and solves lime's feature selection and ridge fits from one Gram matrix per row.
lime draws its perturbed samples without looking at the row (only sample 0, the row itself, and the 0/1
"same bin as the row" columns depend on it), so by default one draw, scored by the model once, serves
every row of the job: each row's explanation is exactly lime's on the samples ``[row] + draw``, and the
model's work no longer grows with the rows. With ``shared_samples`` off each row draws its own samples from
a stream derived from the seed and the row id, as lime does. Either way a row's explanation is the same
whether it is explained alone or in a batch. Conditions name original values:
``workclass = Private``, ``28 < age <= 37``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from lime.lime_tabular import LimeTabularExplainer

from explanations.ml.engine.lime_batch import LimeBatch, Neighbourhood
from explanations.ml.explainers.base import (
    BaseExplainer,
    FeatureSpace,
    Predictor,
    category_condition,
    discretizer_names_tidy,
    named_attributions,
    row_seed,
)

NEIGHBOURHOOD_STREAM = 0xFFFFFFFF  # row_seed's stream for the shared samples; no row id gets this far


class LimeExplainer(BaseExplainer):
    parallel_rows = True  # rows read the shared samples or draw from their own Generator; nothing is written meanwhile
    plot_function = "explanations.ml.plots.lime:lime_plot"
    alt_text_function = "explanations.ml.plots.lime:lime_alt_text"
    trust_extras = ("weight_spread",)

    def fit(self, X_train: np.ndarray, predictor: Predictor, space: FeatureSpace, *, seed: int = 0) -> LimeExplainer:
        super().fit(X_train, predictor, space, seed=seed)
        self.lime_ = LimeTabularExplainer(
            self.X_train_,
            mode="classification",
            feature_names=list(space.feature_names),
            class_names=list(space.class_names),
            categorical_features=list(space.categorical),
            categorical_names={j: list(names) for j, names in space.categories.items()},
            discretize_continuous=self.settings["discretize_continuous"],
            discretizer="quartile",
            random_state=seed,
        )
        if self.lime_.discretizer is not None:
            discretizer_names_tidy(self.lime_.discretizer, space.feature_names)
        self.engine_ = LimeBatch(self.lime_)
        self.neighbourhood_: Neighbourhood | None = None
        return self

    @classmethod
    def attributions(cls, data: dict[str, Any], feature_names: Sequence[str]) -> np.ndarray:
        return named_attributions(zip(data.get("feature_of", []), (w for _, w in data.get("weights", []))), feature_names)

    @classmethod
    def summary_text(cls, data: dict[str, Any]) -> str:
        return "; ".join(f"{cond}: {w:+.3f}" for cond, w in data.get("weights", []))

    @classmethod
    def plot_options(cls, trust: dict[str, Any] | None) -> dict[str, Any]:
        """Error bars: each weight's spread over the stability reruns, when they ran."""
        spread = (trust or {}).get("weight_spread")
        return {"errors": spread} if spread else {}

    def explain(self, X: np.ndarray, rows: list[int]) -> list:
        if self.settings["shared_samples"] and hasattr(self, "engine_") and self.neighbourhood_ is None:
            # Drawn and scored once, before the rows are spread over threads; the same for every batch of the job.
            rng = np.random.default_rng(row_seed(self.seed_, NEIGHBOURHOOD_STREAM))
            self.neighbourhood_ = self.engine_.neighbourhood(self.settings["num_samples"], rng, self.predict_proba)
        return super().explain(X, rows)

    def _condition(self, feature: int, value: float) -> str:
        space = self.space_
        if feature in space.categories:
            return category_condition(space, feature, value)
        discretizer = self.lime_.discretizer
        if discretizer is not None and feature in discretizer.lambdas:
            return discretizer.names[feature][int(discretizer.lambdas[feature](value))]
        return f"{space.feature_names[feature]} = {space.value_text(feature, value)}"

    def _fits(self, X: np.ndarray, rows: list[int], labels: list[int], proba: np.ndarray | None) -> list:
        if self.neighbourhood_ is not None:
            return self.engine_.explain_shared(X, labels, self.neighbourhood_, self.predict_proba if proba is None else proba,
                                               num_features=self.settings["num_features"])
        return self.engine_.explain(
            X,
            labels,
            [np.random.default_rng(row_seed(self.seed_, row)) for row in rows],  # the same samples for every label
            self.predict_proba,
            num_features=self.settings["num_features"],
            num_samples=self.settings["num_samples"],
        )

    def _weights(self, x: np.ndarray, label: int, fit) -> dict[str, Any]:
        pairs = sorted(zip(fit.features, fit.weights), key=lambda pair: -abs(pair[1]))
        return {
            "label": int(label),
            "weights": [[self._condition(int(j), x[j]), float(w)] for j, w in pairs],
            "intercept": fit.intercept,
            "score": fit.score,  # R² of the local model on its samples
            "feature_of": [self.space_.feature_names[int(j)] for j, _ in pairs],
        }

    def _explain_rows(
        self, X: np.ndarray, rows: list[int], predicted: np.ndarray, proba: np.ndarray | None = None
    ) -> list[dict[str, Any]]:
        out = [self._weights(x, label, fit) for x, label, fit in
               zip(X, predicted, self._fits(X, rows, [int(label) for label in predicted], proba))]
        if self.settings["top_labels"] > 1:  # the next most probable classes, on the same samples: "why not B?"
            order = np.argsort(-(self.predict_proba(X) if proba is None else proba), axis=1, kind="stable")
            for rank in range(1, min(self.settings["top_labels"], order.shape[1])):
                labels = [int(label) for label in order[:, rank]]
                for data, x, label, fit in zip(out, X, labels, self._fits(X, rows, labels, proba)):
                    data.setdefault("top_labels", []).append(self._weights(x, label, fit))
        return out
