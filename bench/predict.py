"""The compiled predict path (``explanations.ml.engine.table_predict``) against the fitted pipeline's own
``predict_proba``, on the calls the explainers really make.

The inputs are recorded from the app's own explainers on the default job's forest (the registry's 200 trees, as a
job trains them) and logistic regression: every call of an Anchors search (beam 4, the default) on ``rows`` Adult
test rows, and LIME's calls on the same rows. Both sides then answer the same recorded inputs in this process,
one after the other; ``table_predict_max_abs_diff`` says how far their answers are apart (0: the same bits).
Calls that ask only for classes (Anchors asks so, and the forest's ``predict_label`` stops walking trees once a
row's vote is decided) are answered by argmax of the pipeline's ``predict_proba`` on the reference side, as a
notebook answers anchor-exp; a class answered differently counts as a difference of 1.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from bench.sections import background
from bench.tables import Table, registry_predictor
from bench.timing import clocked, stopwatch
from explanations.ml.classifiers import predict_proba_full
from explanations.ml.explainers import explainer_for


def _recorded_calls(table: Table, predictor, explainer_key: str, rows: list[int]) -> list[tuple[str, np.ndarray]]:
    timed, clock = clocked(predictor, keep_inputs=True)
    explainer = explainer_for(explainer_key, "tabular")().fit(background(table), timed, table.space, seed=0)
    explainer.explain(table.X_test[rows], rows)
    return list(zip(clock.kinds, clock.inputs))


def _answer(predict_proba, predict_label):
    """One recorded call answered: probabilities, or classes (by ``predict_label``, else argmax)."""
    def answer(kind: str, X: np.ndarray) -> np.ndarray:
        if kind == "proba":
            return predict_proba(X)
        return predict_label(X) if predict_label is not None else np.argmax(predict_proba(X), axis=1)
    return answer


def table_predict_section(table: Table, rows: int, *, repeats: int = 3) -> dict[str, Any]:
    picked = [int(i) for i in np.sort(np.random.default_rng(1).choice(len(table.X_test), rows, replace=False))]
    out: dict[str, Any] = {}
    detail: dict[str, Any] = {"rows": picked, "repeats": repeats}
    diff = 0.0
    totals = {"project": 0.0, "reference": 0.0}
    for key in ("random_forest", "logistic_regression"):
        predictor = registry_predictor(table, key, compiled=True)
        model, n_classes = predictor.pipeline, len(table.space.class_names)
        for explainer_key in ("anchor", "lime"):
            calls = _recorded_calls(table, predictor, explainer_key, picked)
            seconds = {}
            reference = _answer(functools.partial(predict_proba_full, model, n_classes=n_classes), None)
            project = _answer(predictor.predict_proba, getattr(predictor.predict_proba, "labels", None))
            for side, predict in (("reference", reference), ("project", project)):
                best = float("inf")
                for _ in range(repeats):
                    with stopwatch() as elapsed:
                        answers = [predict(kind, X) for kind, X in calls]
                    best = min(best, elapsed[0])
                seconds[side] = best
                if side == "reference":
                    reference_answers = answers
            diff = max(diff, max(float(np.abs(a - b).max()) for a, b in zip(answers, reference_answers)))
            name = f"{key}_{explainer_key}"
            detail[name] = {"calls": len(calls), "samples": int(sum(len(X) for _, X in calls)),
                            "label_calls": sum(kind == "label" for kind, _ in calls),
                            "median_rows_per_call": float(np.median([len(X) for _, X in calls])),
                            "seconds": seconds, "speedup": seconds["reference"] / seconds["project"]}
            for side in totals:
                totals[side] += seconds[side]
            if key == "random_forest":
                out[f"table_predict_speedup_forest_{explainer_key}"] = seconds["reference"] / seconds["project"]
    out["table_predict_speedup"] = totals["reference"] / totals["project"]
    out["table_predict_max_abs_diff"] = diff
    out["table_predict_detail"] = detail
    return out
