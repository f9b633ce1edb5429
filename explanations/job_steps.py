"""The work of each step of a job (``explanations.pipeline`` says which steps exist and when they run).

One runner for tables, texts and images: a ``Modality`` supplies building the data, fitting, the predictor, the
global views and whether trust is measured; everything else (rows, batches, saving, progress, cancelling) is the
same code. Every step is safe to run twice: it does only what is not saved yet.

A worker process keeps the last few jobs' data, models and fitted explainers (``StepCache``), so the batches of
one job that land on the same worker build them once.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from datasets.selectors import dataset_frame_load
from explainer_site.exceptions import ApplicationError
from explanations.image_trust_run import image_agreement_finish, image_trust_compute, roar_run
from explanations.insights import run_insight_finish, trust_meter_build
from explanations.job_data import JobData, image_data_from_frame, job_data_from_frame, text_data_from_frame
from explanations.ml.catalogue import global_view_entries
from explanations.ml.classifiers import classifier_fit, predictor_build
from explanations.ml.engine import JobStopped, stop_check
from explanations.ml.explainers.base import ExplainerError, ExplanationResult
from explanations.ml.image_models import image_predictor_build
from explanations.ml.modalities import explainer_for, schema_modality
from explanations.ml.model_files import model_file_load
from explanations.ml.text_models import text_predictor_build
from explanations.models import Explanation, Job, JobStatus, ModelRun, ModelRunStatus, Plot, Step, WhatIf
from explanations.pipeline import MODALITIES_WITH_TRUST
from explanations.rows import rows_need_predictions, rows_resolve
from explanations.services.job_state import job_deadline_check, job_stage_set
from explanations.services.results_save import explanation_picture, explanation_save, model_run_record, plot_files_save
from explanations.summaries import run_summary_plots, summary_rows_compute, summary_rows_load, summary_rows_store
from explanations.text_image_run import (
    attribution_store,
    image_fit,
    image_summaries,
    text_fit,
    text_summaries,
    train_units,
)
from explanations.whatifs import whatif_features, whatif_save
from uploaded_models.job_classifiers import classifier_spec_of, uploaded_model_job_load
from uploaded_models.selectors import uploaded_model_id

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------- the kinds of data


def table_fit(*, job: Job, run: ModelRun, data: JobData, params: dict, on_epoch=None):
    return classifier_fit(run.classifier, params, data.space, data.X[data.train_idx], data.y[data.train_idx],
                          seed=job.params["seed"])


def table_summaries(*, job: Job, run: ModelRun, data: JobData, predictor) -> None:
    run_summary_plots(job=job, run=run, data=data, predictor=predictor)
    run_insight_finish(job=job, run=run, data=data)


@dataclass(frozen=True)
class Modality:
    """What differs between tables, texts and images (the rest of a job's steps is the same code)."""

    name: str
    noun: str  # what one row is, for the stage line
    data_from_frame: Callable[..., JobData]
    fit: Callable[..., Any]
    predictor_build: Callable[..., Any]
    summaries: Callable[..., None]


MODALITIES: dict[str, Modality] = {
    "tabular": Modality("tabular", "row", job_data_from_frame, table_fit, predictor_build, table_summaries),
    "text": Modality("text", "message", text_data_from_frame, text_fit, text_predictor_build,
                     lambda *, job, run, data, predictor: text_summaries(job=job, run=run, data=data)),
    "image": Modality("image", "image", image_data_from_frame, image_fit, image_predictor_build,
                      lambda *, job, run, data, predictor: image_summaries(job=job, run=run, data=data)),
}  # which of them measure trust (a batch_trust step per batch): pipeline.MODALITIES_WITH_TRUST


def modality_of(job: Job) -> Modality:
    return MODALITIES[schema_modality(job.schema)]


# ---------------------------------------------------------------- what a worker process keeps between steps


class StepCache:
    """A few recent entries by key, oldest dropped first (a worker explains batch after batch of the same job)."""

    def __init__(self, size: int) -> None:
        self.size, self.items = size, OrderedDict()

    def get(self, key, build: Callable[[], Any]):
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        value = build()
        self.items[key] = value
        while len(self.items) > self.size:
            self.items.popitem(last=False)
        return value

    def clear(self) -> None:
        self.items.clear()


DATA_CACHE, MODEL_CACHE, EXPLAINER_CACHE = StepCache(2), StepCache(4), StepCache(8)


def job_identity(job: Job) -> tuple:
    """What tells a job apart for the caches, even in a database whose ids were used before (tests, a restore)."""
    return job.pk, job.created_at.isoformat()


def job_data(job: Job) -> JobData:
    key = (*job_identity(job), job.dataset.sha256)
    return DATA_CACHE.get(key, lambda: modality_of(job).data_from_frame(
        dataset_frame_load(dataset=job.dataset), schema=job.schema, test_size=job.params["test_size"],
        seed=job.params["seed"]))


def run_predictor(*, job: Job, run: ModelRun, data: JobData):
    """The run's fitted model (the file our own worker wrote, never an upload), as a predictor."""
    def load():
        with run.model_file.open("rb") as handle:
            return modality_of(job).predictor_build(run.classifier, model_file_load(handle), data.space)

    return MODEL_CACHE.get((*job_identity(job), run.pk, run.model_file.name), load)


def run_explainer(*, job: Job, run: ModelRun, data: JobData, predictor, explainer_key: str):
    modality = modality_of(job)
    explainer_cls = explainer_for(explainer_key, modality.name)
    seed = job.params["seed"]

    def fit():
        try:
            return explainer_cls(**job.params.get(explainer_key, {})).fit(data.background(seed), predictor, data.space,
                                                                          seed=seed)
        except ExplainerError as exc:
            label = classifier_spec_of(run.classifier, modality.name).label
            raise ApplicationError(f"{explainer_cls.label} could not be set up for {label}: {exc}") from exc

    return EXPLAINER_CACHE.get(("explain", *job_identity(job), run.pk, run.model_file.name, explainer_key), fit)


# ---------------------------------------------------------------- the steps


def model_train(*, step: Step) -> None:
    """Train the classifier (once: a redelivered step loads the saved model), then resolve its rows."""
    job, run = step.job, step.run
    modality = modality_of(job)
    spec = classifier_spec_of(run.classifier, modality.name)
    job_stage_set(job.pk, f"Preparing the {modality.noun}s for {spec.label}", run_id=run.pk)
    data = job_data(job)
    if run.status == ModelRunStatus.PENDING or not run.model_file:
        if not job_stage_set(job.pk, f"Training {spec.label}", run_id=run.pk):
            return

        def on_epoch(epoch: int, epochs: int) -> None:  # only the CNN learns in epochs it reports
            ModelRun.objects.filter(pk=run.pk).update(units_done=epoch)
            job_stage_set(job.pk, f"Training CNN: epoch {epoch} of {epochs}", run_id=run.pk)

        started = time.perf_counter()
        if uploaded_model_id(run.classifier) is not None:  # a user's own model: loaded and checked, not trained
            model = uploaded_model_job_load(key=run.classifier, data=data, dataset=job.dataset)
        else:
            model = modality.fit(job=job, run=run, data=data, params=job.params["classifiers"].get(run.classifier, {}),
                                 on_epoch=on_epoch)
        fit_seconds = time.perf_counter() - started
        predictor = modality.predictor_build(run.classifier, model, data.space)
        model_run_record(job=job, run=run, data=data, model=model, predictor=predictor, fit_seconds=fit_seconds)
        if modality.name == "image":
            run.metrics["device"] = str(getattr(model, "device_", "cpu"))
            ModelRun.objects.filter(pk=run.pk).update(metrics=run.metrics)
        MODEL_CACHE.get((*job_identity(job), run.pk, run.model_file.name), lambda: predictor)
    if rows_need_predictions(job.rows_spec):  # a join: the rows follow from every classifier's predictions
        runs = list(job.runs.all())
        if any(r.status == ModelRunStatus.PENDING or not r.model_file for r in runs):
            return  # the last classifier to finish training resolves the rows of all
    else:
        runs = [run]
    probabilities = None
    if rows_need_predictions(job.rows_spec):  # the same rows for every classifier: the most confident mistakes
        X_test = data.X[data.test_idx]
        probabilities = {other.classifier: run_predictor(job=job, run=other, data=data).predict_proba(X_test)
                         for other in runs}
    rows = rows_resolve(job=job, data=data, probabilities=probabilities)
    for other in runs:
        trained = train_units(job=job, run=other)  # progress: training, each row, global views
        ModelRun.objects.filter(pk=other.pk, rows_resolved=False).update(
            rows=rows, rows_resolved=True, units_total=trained + 1 + len(rows) * len(job.explainers), units_done=trained)


def batch_explain(*, step: Step) -> None:
    """Explain the step's rows not saved yet with its explainer, and save each with its picture."""
    job, run = step.job, step.run
    modality = modality_of(job)
    done = set(Explanation.objects.filter(job=job, classifier=run.classifier, explainer=step.explainer,
                                          row__in=step.rows).values_list("row", flat=True))
    pending = [r for r in step.rows if r not in done]
    if pending:
        explainer_cls = explainer_for(step.explainer, modality.name)
        spec = classifier_spec_of(run.classifier, modality.name)
        position = run.rows.index(step.rows[0]) + 1 if step.rows[0] in run.rows else 1
        last = position + len(step.rows) - 1
        span = f"{modality.noun} {position}" if position == last else f"{modality.noun}s {position}–{last}"
        if not job_stage_set(job.pk, f"Explaining {span} of {len(run.rows)} with {explainer_cls.label} — {spec.label}",
                             run_id=run.pk):
            return
        data = job_data(job)
        predictor = run_predictor(job=job, run=run, data=data)
        explainer = run_explainer(job=job, run=run, data=data, predictor=predictor, explainer_key=step.explainer)
        started = time.perf_counter()
        results = explainer.explain(data.X[pending], pending)
        seconds = (time.perf_counter() - started) / max(len(pending), 1)
        # Image maps are trusted here, before they are saved (the scores read the result's own map). So are the
        # rows of an explainer that answers the same whatever its seed (exact TreeSHAP): it has nothing to rerun,
        # its scores cost a few model calls, and its picture is drawn once, with them (its trust step finds them).
        if modality.name == "image":
            trusts = image_trust_compute(job=job, run=run, data=data, predictor=predictor, results=results)
        elif modality.name in MODALITIES_WITH_TRUST and explainer.seed_free():
            trusts = run_trust_meter(job=job, run=run, data=data, predictor=predictor,
                                     explainer_key=step.explainer).measure(results)
        else:
            trusts = {}
        for result in results:
            stop_check()  # drawing a row's plots takes a while: a cancel stops between rows
            job_deadline_check()  # and so does the time limit, even when its signal was swallowed
            if getattr(result, "attribution", None) is not None:
                attribution_store(job=job, run=run, result=result)
            explanation_save(job=job, run=run, data=data, result=result, seconds=seconds, trust=trusts.get(result.row))
    run_progress_update(run=run)


def run_trust_meter(*, job: Job, run: ModelRun, data: JobData, predictor, explainer_key: str):
    """The trust meter of one explainer on one classifier, built once per process, its reruns copies of the explain
    steps' explainer where they can be."""
    return EXPLAINER_CACHE.get(("trust", *job_identity(job), run.pk, run.model_file.name, explainer_key), lambda: trust_meter_build(
        job=job, data=data, predictor=predictor, explainer_key=explainer_key,
        fitted=run_explainer(job=job, run=run, data=data, predictor=predictor, explainer_key=explainer_key)))


def run_progress_update(*, run: ModelRun) -> None:
    finished = Explanation.objects.filter(job_id=run.job_id, classifier=run.classifier).count()
    base = train_units(job=run.job, run=run)
    ModelRun.objects.filter(pk=run.pk).update(units_done=min(base + finished, max(run.units_total - 1, base)))


def batch_trust(*, step: Step) -> None:
    """Trust scores of a batch already explained (and visible): stability reruns, faithfulness and the rest; the
    picture is drawn again only where the scores add to it (LIME's error bars)."""
    job, run = step.job, step.run
    explanations = [e for e in Explanation.objects.filter(job=job, classifier=run.classifier, explainer=step.explainer,
                                                          row__in=step.rows)
                    if (e.trust or {}).get("stability_seeds") is None]
    if not explanations:
        return
    explainer_cls = explainer_for(step.explainer, "tabular")
    spec = classifier_spec_of(run.classifier, "tabular")
    if not job_stage_set(job.pk, f"Measuring how far to trust {explainer_cls.label} on rows {step.rows[0]}–{step.rows[-1]}"
                                 f" — {spec.label}", run_id=run.pk):
        return
    data = job_data(job)
    predictor = run_predictor(job=job, run=run, data=data)
    meter = run_trust_meter(job=job, run=run, data=data, predictor=predictor, explainer_key=step.explainer)
    names = data.space.class_names
    results = [ExplanationResult(method=e.explainer, row=e.row, predicted=names.index(e.predicted),
                                 probabilities=[e.probabilities.get(name, 0.0) for name in names], data=e.data, meta=e.meta)
               for e in explanations]
    trusts = meter.measure(results)
    for explanation, result in zip(explanations, results):
        trust = trusts.get(explanation.row)
        if trust is None:
            continue
        stop_check()
        Explanation.objects.filter(pk=explanation.pk).update(trust=trust)
        if explainer_cls.plot_options(trust):
            explanation_redraw(job=job, run=run, data=data, explanation=explanation, result=result, trust=trust,
                               plot_files_save=plot_files_save)


def explanation_redraw(*, job: Job, run: ModelRun, data: JobData, explanation: Explanation, result: ExplanationResult,
                       trust: dict, plot_files_save) -> None:
    title, png, svg, alt = explanation_picture(job=job, run=run, data=data, result=result, trust=trust)
    old = list(Plot.objects.filter(explanation=explanation, kind=result.method))
    plot_files_save(job=job, classifier=run.classifier, kind=result.method, png=png, svg=svg, title=title, alt=alt,
                    explanation=explanation)
    for plot in old:
        for field in (plot.png, plot.svg):
            try:
                field.storage.delete(field.name)
            except OSError:
                logger.warning("could not remove the older plot %s", field.name)
        plot.delete()


def summary_rows(*, step: Step) -> None:
    """More test rows for a classifier's model-wide view (``explanations.summaries``), explained beside the rows the
    user picked, so that the global views only draw once those are in."""
    job, run = step.job, step.run
    modality = modality_of(job)
    entry = next((e for e in global_view_entries(modality.name) if e.key == step.explainer), None)
    if entry is None or summary_rows_load(job=job, run=run, key=entry.key) is not None:
        return
    spec = classifier_spec_of(run.classifier, modality.name)
    if not job_stage_set(job.pk, f"Explaining more test rows for the {entry.label} summary — {spec.label}", run_id=run.pk):
        return
    data = job_data(job)
    predictor = run_predictor(job=job, run=run, data=data)
    explainer = run_explainer(job=job, run=run, data=data, predictor=predictor, explainer_key=entry.key)
    records = summary_rows_compute(job=job, run=run, data=data, predictor=predictor, entry=entry, explainer=explainer)
    summary_rows_store(job=job, run=run, key=entry.key, records=records)


def model_run_finish(*, step: Step) -> None:
    """A classifier's global views, once its rows are explained and trusted."""
    job, run = step.job, step.run
    modality = modality_of(job)
    spec = classifier_spec_of(run.classifier, modality.name)
    if not job_stage_set(job.pk, f"Drawing the global views for {spec.label}", run_id=run.pk):
        return
    data = job_data(job)
    predictor = run_predictor(job=job, run=run, data=data)
    if modality.name == "image":  # how far the maps agree, and remove-and-retrain, once every map is in
        image_agreement_finish(job=job, run=run)
        roar_run(job=job, run=run, data=data, predictor=predictor,
                 stage=lambda text: job_stage_set(job.pk, text, run_id=run.pk))
    modality.summaries(job=job, run=run, data=data, predictor=predictor)
    run.refresh_from_db(fields=["units_total"])
    ModelRun.objects.filter(pk=run.pk).update(status=ModelRunStatus.DONE, units_done=run.units_total)


def whatif_curves(*, step: Step) -> None:
    """One row's what-if curves (or, without a row, partial dependence over the test rows), every classifier
    overlaid, for the job's what-if features. A curve that fails is logged: the explanations are worth delivering."""
    job = step.job
    row = step.rows[0] if step.rows else None
    if not job_stage_set(job.pk, f"Drawing what-if curves for row {row}" if row is not None else
                         "Drawing partial dependence over the test rows"):
        return
    data = job_data(job)
    runs = sorted((r for r in job.runs.all() if r.model_file),
                  key=lambda r: job.classifiers.index(r.classifier) if r.classifier in job.classifiers else 99)
    predictors = {run.classifier: run_predictor(job=job, run=run, data=data) for run in runs}
    if not predictors:
        return
    done = set(WhatIf.objects.filter(job=job, row=row).values_list("feature", flat=True))
    for feature in whatif_features(job=job, data=data):
        if feature in done:
            continue
        stop_check()
        try:
            whatif_save(job=job, data=data, predictors=predictors, row=row, feature=feature)
        except (SoftTimeLimitExceeded, JobStopped):
            raise
        except Exception:
            logger.exception("job %s: the what-if curve of %s for row %s failed", job.pk, feature, row)


def job_finish(*, step: Step) -> None:
    """Every step is done: the job has succeeded (its ZIP is packed when downloaded)."""
    from django.utils import timezone

    job = step.job
    Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(status=JobStatus.SUCCEEDED, stage="Done",
                                                                   finished_at=timezone.now())


STEP_WORK: dict[str, Callable[..., None]] = {
    "train": model_train, "explain": batch_explain, "trust": batch_trust, "summary": summary_rows,
    "run_finish": model_run_finish,
    "whatif": whatif_curves, "job_finish": job_finish,
}


def step_work(*, step: Step) -> None:
    STEP_WORK[step.kind](step=step)
