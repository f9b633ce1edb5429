"""Two jobs on the same dataset side by side: their metrics, each row's predictions and each classifier's top
features, with what differs marked (the compare page and ``GET /api/jobs/compare/?a=&b=``)."""

from __future__ import annotations

from typing import Any

from explainer_site.exceptions import ApplicationError
from explanations.models import Job
from uploaded_models.job_classifiers import classifier_labels_of

TOP_FEATURES = 5


def job_top_features(job: Job) -> dict[str, list[str]]:
    """Per classifier, the most important features by the first of the job's explainers that measured a global
    importance (mean |attribution| over rows), most important first."""
    top = {}
    for run in job.runs.all():
        importance = (run.metrics or {}).get("importance") or {}
        values = next((importance[key] for key in job.explainers if importance.get(key)), None)
        if values:
            top[run.classifier] = [name for name, _ in sorted(values.items(), key=lambda kv: -abs(kv[1]))][:TOP_FEATURES]
    return top


def job_side(job: Job) -> dict[str, Any]:
    return {
        "id": job.pk, "status": job.status, "classifiers": job.classifiers, "explainers": job.explainers,
        "rows": job.rows_spec, "params": job.params,
        "metrics": {r.classifier: {k: (r.metrics or {}).get(k) for k in ("accuracy", "f1_macro", "n_train", "n_test")}
                    for r in job.runs.all()},
        "top_features": job_top_features(job),
    }


def jobs_compare(*, a: Job, b: Job) -> dict[str, Any]:
    if a.dataset_id != b.dataset_id:
        raise ApplicationError("Compare two jobs on the same dataset: these two explain different data.", {"field": "b"})
    if a.pk == b.pk:
        raise ApplicationError("Pick two different jobs to compare.", {"field": "b"})
    predictions: dict[int, dict] = {}
    for side, job in (("a", a), ("b", b)):
        for e in job.explanations.order_by("row", "classifier", "pk"):
            row = predictions.setdefault(e.row, {"row": e.row, "row_name": e.row_name, "true_label": e.true_label,
                                                 "a": {}, "b": {}})
            row[side].setdefault(e.classifier, {"predicted": e.predicted, "probabilities": e.probabilities})
    rows = []
    for row in sorted(predictions.values(), key=lambda r: r["row"]):
        shared = set(row["a"]) & set(row["b"])
        labels = {p["predicted"] for side in ("a", "b") for p in row[side].values()}
        row["in_both"] = bool(row["a"]) and bool(row["b"])
        # marked: the same classifier predicts differently in the two jobs, or (no classifier in common) the two
        # jobs' classifiers do not all agree
        row["differs"] = (any(row["a"][c]["predicted"] != row["b"][c]["predicted"] for c in shared) if shared
                          else row["in_both"] and len(labels) > 1)
        rows.append(row)
    side_a, side_b = job_side(a), job_side(b)
    metric_differs = {}
    for key in set(side_a["metrics"]) & set(side_b["metrics"]):
        accuracy_a, accuracy_b = side_a["metrics"][key]["accuracy"], side_b["metrics"][key]["accuracy"]
        if accuracy_a is not None and accuracy_b is not None:
            metric_differs[key] = round(accuracy_b - accuracy_a, 4)
    top_differs = {key: sorted(set(side_a["top_features"][key]) ^ set(side_b["top_features"][key]))
                   for key in set(side_a["top_features"]) & set(side_b["top_features"])}
    return {"a": side_a, "b": side_b, "dataset": a.dataset_id, "rows": rows,
            "differences": {"accuracy_b_minus_a": metric_differs, "top_features_not_shared": top_differs,
                            "rows_predicted_differently": [r["row"] for r in rows if r["differs"]]},
            "labels": classifier_labels_of([*a.classifiers, *b.classifiers])}
