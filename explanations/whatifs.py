"""What-if curves of a job: partial dependence over the test rows and one curve per explained row, per feature.

Drawn by a worker, while the job runs (``job_whatif_build``, a step of ``explanations.job_steps``) or when a page
asks for one later (``whatif_get`` queues ``explanations.tasks.whatif_draw``); no model is ever loaded in a
web request. The maths is ``explanations.ml.whatif``, the picture ``explanations.ml.plots.whatif``.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.db import IntegrityError, transaction
from django.utils import timezone

from explainer_site.exceptions import ApplicationError
from explanations.job_data import JobData, job_data_build
from explanations.ml import trust as trust_metrics
from explanations.ml import whatif as whatif_math
from explanations.ml.catalogue import global_view_entries
from explanations.ml.classifiers import predictor_build
from explanations.ml.explainers.base import Predictor
from explanations.ml.model_files import model_file_load
from explanations.models import Explanation, Job, ModelRunStatus, Plot, WhatIf, WhatIfStatus
from explanations.services.job_state import job_stage_set
from explanations.services.results_save import plot_files_save
from uploaded_models.job_classifiers import classifier_label_of, classifier_spec_or_none

logger = logging.getLogger(__name__)

WHATIF_FEATURES_DEFAULT = 3
WHATIF_ROWS_MAX = 50  # rows drawn while the job runs; others are drawn when first asked for


def job_models_load(*, job: Job, data: JobData) -> dict[str, Predictor]:
    """The fitted model of every trained classifier, in the job's order (files our own worker wrote)."""
    predictors = {}
    for run in sorted(job.runs.all(), key=lambda r: job.classifiers.index(r.classifier) if r.classifier in job.classifiers else 99):
        if run.status == ModelRunStatus.PENDING or not run.model_file:
            continue
        with run.model_file.open("rb") as handle:
            predictors[run.classifier] = predictor_build(run.classifier, model_file_load(handle), data.space)
    return predictors


def whatif_features(*, job: Job, data: JobData) -> list[str]:
    """The job's ``whatif.features``, else the top 3 by importance averaged over classifiers (from the explainers'
    model-wide views, the most telling first: SHAP's, else LIME's; measured the same way where a classifier's views
    are still to be drawn, as the what-if steps start once the rows are explained), else the features the
    explanations name most often."""
    chosen = ((job.params.get("whatif") or {}).get("features")) or []
    if chosen:
        return [f for f in chosen if f in data.space.feature_names]
    names = data.space.feature_names
    measured = [entry.key for entry in global_view_entries("tabular")]
    scores: Counter[str] = Counter()
    for run in job.runs.all():
        importance = (run.metrics or {}).get("importance") or {}
        values = next((importance[key] for key in measured if importance.get(key)), {})
        if not values and run.status != ModelRunStatus.DONE:  # its global views are not drawn yet: the same numbers
            from explanations.summaries import run_importance_measure  # a worker's (numpy); web requests never rank

            values = run_importance_measure(job=job, run=run, features=names)
        total = sum(abs(v) for v in values.values()) or 1.0
        for name, value in values.items():
            scores[name] += abs(value) / total
    if not scores:
        for trust in Explanation.objects.filter(job=job).values_list("trust", flat=True):
            for position, (name, _) in enumerate((trust or {}).get("top_features", [])):
                scores[name] += trust_metrics.TOP_K - position
    ranked = [name for name, _ in sorted(scores.items(), key=lambda kv: (-kv[1], names.index(kv[0]) if kv[0] in names else 0))
              if name in names]
    return (ranked or names)[:WHATIF_FEATURES_DEFAULT]


def job_whatif_build(*, job: Job) -> None:
    """What-if curves for the chosen features: partial dependence over the test rows, and one overlay per explained row."""
    try:
        job_whatif_draw(job=job)
    except SoftTimeLimitExceeded:
        raise
    except Exception:  # the explanations are done and worth delivering; the job page simply shows no what-if
        logger.exception("job %s: what-if curves failed", job.pk)


def job_whatif_draw(*, job: Job) -> None:
    if job.schema.get("text") or job.schema.get("image_shape"):  # sweeping a feature means a table's column
        return
    data = job_data_build(dataset=job.dataset, schema=job.schema, test_size=job.params["test_size"], seed=job.params["seed"])
    predictors = job_models_load(job=job, data=data)
    if not predictors:
        return
    features = whatif_features(job=job, data=data)
    rows = sorted({int(r) for run in job.runs.all() for r in run.rows})[:WHATIF_ROWS_MAX]
    done = set(WhatIf.objects.filter(job=job).values_list("row", "feature"))
    for feature in features:
        if (None, feature) not in done:
            whatif_save(job=job, data=data, predictors=predictors, row=None, feature=feature)
    for position, row in enumerate(rows, start=1):
        if not job_stage_set(job.pk, f"Drawing what-if curves for row {row} ({position} of {len(rows)})"):
            return
        for feature in features:
            if (row, feature) not in done:
                whatif_save(job=job, data=data, predictors=predictors, row=row, feature=feature)


def whatif_save(*, job: Job, data: JobData, predictors: dict[str, Predictor], row: int | None, feature: str) -> WhatIf | None:
    """Compute, draw and store one what-if; None when another task stored the same one first."""
    # A worker draws it; the web process imports this module (for ``whatif_get``) but never matplotlib.
    from explanations.ml.plots import figure_render
    from explanations.ml.plots.whatif import whatif_alt_text, whatif_plot

    space = data.space
    j = space.feature_names.index(feature)
    # Issue 17 items 7 and 9 (plots): "(missing)" only where the data had it, and the job's one reference class.
    grid = whatif_math.feature_grid(space, j, data.X[data.train_idx, j], current=None if row is None else data.X[row, j])
    labels = whatif_math.grid_labels(space, j, grid)
    class_index = data.reference_class
    categorical = j in space.categories
    if row is None:
        X = data.X[data.test_idx]
        probas = {key: whatif_math.partial_dependence(p.predict_proba, X, j, grid, seed=job.params["seed"])
                  for key, p in predictors.items()}
        title = f"Partial dependence on {feature} — probability of {space.class_names[class_index]}"
        subtitle = (f"averaged over {min(len(X), whatif_math.PD_ROWS_MAX)} test rows · "
                    f"one {'marker' if categorical else 'line'} per classifier")
        current = None
    else:
        x = data.X[row]
        probas = {key: whatif_math.ice_curve(p.predict_proba, x, j, grid) for key, p in predictors.items()}
        name = data.row_names[row]
        title = f"What if {feature} were different? Row {row}{f' ({name})' if name else ''} — probability of {space.class_names[class_index]}"
        subtitle = (f"everything else kept as in row {row} · {'marked' if categorical else 'dotted line'}: "
                    f"its {feature} ({space.value_text(j, x[j])})")
        current = float(x[j])
    class_name = space.class_names[class_index]
    lines = {classifier_label_of(key): proba[:, class_index] for key, proba in probas.items()}
    figure = whatif_plot(grid, labels, lines, feature=feature, class_name=class_name, title=title, subtitle=subtitle,
                         current=current, categorical=categorical)
    png, svg = figure_render(figure)
    alt = whatif_alt_text(feature=feature, class_name=class_name, labels=labels, lines=lines, row=row,
                          categorical=categorical)
    subject = f"row{row}_{feature}" if row is not None else feature
    with transaction.atomic():
        plot = plot_files_save(job=job, classifier="", kind="whatif" if row is not None else "partial_dependence",
                               png=png, svg=svg, title=title, alt=alt)
        Plot.objects.filter(pk=plot.pk).update(subject=subject[:200])
        fields = {"grid": [float(v) for v in grid], "grid_labels": labels, "plot": plot, "status": WhatIfStatus.READY,
                  "error": "",
                  "curves": {key: whatif_math.curves_by_class(proba, space.class_names) for key, proba in probas.items()}}
        requested = WhatIf.objects.filter(job=job, row=row, feature=feature).exclude(status=WhatIfStatus.READY)
        if requested.update(**fields):  # asked for on a page: fill in the request
            return WhatIf.objects.get(job=job, row=row, feature=feature)
        try:
            with transaction.atomic():
                return WhatIf.objects.create(job=job, row=row, feature=feature, **fields)
        except IntegrityError:  # two tasks finishing at once both drew it
            plot.delete()
            return None


WHATIF_REDRAW_AFTER = timedelta(minutes=2)  # a request "drawing" or "failed" for longer than this is queued again


def whatif_get(*, job: Job, row: int | None, feature: str) -> WhatIf:
    """A stored what-if; one not drawn yet (the row was explained but the feature not chosen) is queued for a
    worker and comes back ``DRAWING`` (no model is ever loaded in a web request). Asking again while it is
    drawn queues nothing more; a failed one answers its reason, and is tried again when asked for
    ``WHATIF_REDRAW_AFTER`` later."""
    features = job.schema.get("features", [])
    if feature not in features:  # first: whatever was typed reaches the database only once known to be a feature
        raise ApplicationError(f"“{feature[:100]}” is not a feature of this job; pick one of {', '.join(features[:20])}.",
                               {"field": "feature"}, status=404)
    found = WhatIf.objects.filter(job=job, row=row, feature=feature).select_related("plot").first()
    now = timezone.now()
    # Drawing for longer than that: its message was lost. Failed that long ago: asking again tries again (a poll
    # right after a failure sees the failure, not a new attempt).
    if found and (found.status == WhatIfStatus.READY or (found.requested_at or now) >= now - WHATIF_REDRAW_AFTER):
        return found
    if found is None:
        if row is not None and not Explanation.objects.filter(job=job, row=row).exists():
            raise ApplicationError(f"Row {row} was not explained in this job.", {"field": "row"}, status=404)
        if job.schema.get("text") or job.schema.get("image_shape"):
            raise ApplicationError("What-if curves sweep a table's column; this job explains texts or images.", status=409)
        if not job.runs.exclude(status=ModelRunStatus.PENDING).exists():
            raise ApplicationError("No classifier of this job is trained yet; what-if curves come once one is.", status=409)
        try:
            with transaction.atomic():
                found = WhatIf.objects.create(job=job, row=row, feature=feature, status=WhatIfStatus.DRAWING, requested_at=now)
        except IntegrityError:  # asked twice at once: the other request queued it
            return WhatIf.objects.select_related("plot").get(job=job, row=row, feature=feature)
    else:  # asked again after it failed, or its message was lost: draw it again
        WhatIf.objects.filter(pk=found.pk).update(requested_at=now, status=WhatIfStatus.DRAWING, error="")
        found.refresh_from_db()
    whatif_id = found.pk
    transaction.on_commit(lambda: whatif_enqueue(job=job, whatif_id=whatif_id))
    return found


def whatif_enqueue(*, job: Job, whatif_id: int) -> None:
    from explanations.tasks import whatif_draw as whatif_draw_task

    specs = [classifier_spec_or_none(key) for key in job.classifiers]  # an uploaded network's queue too
    queues = {spec.queue for spec in specs if spec is not None}
    try:
        whatif_draw_task.apply_async(args=[whatif_id], queue="gpu" if "gpu" in queues else "celery")
    except Exception:  # the broker is away: say so on the what-if; asking again later queues it again
        logger.exception("what-if %s could not be queued", whatif_id)
        WhatIf.objects.filter(pk=whatif_id, status=WhatIfStatus.DRAWING).update(
            status=WhatIfStatus.FAILED, error="The work queue is unavailable right now; ask for this curve again in a minute.")


def whatif_draw(*, whatif_id: int) -> None:
    """On a worker: compute and draw a what-if that was asked for after the job ran."""
    whatif = WhatIf.objects.select_related("job", "job__dataset").filter(pk=whatif_id).first()
    if whatif is None or whatif.status == WhatIfStatus.READY:  # deleted meanwhile, or a redelivered message
        return
    job = whatif.job
    data = job_data_build(dataset=job.dataset, schema=job.schema, test_size=job.params["test_size"], seed=job.params["seed"])
    predictors = job_models_load(job=job, data=data)
    if not predictors:
        whatif_fail(whatif_id=whatif_id, reason="No trained model of this job is left to draw the curve with.")
        return
    whatif_save(job=job, data=data, predictors=predictors, row=whatif.row, feature=whatif.feature)


def whatif_fail(*, whatif_id: int, reason: str) -> None:
    WhatIf.objects.filter(pk=whatif_id).exclude(status=WhatIfStatus.READY).update(status=WhatIfStatus.FAILED, error=reason)


def whatif_list(*, job: Job, row: int | None = None, partial_dependence: bool = False, ready_only: bool = True):
    items = WhatIf.objects.filter(job=job).select_related("plot")
    if ready_only:
        items = items.filter(status=WhatIfStatus.READY)
    return items.filter(row__isnull=True) if partial_dependence else items.filter(row=row)
