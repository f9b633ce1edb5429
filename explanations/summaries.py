"""Per-classifier global views drawn from the row explanations: SHAP summary, mean |SHAP|, LIME importance."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from explanations.job_data import JobData
from explanations.ml.explainers import EXPLAINERS
from explanations.ml.explainers.shap import shap_values_matrix
from explanations.ml.lazy import lazy
from explanations.models import Explanation, Job, ModelRun
from uploaded_models.job_classifiers import classifier_spec_of

# Imported where models are fitted and plots drawn (workers), not when the web process loads this module.
importance_bar_plot = lazy("explanations.ml.plots.shap", "importance_bar_plot")
shap_summary_plot = lazy("explanations.ml.plots.shap", "shap_summary_plot")

SUMMARY_ROWS = 200  # rows in the SHAP beeswarm when the exact algorithms make them cheap
SUMMARY_EXTRA_SECONDS = 10.0  # at most this much extra SHAP work per classifier, judged from the explained rows


def run_summary_plots(*, job: Job, run: ModelRun, data: JobData, predictor) -> None:
    from explanations.services import plot_save

    label = classifier_spec_of(run.classifier).label
    features = data.space.feature_names
    importance: dict[str, dict[str, float]] = {}
    shap_rows = list(Explanation.objects.filter(job=job, classifier=run.classifier, explainer="shap").order_by("row"))
    if shap_rows:
        reference = summary_class(data, [e.predicted for e in shap_rows])
        records = [(e.row, e.data) for e in shap_rows] + summary_extra_rows(job=job, data=data, predictor=predictor,
                                                                            explained={e.row for e in shap_rows},
                                                                            algorithm=shap_rows[0].data.get("algorithm"),
                                                                            seconds_per_row=max(e.seconds for e in shap_rows))
        values = shap_values_matrix([d for _, d in records], reference)
        X = data.X[[row for row, _ in records]]
        subtitle = (f"{len(records)} rows ({len(shap_rows)} explained, the rest sampled from the test set) · "
                    f"attribution towards {data.space.class_names[reference]} · {shap_rows[0].data.get('output', 'probability')}")
        plot_save(job=job, classifier=run.classifier, kind="shap_summary",
                  figure=shap_summary_plot(values, X, data.space, title=f"SHAP summary — {label}", subtitle=subtitle,
                                           class_name=data.space.class_names[reference]),
                  title=f"SHAP summary — {label}", alt=importance_alt("SHAP", features, np.abs(values).mean(axis=0)))
        # Importance over every class, so multi-class labels do not hide features that matter for other classes.
        mean_abs = np.abs(np.array([d["class_values"] for _, d in records], dtype=float)).mean(axis=(0, 1))
        importance["shap"] = {f: float(v) for f, v in zip(features, mean_abs)}
        plot_save(job=job, classifier=run.classifier, kind="shap_importance",
                  figure=importance_bar_plot(features, mean_abs, title=f"Mean |SHAP value| — {label}",
                                             subtitle=f"{len(records)} rows · averaged over every class",
                                             xlabel="mean |SHAP value|"),
                  title=f"Mean |SHAP value| — {label}", alt=importance_alt("SHAP", features, mean_abs))
    lime_rows = list(Explanation.objects.filter(job=job, classifier=run.classifier, explainer="lime"))
    if lime_rows:
        totals: dict[str, float] = defaultdict(float)
        for e in lime_rows:
            for feature, (_, weight) in zip(e.data.get("feature_of", []), e.data.get("weights", [])):
                totals[feature] += abs(weight)
        mean = np.array([totals.get(f, 0.0) / len(lime_rows) for f in features])
        importance["lime"] = {f: float(v) for f, v in zip(features, mean)}
        plot_save(job=job, classifier=run.classifier, kind="lime_importance",
                  figure=importance_bar_plot(features, mean, title=f"LIME importance — {label}",
                                             subtitle=f"mean |weight| over {len(lime_rows)} explained rows", xlabel="mean |LIME weight|"),
                  title=f"LIME importance — {label}", alt=importance_alt("LIME", features, mean))
    if importance:
        ModelRun.objects.filter(pk=run.pk).update(metrics={**run.metrics, "importance": importance})
        run.refresh_from_db()


def summary_extra_rows(*, job: Job, data: JobData, predictor, explained: set[int], algorithm: str | None,
                       seconds_per_row: float) -> list:
    """More test rows for the beeswarm when SHAP is exact and cheap here (tree/linear); sampled SHAP stays as is.

    Deep forests on big tables make even exact TreeSHAP take seconds a row, so the extra rows are bounded by
    what the explained rows cost.
    """
    wanted = min(SUMMARY_ROWS - len(explained), int(SUMMARY_EXTRA_SECONDS / max(seconds_per_row, 1e-3)))
    if algorithm not in {"tree", "linear"} or wanted <= 0:
        return []
    seed = job.params["seed"]
    pool = np.setdiff1d(data.test_idx, list(explained))
    rng = np.random.default_rng(seed)
    rows = sorted(int(r) for r in rng.choice(pool, size=min(wanted, len(pool)), replace=False))
    if not rows:
        return []
    explainer = EXPLAINERS["shap"](**job.params.get("shap", {})).fit(data.background(seed), predictor, data.space, seed=seed)
    return [(row, result.data) for row, result in zip(rows, explainer.explain(data.X[rows], rows))]


def summary_class(data: JobData, predicted: list[str]) -> int:
    """One class for the whole beeswarm: the job's ``reference_class``, the class its what-if curves speak of too.

    ``predicted`` is no longer read (the class once followed the explained rows' predictions, and so differed
    from the partial dependence's); it stays so that callers need not change.
    """
    return data.reference_class


def importance_alt(method: str, features: list[str], importance: np.ndarray) -> str:
    order = np.argsort(-importance)[:3]
    top = ", ".join(features[i] for i in order if importance[i] > 0)
    return f"{method} global importance: the most influential features are {top or 'none'}."
