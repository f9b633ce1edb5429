"""Per-classifier views over many rows: SHAP summary, mean |SHAP|, LIME importance; each says how many rows it saw."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from explanations.job_data import JobData
from explanations.ml.explainers import explainer_for
from explanations.models import Explanation, Job, ModelRun
from uploaded_models.job_classifiers import classifier_spec_of

SUMMARY_ROWS = 200  # rows in the SHAP beeswarm when the exact algorithms make them cheap
SUMMARY_EXTRA_SECONDS = 10.0  # at most this much extra SHAP work per classifier, judged from the explained rows
# Below this many rows a view speaks of those rows, not of the model: it is titled so ("over the 3 explained rows").
GLOBAL_MIN_ROWS = 30
AVERAGE_MIN_ROWS = 3  # fewer rows than this: no averaged view at all (it would only repeat the rows' own plots)


def run_summary_plots(*, job: Job, run: ModelRun, data: JobData, predictor) -> None:
    # A worker draws these; the web process imports this module (through the services) but never matplotlib or shap.
    from explanations.ml.explainers.shap import shap_values_matrix
    from explanations.ml.plots.shap import importance_bar_plot, shap_summary_plot
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
        scope = rows_scope(len(records), len(shap_rows), test_rows=len(data.test_idx))
        subtitle = (f"{scope.subtitle} · attribution towards {data.space.class_names[reference]} · "
                    f"{shap_rows[0].data.get('output', 'probability')}")
        title = f"{'SHAP summary' if scope.is_global else 'SHAP values'} {scope.words} — {label}"
    if shap_rows and len(records) >= AVERAGE_MIN_ROWS:
        plot_save(job=job, classifier=run.classifier, kind="shap_summary",
                  figure=shap_summary_plot(values, X, data.space, title=title, subtitle=subtitle,
                                           class_name=data.space.class_names[reference]),
                  title=title, alt=importance_alt("SHAP", features, np.abs(values).mean(axis=0), scope=scope))
    if shap_rows:  # importance over every class, so multi-class labels do not hide features that matter for others
        mean_abs = np.abs(np.array([d["class_values"] for _, d in records], dtype=float)).mean(axis=(0, 1))
        importance["shap"] = {f: float(v) for f, v in zip(features, mean_abs)}
    if shap_rows and len(records) >= AVERAGE_MIN_ROWS:
        title = f"Mean |SHAP value| {scope.words} — {label}"
        plot_save(job=job, classifier=run.classifier, kind="shap_importance",
                  figure=importance_bar_plot(features, mean_abs, title=title,
                                             subtitle=f"{scope.subtitle} · averaged over every class",
                                             xlabel="mean |SHAP value|"),
                  title=title, alt=importance_alt("SHAP", features, mean_abs, scope=scope))
    lime_rows = list(Explanation.objects.filter(job=job, classifier=run.classifier, explainer="lime"))
    if lime_rows:
        totals: dict[str, float] = defaultdict(float)
        for e in lime_rows:
            for feature, (_, weight) in zip(e.data.get("feature_of", []), e.data.get("weights", [])):
                totals[feature] += abs(weight)
        mean = np.array([totals.get(f, 0.0) / len(lime_rows) for f in features])
        importance["lime"] = {f: float(v) for f, v in zip(features, mean)}
        scope = rows_scope(len(lime_rows), len(lime_rows), test_rows=len(data.test_idx))
    if len(lime_rows) >= AVERAGE_MIN_ROWS:  # a "mean" over one or two rows is those rows' explanations again
        title = f"{'LIME importance' if scope.is_global else 'LIME weights'} {scope.words} — {label}"
        plot_save(job=job, classifier=run.classifier, kind="lime_importance",
                  figure=importance_bar_plot(features, mean, title=title,
                                             subtitle=f"mean |weight| · {scope.subtitle}", xlabel="mean |LIME weight|"),
                  title=title, alt=importance_alt("LIME", features, mean, scope=scope))
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
    explainer = explainer_for("shap", "tabular")(**job.params.get("shap", {})).fit(data.background(seed), predictor, data.space, seed=seed)
    return [(row, result.data) for row, result in zip(rows, explainer.explain(data.X[rows], rows))]


def summary_class(data: JobData, predicted: list[str]) -> int:
    """One class for the whole beeswarm: the job's ``reference_class``, the class its what-if curves speak of too.

    ``predicted`` is no longer read (the class once followed the explained rows' predictions, and so differed
    from the partial dependence's); it stays so that callers need not change.
    """
    return data.reference_class


@dataclass(frozen=True)
class RowsScope:
    """What a view averaged over: enough test rows to speak of the model as a whole, or only the explained rows."""

    rows: int
    explained: int
    test_rows: int | None = None  # a small test set seen whole is the model's view too

    @property
    def is_global(self) -> bool:
        return self.rows >= min(GLOBAL_MIN_ROWS, self.test_rows or GLOBAL_MIN_ROWS)

    @property
    def words(self) -> str:
        if self.rows > self.explained:
            return f"from {self.rows} test rows"
        return f"over the {self.rows} explained row{'s' if self.rows != 1 else ''}"

    @property
    def subtitle(self) -> str:
        if self.rows > self.explained:
            return f"{self.rows} test rows ({self.explained} explained, the rest sampled from the test set)"
        if self.is_global:
            return f"{self.rows} explained rows"
        return f"only the {self.rows} explained row{'s' if self.rows != 1 else ''}: not the model as a whole"


def rows_scope(rows: int, explained: int, test_rows: int | None = None) -> RowsScope:
    return RowsScope(rows=rows, explained=explained, test_rows=test_rows)


def importance_alt(method: str, features: list[str], importance: np.ndarray, scope: RowsScope | None = None) -> str:
    order = np.argsort(-importance)[:3]
    top = ", ".join(features[i] for i in order if importance[i] > 0)
    if scope is None:
        return f"{method} global importance: the most influential features are {top or 'none'}."
    kind = "global importance" if scope.is_global else "importance"
    return f"{method} {kind} {scope.words}: the most influential features are {top or 'none'}."
