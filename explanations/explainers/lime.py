"""LIME (Ribeiro et al., 2016) for tables: lime's ``LimeTabularExplainer`` semantics, computed in batches.

``fit`` builds lime's own explainer (quartile bins, bin frequencies, scaler, kernel width) and hands its
statistics to ``explanations.engine.lime.LimeBatch``, which samples for many rows at once, calls the model
once per chunk of rows and solves lime's feature selection and ridge fits from one Gram matrix per row.
Each row gets its own random stream derived from the seed and the row id, so an explanation is the
same whether the row is explained alone or in a batch. Conditions name original values:
``workclass = Private``, ``28 < age <= 37``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from explanations.engine.lime import LimeBatch
from explanations.explainers.base import (
    Param,
    Predictor,
    TabularExplainer,
    TabularSpace,
    category_condition,
    discretizer_names_tidy,
    row_seed,
)
from explanations.lazy import lazy

LimeTabularExplainer = lazy("lime.lime_tabular", "LimeTabularExplainer")  # workers only


class LimeExplainer(TabularExplainer):
    key = "lime"
    parallel_rows = True  # every row draws from its own Generator; the engine keeps no state between calls
    label = "LIME"
    description = "LIME: fits a simple model around one row to see which features drive its prediction."
    params = (
        Param("num_features", "Features to show", 5, min=1, max=30),
        Param("num_samples", "Perturbed samples per row", 1000, min=100, max=50000,
              help="More samples give steadier weights but take longer."),
        Param("discretize_continuous", "Bin numeric features", True, kind="bool",
              help="Explain numbers as ranges such as 28 < age <= 37."),
    )

    def fit(self, X_train: np.ndarray, predictor: Predictor, space: TabularSpace, *, seed: int = 0) -> LimeExplainer:
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
        return self

    def _condition(self, feature: int, value: float) -> str:
        space = self.space_
        if feature in space.categories:
            return category_condition(space, feature, value)
        discretizer = self.lime_.discretizer
        if discretizer is not None and feature in discretizer.lambdas:
            return discretizer.names[feature][int(discretizer.lambdas[feature](value))]
        return f"{space.feature_names[feature]} = {space.value_text(feature, value)}"

    def _explain_rows(self, X: np.ndarray, rows: list[int], predicted: np.ndarray) -> list[dict[str, Any]]:
        fits = self.engine_.explain(
            X,
            [int(label) for label in predicted],
            [np.random.default_rng(row_seed(self.seed_, row)) for row in rows],
            self.predict_proba,
            num_features=self.settings["num_features"],
            num_samples=self.settings["num_samples"],
        )
        out = []
        for x, label, fit in zip(X, predicted, fits):
            pairs = sorted(zip(fit.features, fit.weights), key=lambda pair: -abs(pair[1]))
            out.append(
                {
                    "label": int(label),
                    "weights": [[self._condition(int(j), x[j]), float(w)] for j, w in pairs],
                    "intercept": fit.intercept,
                    "score": fit.score,  # R² of the local model on its samples
                    "feature_of": [self.space_.feature_names[int(j)] for j, _ in pairs],
                }
            )
        return out
