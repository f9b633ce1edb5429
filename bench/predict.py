"""The compiled predict path (``explanations.ml.engine.table_predict``) against the fitted pipeline's own
``predict_proba``, on the calls the explainers really make.

The inputs are recorded from the app's own explainers on the default job's forest (the registry's 200 trees, as a
job trains them) and logistic regression: every call of an Anchors search (beam 4, the default) on ``rows`` Adult
test rows, and LIME's calls on the same rows. Both sides then answer the same recorded inputs in this process,
one after the other; ``table_predict_max_abs_diff`` says how far their answers are apart (0: the same bits).
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


def _recorded_calls(table: Table, predictor, explainer_key: str, rows: list[int]) -> list[np.ndarray]:
    timed, clock = clocked(predictor, keep_inputs=True)
    explainer = explainer_for(explainer_key, "tabular")().fit(background(table), timed, table.space, seed=0)
    explainer.explain(table.X_test[rows], rows)
    return clock.inputs


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
            reference = functools.partial(predict_proba_full, model, n_classes=n_classes)
            for side, predict in (("reference", reference), ("project", predictor.predict_proba)):
                best = float("inf")
                for _ in range(repeats):
                    with stopwatch() as elapsed:
                        answers = [predict(X) for X in calls]
                    best = min(best, elapsed[0])
                seconds[side] = best
                if side == "reference":
                    reference_answers = answers
            diff = max(diff, max(float(np.abs(a - b).max()) for a, b in zip(answers, reference_answers)))
            name = f"{key}_{explainer_key}"
            detail[name] = {"calls": len(calls), "samples": int(sum(len(X) for X in calls)),
                            "median_rows_per_call": float(np.median([len(X) for X in calls])),
                            "seconds": seconds, "speedup": seconds["reference"] / seconds["project"]}
            for side in totals:
                totals[side] += seconds[side]
            if key == "random_forest":
                out[f"table_predict_speedup_forest_{explainer_key}"] = seconds["reference"] / seconds["project"]
    out["table_predict_speedup"] = totals["reference"] / totals["project"]
    out["table_predict_max_abs_diff"] = diff
    out["table_predict_detail"] = detail
    return out
