"""Anchors (Ribeiro et al., 2018): an IF-THEN rule that keeps the prediction, with anchor-exp's search, batched.

``fit`` builds anchor-exp's ``AnchorTabularExplainer`` (quartile bins, training sample, names) and hands it to
``explanations.ml.engine.anchor_batch.AnchorBatch``, which runs anchor-exp's KL-LUCB beam search for every row of a
batch in lockstep, with one model call per round for all rows. Each row draws from its own generator seeded
from the job seed and the row id, so a row's rule does not depend on its batch.
Names are rebuilt here: anchor-exp drops the ``feature =`` part of categories that contain ``<`` or ``>``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
from anchor.anchor_tabular import AnchorTabularExplainer

from explanations.ml.engine.anchor_batch import AnchorBatch, SampleBank
from explanations.ml.explainers.base import (
    BaseExplainer,
    ExplanationResult,
    FeatureSpace,
    NotFittedError,
    Predictor,
    category_condition,
    discretizer_names_tidy,
    numpy_global_seed,
    row_seed,
    rule_attributions,
    rule_summary_text,
)

COVERAGE_SAMPLES = 5000


class AnchorExplainer(BaseExplainer):
    # One thread: the beam search is Python-heavy, and two threads contending for the GIL were slower than one.
    parallel_rows = False
    # The search asks the model once per bandit round for all rows of a batch, and a batch takes as many rounds as
    # its slowest row (some 110 on Adult), each paying the model's fixed cost per call: 48 rows at once explain
    # Adult about 1.5 times faster per row than 16 (0.17-0.21 s against 0.27-0.31 s, same anchors).
    batch_scale = 3
    plot_function = "explanations.ml.plots.anchor:anchor_plot"
    alt_text_function = "explanations.ml.plots.anchor:anchor_alt_text"
    trust_extras = ("rule_fresh",)

    @classmethod
    def attributions(cls, data: dict[str, Any], feature_names: Sequence[str]) -> np.ndarray:
        return rule_attributions(data.get("rule", []), feature_names)

    @classmethod
    def summary_text(cls, data: dict[str, Any]) -> str:
        return rule_summary_text(data)

    def fit(self, X_train: np.ndarray, predictor: Predictor, space: FeatureSpace, *, seed: int = 0) -> AnchorExplainer:
        super().fit(X_train, predictor, space, seed=seed)
        with numpy_global_seed(seed):
            self.anchor_ = AnchorTabularExplainer(
                list(space.class_names),
                list(space.feature_names),
                self.X_train_,
                categorical_names={j: list(names) for j, names in space.categories.items()},
            )
        tidy = discretizer_names_tidy(self.anchor_.disc, space.feature_names)
        self.anchor_.categorical_names.update(tidy)
        self.engine_ = AnchorBatch(self.anchor_)
        return self

    def _rule(self, x: np.ndarray, features: list[int], names: list[str]) -> list[str]:
        """One condition per feature, in anchor order; ordinal features appear once however many bounds they have."""
        ordered = list(dict.fromkeys(int(f) for f in features))
        return [
            category_condition(self.space_, f, x[f]) if f in self.space_.categories else name
            for f, name in zip(ordered, names)
        ]

    @classmethod
    def reruns_explain(
        cls, reruns: Sequence[BaseExplainer], X: np.ndarray, rows: list[int], *, share_samples: bool = True
    ) -> list[list[ExplanationResult]]:
        """Every rerun's search on the first rerun's engine, rows in lockstep, each row's searches sharing a bank.

        The first rerun searches on samples of its own, as a job's explanation does. The others, together, resample
        the labelled samples that searches before them drew for a rule (a bootstrap: each takes, with replacement,
        at most as many as the bank holds) and draw and score new ones only beyond that. Their rules then vary as
        they would on new samples like the ones drawn, at a fraction of the model calls (``share_samples=False``
        draws every sample anew, as separate explainers do).
        """
        if not reruns:
            return []
        first = reruns[0]
        if not isinstance(first, AnchorExplainer) or not hasattr(first, "engine_"):
            raise NotFittedError(f"{cls.label} must be fitted before it can explain rows.")
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        rows = list(rows)
        proba = first.predict_proba(X)
        predicted = np.argmax(proba, axis=1)
        banks = [SampleBank() for _ in rows] if share_samples else None
        out: list[list[ExplanationResult]] = []
        for group in ([first], list(reruns[1:])):
            if not group:
                continue
            copies = len(group)
            datas = first._rules(np.concatenate([X] * copies), rows * copies, np.tile(predicted, copies),
                                 [e.seed_ for e in group for _ in rows], None if banks is None else banks * copies)
            out += [e._results(rows, predicted, proba, datas[k * len(rows):(k + 1) * len(rows)])
                    for k, e in enumerate(group)]
        return out

    def reseeded(self, seed: int) -> AnchorExplainer | None:
        """The fit (anchor-exp's quartile bins over the training sample, and the engine with the model's classes
        on it) does not depend on the seed, which only seeds the rows' searches: a copy with another seed shares it."""
        if not hasattr(self, "engine_"):
            return None
        twin = copy.copy(self)
        twin.seed_ = int(seed)
        return twin

    def _explain_rows(
        self, X: np.ndarray, rows: list[int], predicted: np.ndarray, proba: np.ndarray | None = None
    ) -> list[dict[str, Any]]:
        return self._rules(X, rows, predicted, [self.seed_] * len(rows))

    def _rules(self, X: np.ndarray, rows: list[int], predicted: np.ndarray, seeds: list[int],
               banks: list[SampleBank] | None = None) -> list[dict[str, Any]]:
        """One search per row, with ``seeds[i]`` for row ``rows[i]`` (and its ``SampleBank``)."""
        settings = self.settings
        anchors = self.engine_.explain(
            X,
            [int(label) for label in predicted],
            [np.random.default_rng(row_seed(seed, row)) for seed, row in zip(seeds, rows)],
            self.predict_label,
            banks=banks,
            threshold=settings["threshold"],
            delta=0.1,
            epsilon=0.15,
            batch_size=settings["batch_size"],
            beam_size=settings["beam_size"],
            max_anchor_size=settings["max_anchor_size"] or None,
            coverage_samples=COVERAGE_SAMPLES,
        )
        out = []
        for x, label, anchor in zip(X, predicted, anchors):
            exp: dict[str, Any] = {"feature": list(anchor.order)}
            self.anchor_.add_names_to_exp(x, exp, anchor.mapping)
            out.append(
                {
                    "label": int(label),
                    "rule": self._rule(x, exp["feature"], exp["names"]),
                    "precision": float(anchor.precision[-1] if anchor.order else anchor.all_precision),
                    "coverage": float(anchor.coverage[-1] if anchor.order else 1.0),
                    "threshold": float(settings["threshold"]),
                    "meets_threshold": bool(anchor.met),
                }
            )
        return out
