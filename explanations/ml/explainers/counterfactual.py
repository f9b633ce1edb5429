"""Counterfactuals for tables: what would have to change for the model to say another class?

For an explained row, up to ``num_counterfactuals`` diverse rows close to it that the model predicts as the
desired class (a class the user names, else the most likely other class), searched by
``explanations.ml.engine.counterfactual`` (DiCE's model-agnostic random method, in batches). Features the
user fixes never change (by default the columns that look like age, sex, race, marital status or nationality:
``protected_features``); numeric ones stay inside their bounds (the observed range unless the user sets
others), categorical ones only take values seen in the training data.

Each counterfactual is a sentence: "change `credit_amount` from 9,000 to 4,000 and `duration` from 48 to 24
→ predicted good (81%)". The common core (``attributions``) is the share of the counterfactuals that change
each feature (DiCE's local feature importance), towards the row's predicted class: the features the
prediction hangs on. The quality of each set is measured in ``trust`` (``counterfactual_quality``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from explanations.ml.engine.counterfactual import CounterfactualSearch, box_build
from explanations.ml.explainers.base import (
    FEATURES_PROTECTED,
    BaseExplainer,
    ExplainerError,
    FeatureSpace,
    Predictor,
    named_attributions,
    row_seed,
)
from explanations.ml.tabular import MISSING

DONOR_ROWS = 2000  # training rows scored once at fit; the candidates borrow their values


def share_text(value: float) -> str:
    """``0.81`` -> ``81%`` (``<1%`` for a small non-zero share), as the plots write it (they live above explainers)."""
    return "<1%" if 0 < value < 0.005 else f"{value:.0%}"


def value_text(space: FeatureSpace, feature: int, value: float) -> str:
    """A cell as a sentence writes it: the category, or the number with its thousands grouped (9,000)."""
    text = space.value_text(feature, value)
    if feature in space.categories:
        return text
    sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, point, fraction = digits.partition(".")
    return f"{sign}{int(whole):,}{point}{fraction}" if whole.isdigit() and len(whole) == 4 else text


def change_sentence(counterfactual: dict[str, Any], *, quote: str = "`") -> str:
    """"change `duration` from 48 to 24 and `housing` from rent to own → predicted good (81%)"."""
    parts = [f"{quote}{c['feature']}{quote} from {c['from']} to {c['to']}" for c in counterfactual["changes"]]
    listed = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
    return (f"change {listed} → predicted {counterfactual['predicted_name']} "
            f"({share_text(float(counterfactual['probability']))})")


class CounterfactualExplainer(BaseExplainer):
    plot_function = "explanations.ml.plots.counterfactual:counterfactual_plot"
    alt_text_function = "explanations.ml.plots.counterfactual:counterfactual_alt_text"
    trust_extras = ("counterfactual_quality",)

    @classmethod
    def attributions(cls, data: dict[str, Any], feature_names: Sequence[str]) -> np.ndarray:
        counterfactuals = data.get("counterfactuals", [])
        if not counterfactuals:
            return np.zeros(len(feature_names))
        share = 1.0 / len(counterfactuals)
        return named_attributions(((c["feature"], share) for cf in counterfactuals for c in cf["changes"]), feature_names)

    @classmethod
    def summary_text(cls, data: dict[str, Any]) -> str:
        counterfactuals = data.get("counterfactuals", [])
        if not counterfactuals:
            return f"No counterfactual found that reaches {data.get('desired_name', 'another class')}."
        return "; ".join(change_sentence(cf) for cf in counterfactuals)

    @classmethod
    def detail_table(cls, data: dict[str, Any]) -> dict[str, Any]:
        """The row page's table of changes: one line per counterfactual."""
        return {"caption": f"What would have to change for the model to predict {data.get('desired_name', '')}",
                "headers": ["#", "Change", "Predicted"],
                "rows": [[str(i), change_sentence(cf, quote="").partition(" → ")[0],
                          f"{cf['predicted_name']} ({share_text(float(cf['probability']))})"]
                         for i, cf in enumerate(data.get("counterfactuals", []), 1)],
                "empty": cls.summary_text(data) if not data.get("counterfactuals") else "",
                "note": data.get("note", "")}

    @classmethod
    def detail_rows(cls, data: dict[str, Any]) -> list[dict[str, Any]]:
        """The export's rows: one per change of each counterfactual."""
        return [{"counterfactual": i, "feature": c["feature"], "from": c["from"], "to": c["to"],
                 "predicted": cf["predicted_name"], "probability": round(float(cf["probability"]), 4)}
                for i, cf in enumerate(data.get("counterfactuals", []), 1) for c in cf["changes"]]

    def fit(self, X_train: np.ndarray, predictor: Predictor, space: FeatureSpace, *,
            seed: int = 0) -> CounterfactualExplainer:
        super().fit(X_train, predictor, space, seed=seed)
        if len(space.class_names) < 2:
            raise ExplainerError("Counterfactuals need at least two classes to move between.")
        names = list(space.feature_names)
        by_name = {p.name: p for p in self.params}
        try:  # names checked against this table (a job's were checked when it was created)
            fixed = by_name["fixed_features"].clean(None if self.settings["fixed_features"] == FEATURES_PROTECTED
                                                    else self.settings["fixed_features"], names)
            bounds = by_name["bounds"].clean(self.settings["bounds"] or None, names)
        except ValueError as error:
            raise ExplainerError(str(error)) from None
        categorical = [j for j in bounds if names.index(j) in space.categories]
        if categorical:
            raise ExplainerError(f"Bounds apply to numeric features; {', '.join(categorical)} "
                                 f"{'is' if len(categorical) == 1 else 'are'} categorical.")
        self.fixed_ = list(fixed)
        mutable = np.array([name not in self.fixed_ for name in names])
        allowed = {j: np.array([code for code in np.unique(self.X_train_[:, j])
                                if space.value_text(j, code) != MISSING]) for j in space.categorical}
        self.box_ = box_build(self.X_train_, space.categorical, mutable, allowed=allowed,
                              bounds={names.index(name): tuple(sides) for name, sides in bounds.items()})
        rng = np.random.default_rng(seed)
        donors = self.X_train_[np.sort(rng.choice(len(self.X_train_), min(DONOR_ROWS, len(self.X_train_)), replace=False))]
        inside = np.all((donors >= self.box_.low) & (donors <= self.box_.high) | self.box_.categorical, axis=1)
        donors = donors[inside] if inside.any() else donors
        labels = self.predict_label(donors)
        self.engine_ = CounterfactualSearch(self.box_, [donors[labels == c] for c in range(len(space.class_names))])
        return self

    def _target(self, label: int, probabilities: np.ndarray) -> tuple[int, str]:
        """The desired class for a row predicted ``label``, and a note when it is not the one asked for."""
        names = self.space_.class_names
        desired = self.settings["desired_class"]
        if desired:
            if desired not in names:
                raise ExplainerError(f"Desired class “{desired}” is not a class of this dataset; "
                                     f"choose one of {', '.join(names[:20])}.")
            if names.index(desired) != label:
                return names.index(desired), ""
        other = next(int(c) for c in np.argsort(-probabilities, kind="stable") if int(c) != label)
        note = f"The model already predicts {desired} here; these reach the most likely other class." if desired else ""
        return other, note

    def _explain_rows(self, X: np.ndarray, rows: list[int], predicted: np.ndarray,
                      proba: np.ndarray | None = None) -> list[dict[str, Any]]:
        space = self.space_
        proba = self.predict_proba(X) if proba is None else proba
        targets, notes = zip(*(self._target(int(label), p) for label, p in zip(predicted, proba)))
        found = self.engine_.search(X, targets, self.predict_proba, k=self.settings["num_counterfactuals"],
                                    samples=self.settings["num_samples"],
                                    rngs=[np.random.default_rng(row_seed(self.seed_, row)) for row in rows])
        stacked = np.concatenate([cfs for cfs in found if len(cfs)]) if any(len(cfs) for cfs in found) else None
        cf_proba = iter(self.predict_proba(stacked) if stacked is not None else [])
        out = []
        for x, label, target, note, cfs in zip(X, predicted, targets, notes, found):
            counterfactuals = []
            for cf in cfs:
                p = next(cf_proba)
                changed = np.flatnonzero(cf != x)
                counterfactuals.append({
                    "changes": [{"feature": space.feature_names[j], "from": value_text(space, j, x[j]),
                                 "to": value_text(space, j, cf[j])} for j in changed],
                    "values": [float(v) for v in cf],
                    "predicted": int(np.argmax(p)),
                    "predicted_name": space.class_names[int(np.argmax(p))],
                    "probability": float(p[target]),
                })
            out.append({"label": int(label), "desired": int(target), "desired_name": space.class_names[target],
                        "counterfactuals": counterfactuals, "requested": self.settings["num_counterfactuals"],
                        "fixed": list(self.fixed_), "scales": [float(s) for s in self.box_.scales],
                        "categorical": [int(j) for j in space.categorical], "note": note})
        return out
