"""Per-classifier views over many rows, one set per explainer whose catalogue entry names a ``global_view`` (a
SHAP-style summary, a LIME-style mean importance); each says how many rows it saw."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from explanations.job_data import JobData
from explanations.job_files import summary_rows_path
from explanations.ml.catalogue import ExplainerEntry, global_view_entries
from explanations.ml.engine import stop_check
from explanations.models import Explanation, Job, ModelRun
from explanations.services.results_save import plot_save
from uploaded_models.job_classifiers import classifier_spec_of

SUMMARY_ROWS = 200  # rows in the summary's beeswarm when the exact algorithms make them cheap
SUMMARY_EXTRA_SECONDS = 5.0  # at most this much extra work per classifier (measured as the summary step goes)
# Below this many rows a view speaks of those rows, not of the model: it is titled so ("over the 3 explained rows").
GLOBAL_MIN_ROWS = 30
AVERAGE_MIN_ROWS = 3  # fewer rows than this: no averaged view at all (it would only repeat the rows' own plots)


def run_summary_plots(*, job: Job, run: ModelRun, data: JobData, predictor) -> None:
    """The model-wide views of this classifier, and the importance per feature each explainer measured
    (``metrics["importance"][key]``, which the what-if curves and the compare page read)."""
    importance: dict[str, dict[str, float]] = {}
    for entry in global_view_entries("tabular"):
        rows = list(Explanation.objects.filter(job=job, classifier=run.classifier, explainer=entry.key).order_by("row"))
        view = summary_view_draw if entry.global_view == "summary" else importance_view_draw
        if rows and (values := view(entry=entry, job=job, run=run, data=data, predictor=predictor, rows=rows)):
            importance[entry.key] = values
    if importance:
        ModelRun.objects.filter(pk=run.pk).update(metrics={**run.metrics, "importance": importance})
        run.refresh_from_db()


def summary_view_draw(*, entry: ExplainerEntry, job: Job, run: ModelRun, data: JobData, predictor,
                      rows: list[Explanation]) -> dict[str, float]:
    """The beeswarm towards the job's reference class and the mean |value| over every class (``global_view``
    "summary"), from the explained rows and, where that is exact and cheap, more test rows."""
    # A worker draws these; a web request that imports this module never loads matplotlib.
    from explanations.ml.plots.shap import importance_bar_plot, shap_summary_plot

    method, name, features = entry.load(), entry.label, data.space.feature_names
    label = classifier_spec_of(run.classifier).label
    rows = summary_explained(method, features, rows)
    if not rows:
        return {}
    reference = summary_class(data, [e.predicted for e in rows])
    extra = summary_rows_load(job=job, run=run, key=entry.key)  # the summary step's
    if extra is None:  # a job from before the summary step: its rows are explained here, the same way
        seed = job.params["seed"]
        explainer = method(**job.params.get(entry.key, {})).fit(data.background(seed), predictor, data.space, seed=seed)
        extra = summary_rows_compute(job=job, run=run, data=data, predictor=predictor, entry=entry, explainer=explainer)
    records = summary_records(rows, extra)
    every = [method.class_attributions(d, features) for _, d in records]
    scope = rows_scope(len(records), len(rows), test_rows=len(data.test_idx))
    mean_abs = np.mean([method.feature_importance(d, features) for _, d in records], axis=0)
    if len(records) >= AVERAGE_MIN_ROWS:
        values = np.array([classes[reference] for classes in every], dtype=np.float64).reshape(len(records), -1)
        subtitle = (f"{scope.subtitle} · attribution towards {data.space.class_names[reference]} · "
                    f"{rows[0].data.get('output', 'probability')}")
        title = f"{name} {'summary' if scope.is_global else 'values'} {scope.words} — {label}"
        plot_save(job=job, classifier=run.classifier, kind=f"{entry.key}_summary",
                  figure=shap_summary_plot(values, data.X[[row for row, _ in records]], data.space, title=title,
                                           subtitle=subtitle, class_name=data.space.class_names[reference]),
                  title=title, alt=importance_alt(name, features, np.abs(values).mean(axis=0), scope=scope))
        title = f"Mean |{name} value| {scope.words} — {label}"
        plot_save(job=job, classifier=run.classifier, kind=f"{entry.key}_importance",
                  figure=importance_bar_plot(features, mean_abs, title=title,
                                             subtitle=f"{scope.subtitle} · averaged over every class",
                                             xlabel=f"mean |{name} value|"),
                  title=title, alt=importance_alt(name, features, mean_abs, scope=scope))
    return {f: float(v) for f, v in zip(features, mean_abs)}


def summary_explained(method, features: list[str], rows: list[Explanation]) -> list[Explanation]:
    """The explained rows a summary can use (those with a value per class)."""
    return [e for e in rows if method.class_attributions(e.data, features) is not None]


def summary_records(rows: list[Explanation], extra: list) -> list:
    """A summary's rows: the explained ones, then the summary step's extra test rows not among them."""
    explained = {e.row for e in rows}
    return [(e.row, e.data) for e in rows] + [(row, d) for row, d in extra if row not in explained]


def run_importance_measure(*, job: Job, run: ModelRun, features: list[str]) -> dict[str, float]:
    """The importance per feature the global views will store (``metrics["importance"]``), measured from the
    saved explanations and the summary step's rows without drawing or loading a model, for the what-if curves that
    start before the global views are drawn: the first explainer of the catalogue's order with rows (as
    ``whatif_features`` reads it). Empty when there is nothing to measure yet."""
    for entry in global_view_entries("tabular"):
        rows = list(Explanation.objects.filter(job=job, classifier=run.classifier, explainer=entry.key).order_by("row"))
        method = entry.load()
        if entry.global_view == "summary":
            rows = summary_explained(method, features, rows)
            if rows:
                records = summary_records(rows, summary_rows_load(job=job, run=run, key=entry.key) or [])
                return dict(zip(features, map(float, np.mean([method.feature_importance(d, features)
                                                              for _, d in records], axis=0))))
        elif rows:
            return dict(zip(features, map(float, np.mean([method.feature_importance(e.data, features) for e in rows],
                                                         axis=0))))
    return {}


def importance_view_draw(*, entry: ExplainerEntry, job: Job, run: ModelRun, data: JobData, predictor,
                         rows: list[Explanation]) -> dict[str, float]:
    """The mean |weight| per feature over the explained rows (``global_view`` "importance")."""
    from explanations.ml.plots.shap import importance_bar_plot

    method, name, features = entry.load(), entry.label, data.space.feature_names
    mean = np.mean([method.feature_importance(e.data, features) for e in rows], axis=0)
    scope = rows_scope(len(rows), len(rows), test_rows=len(data.test_idx))
    if len(rows) >= AVERAGE_MIN_ROWS:  # a "mean" over one or two rows is those rows' explanations again
        label = classifier_spec_of(run.classifier).label
        title = f"{name} {'importance' if scope.is_global else 'weights'} {scope.words} — {label}"
        plot_save(job=job, classifier=run.classifier, kind=f"{entry.key}_importance",
                  figure=importance_bar_plot(features, mean, title=title,
                                             subtitle=f"mean |weight| · {scope.subtitle}", xlabel=f"mean |{name} weight|"),
                  title=title, alt=importance_alt(name, features, mean, scope=scope))
    return {f: float(v) for f, v in zip(features, mean)}


def summary_rows_compute(*, job: Job, run: ModelRun, data: JobData, predictor, entry: ExplainerEntry,
                         explainer, chunk: int = 10) -> list:
    """The summary step's extra rows (before any explanation's time is known): explained chunk by chunk, from the
    job's seeded draw of test rows not explained already, until ``SUMMARY_ROWS`` or ``SUMMARY_EXTRA_SECONDS``
    are reached; none where the explainer is sampled here (only exact, cheap values speak for more rows)."""
    explained = set(run.rows)
    pool = np.setdiff1d(data.test_idx, list(explained))
    wanted = min(SUMMARY_ROWS - len(explained), len(pool))
    if wanted <= 0:
        return []
    picked = sorted(int(r) for r in np.random.default_rng(job.params["seed"]).choice(pool, size=wanted, replace=False))
    method, records, started = entry.load(), [], time.perf_counter()
    for start in range(0, len(picked), chunk):
        stop_check()
        rows = picked[start:start + chunk]
        results = explainer.explain(data.X[rows], rows)
        if not records and results and not method.summary_rows_cheap(results[0].data):
            return []
        records += [(result.row, result.data) for result in results]
        if time.perf_counter() - started >= SUMMARY_EXTRA_SECONDS:
            break
    return records


def summary_rows_store(*, job: Job, run: ModelRun, key: str, records: list) -> None:
    path = summary_rows_path(job=job, run=run, key=key)
    if default_storage.exists(path):  # a redelivered step computes the same rows again
        default_storage.delete(path)
    body = {"job": summary_rows_owner(job), "rows": [[row, data] for row, data in records]}
    default_storage.save(path, ContentFile(json.dumps(body).encode()))


def summary_rows_owner(job: Job) -> list:
    """What tells this job's file from one a job with the same id left before (a test database, a restore)."""
    return [job.pk, job.created_at.isoformat()]


def summary_rows_load(*, job: Job, run: ModelRun, key: str) -> list | None:
    path = summary_rows_path(job=job, run=run, key=key)
    try:
        with default_storage.open(path, "rb") as handle:
            body = json.loads(handle.read())
        if body.get("job") != summary_rows_owner(job):
            return None
        return [(int(row), data) for row, data in body["rows"]]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):  # no summary step ran for this job
        return None


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
