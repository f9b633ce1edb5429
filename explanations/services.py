"""Writes of jobs: create (validate, enqueue on commit), cancel, fail, delete; what every step saves (model, plots,
explanations). The steps themselves are ``explanations.job_steps``; when they run, ``explanations.pipeline``."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import joblib
import numpy as np
from celery.exceptions import SoftTimeLimitExceeded
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from datasets.models import Dataset
from explainer_site.exceptions import ApplicationError
from explanations import quotas
from explanations.insights import insight_params_clean
from explanations.job_data import JobData
from explanations.ml.catalogue import IMAGE_EXPLAINERS_CALLING_ONLY, explainer_entry
from explanations.ml.classifiers import CLASSIFIERS
from explanations.ml.engine import JobStopped
from explanations.ml.explainers import EXPLAINERS, explainer_explains
from explanations.ml.explainers.base import ExplainerError, ExplanationResult, number_parse, params_clean
from explanations.ml.lazy import lazy
from explanations.ml.modalities import explainer_for, schema_modality
from explanations.models import FINAL_STATUSES, Explanation, Job, JobStatus, ModelRun, ModelRunStatus, Plot
from explanations.pipeline import (
    job_steps_start,
    job_steps_stop,
    jobs_stale_sweep,  # noqa: F401  (its home is the pipeline; older imports find it here)
    steps_feed,
)
from explanations.rows import (  # noqa: F401 (ROW_SPEC_KEYS, rows_resolve: re-exported)
    ROW_SPEC_KEYS,
    rows_resolve,
    rows_spec_clean,
    rows_spec_resubmit,
)
from uploaded_models.job_classifiers import classifier_spec_of
from uploaded_models.selectors import uploaded_model_id

# Imported where models are fitted and plots drawn (workers), not when the web process loads this module.
accuracy_score = lazy("sklearn.metrics", "accuracy_score")
confusion_matrix = lazy("sklearn.metrics", "confusion_matrix")
f1_score = lazy("sklearn.metrics", "f1_score")
explanation_alt = lazy("explanations.ml.plots", "explanation_alt")
explanation_figure = lazy("explanations.ml.plots", "explanation_figure")
figure_render = lazy("explanations.ml.plots", "figure_render")
confusion_matrix_plot = lazy("explanations.ml.plots.metrics", "confusion_matrix_plot")

logger = logging.getLogger(__name__)

TEST_SIZE_DEFAULT = 0.25


# ---------------------------------------------------------------- create


def job_options_clean(*, dataset: Dataset, classifiers: list[str], explainers: list[str], rows: dict,
                      params: dict | None) -> dict:
    """Validate a job request; every problem is an ``ApplicationError`` naming its field and the fix."""
    if not dataset.schema:
        raise ApplicationError("Name the dataset's columns first (which one to predict, which are features).",
                               {"field": "dataset"})
    classifiers = list(dict.fromkeys(classifiers or []))
    explainers = list(dict.fromkeys(explainers or []))
    if not classifiers:
        raise ApplicationError("Pick at least one classifier.", {"field": "classifiers"})
    if not explainers:
        raise ApplicationError("Pick at least one explainer.", {"field": "explainers"})
    modality = schema_modality(dataset.schema)
    try:  # which keys (and which of their variants) serve this dataset's kind of data
        classifier_specs = {key: classifier_spec_of(key, modality, dataset=dataset) for key in classifiers}
    except KeyError as exc:
        raise ApplicationError(str(exc.args[0]), {"field": "classifiers"}) from None
    try:
        # the catalogue's entries: checking a job loads no explainer implementation in the web process
        explainer_classes = {key: explainer_entry(key, modality) for key in explainers}
    except ExplainerError as exc:
        raise ApplicationError(str(exc), {"field": "explainers"}) from None
    for explainer_cls in explainer_classes.values():  # gradient methods need the network's gradients
        refused = [classifier_specs[c].label for c in classifiers if not explainer_explains(explainer_cls, c)]
        if refused:
            raise ApplicationError(f"{explainer_cls.label} cannot explain {', '.join(refused)}: it needs the network's "
                                   f"gradients. Leave it out, or pick only {', '.join(CLASSIFIERS[c].label for c in explainer_cls.classifiers)}.",
                                   {"field": "explainers"})
    if modality == "image":  # an uploaded ONNX graph is only called: the methods that read gradients cannot run
        called_only = [spec.label for spec in classifier_specs.values() if not getattr(spec, "gradients", True)]
        refused = [e.label for key, e in explainer_classes.items() if key not in IMAGE_EXPLAINERS_CALLING_ONLY]
        if called_only and refused:
            raise ApplicationError(
                f"{', '.join(refused)} cannot explain {', '.join(called_only)}: they need the network's gradients, and "
                f"an ONNX model is only called. Leave them out, or pick "
                f"{', '.join(explainer_entry(k, 'image').label for k in IMAGE_EXPLAINERS_CALLING_ONLY)}.",
                {"field": "explainers"})
    params = dict(params or {})
    clean: dict = {}
    try:
        test_size = number_parse(params.pop("test_size", TEST_SIZE_DEFAULT), whole=False)
        seed = number_parse(params.pop("seed", 0), whole=True)
    except ValueError:
        raise ApplicationError("Test split must be a fraction such as 0.25 and seed a whole number.", {"field": "params"}) from None
    if not 0.05 <= test_size <= 0.5:
        raise ApplicationError(f"Test split must be between 0.05 and 0.5 (got {test_size:g}).", {"field": "test_size"})
    if not 0 <= seed <= 2**31 - 1:
        raise ApplicationError("Seed must be a whole number between 0 and 2147483647.", {"field": "seed"})
    clean["test_size"], clean["seed"] = test_size, seed
    classifier_params = params.pop("classifiers", {}) or {}
    if not isinstance(classifier_params, dict):
        raise ApplicationError("Classifier settings must be an object by classifier, such as "
                               "{\"random_forest\": {\"n_estimators\": 100}}.", {"field": "params"})
    clean["classifiers"] = {}
    for key in classifiers:
        try:
            clean["classifiers"][key] = params_clean(classifier_specs[key].params, classifier_params.get(key) or params.pop(key, None))
        except ValueError as exc:
            raise ApplicationError(f"{classifier_specs[key].label}: {exc}", {"field": key}) from None
    for key in explainers:
        try:
            clean[key] = params_clean(explainer_classes[key].params, params.pop(key, None),
                                      features=dataset.schema.get("features", []))
        except ValueError as exc:
            raise ApplicationError(f"{explainer_classes[key].label}: {exc}", {"field": key}) from None
    clean.update(insight_params_clean(params=params, features=dataset.schema.get("features", []),
                                      image=bool(dataset.schema.get("image_shape"))))
    stray = [k for k in params if k not in EXPLAINERS and k not in CLASSIFIERS]
    if stray:
        raise ApplicationError(f"Unknown parameter group(s): {', '.join(stray)}.", {"field": "params"})
    return {"classifiers": classifiers, "explainers": explainers, "rows": rows_spec_clean(dataset=dataset, rows=rows),
            "params": clean}


def job_create(*, owner, dataset: Dataset, classifiers: list[str], explainers: list[str], rows: dict | None = None,
               params: dict | None = None, request_key: str = "") -> Job:
    """Record the job and queue one task per classifier once the row is committed. Same ``request_key`` = same job.

    When the queue cannot take the tasks the job is deleted again and ``ApplicationError`` (503) says so:
    a job is either queued or not there, never silently stuck. A job over the cost limit (400) or past the
    owner's number of active jobs (429) is refused with the sentence that says how to fit (``quotas``).
    """
    options = job_options_clean(dataset=dataset, classifiers=classifiers, explainers=explainers, rows=rows, params=params)
    quotas.job_cost_check(dataset=dataset, options=options)
    request_key = (request_key or "")[:64]
    with transaction.atomic():
        if request_key:
            existing = Job.objects.filter(owner=owner, request_key=request_key).first()
            if existing:
                return existing
        # One submission of this owner at a time from here to the commit, so a burst is counted job by job
        # (SQLite's immediate transactions already serialise writers; PostgreSQL needs the row lock).
        get_user_model().objects.select_for_update().filter(pk=owner.pk).first()
        quotas.active_jobs_check(owner=owner)
        job = Job(owner=owner, dataset=dataset, classifiers=options["classifiers"], explainers=options["explainers"],
                  rows_spec=options["rows"], params=options["params"], schema=dataset.schema, request_key=request_key,
                  stage="Waiting for a worker")
        job.full_clean(exclude=["result_zip"], validate_constraints=False)
        try:
            with transaction.atomic():
                job.save()
        except IntegrityError:  # the same form posted twice at once: the other request made the job
            return Job.objects.get(owner=owner, request_key=request_key)
        now = timezone.now()
        ModelRun.objects.bulk_create(ModelRun(job=job, classifier=key, queued_at=now) for key in job.classifiers)
        job_steps_start(job=job)
        transaction.on_commit(lambda: job_enqueue(job=job))
    return job


def job_enqueue(*, job: Job) -> None:
    """Send the job's first steps (its training), or as many as the owner's allowance in the queue takes."""
    try:
        steps_feed(owner_id=job.owner_id, strict=True)
    except Exception as exc:  # whatever the broker says, the job was not queued
        logger.exception("job %s could not be queued", job.pk)
        with transaction.atomic():
            job_delete(job=job)
        raise ApplicationError("The job queue is unavailable right now, so nothing was started. Try again in a minute.",
                               {"field": "queue"}, status=503) from exc


@transaction.atomic
def job_rerun(*, job: Job) -> Job:
    """A new job with the same dataset, schema, classifiers, explainers, rows, parameters and seeds."""
    rows = rows_spec_resubmit(job.rows_spec)
    params = dict(job.params)
    if isinstance(params.get("lime"), dict) and "shared_samples" not in params["lime"]:
        # Made before LIME shared one draw of samples across rows: its rows drew their own, so the rerun does too.
        params["lime"] = {**params["lime"], "shared_samples": False}
    new = job_create(owner=job.owner, dataset=job.dataset, classifiers=list(job.classifiers),
                     explainers=list(job.explainers), rows=rows, params=params)
    if new.schema != job.schema:  # the dataset's columns were renamed since: keep the old job's (tasks start on commit)
        Job.objects.filter(pk=new.pk).update(schema=job.schema)
        new.schema = job.schema
    return new


# ---------------------------------------------------------------- state changes


def job_cancel(*, job: Job) -> Job:
    """Stop the job within about a second (its tasks' ``JobStopCheck``); finished explanations stay."""
    updated = Job.objects.filter(pk=job.pk, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).update(
        status=JobStatus.CANCELLED, stage="Cancelled", finished_at=timezone.now())
    job_steps_stop(job_id=job.pk)
    job.refresh_from_db()
    if not updated and job.status not in FINAL_STATUSES:
        raise ApplicationError("This job cannot be cancelled now.")
    return job


def job_fail(*, job_id: int, reason: str) -> None:
    """The one place failures are recorded: a sentence the user can act on."""
    Job.objects.filter(pk=job_id).exclude(status__in=FINAL_STATUSES).update(
        status=JobStatus.FAILED, error=reason[:2000], stage="Failed", finished_at=timezone.now())
    job_steps_stop(job_id=job_id)


def job_delete(*, job: Job) -> None:
    """Its files go once the deletion commits (``explanations.receivers.job_files_delete``)."""
    job.delete()


_deadline: ContextVar[float | None] = ContextVar("job_deadline", default=None)


@contextmanager
def job_deadline(seconds: float | None) -> Iterator[None]:
    """Work inside must end within ``seconds``: checked at every stage (so at every batch) by ``job_stage_set``.

    Celery's soft time limit is an exception raised asynchronously by a signal handler; one that lands inside a
    logging handler, a ``__del__`` or a library's ``except Exception`` is swallowed and the task runs on to the
    hard kill. This check makes the limit certain at the next batch boundary.
    """
    token = _deadline.set(time.monotonic() + seconds if seconds else None)
    try:
        yield
    finally:
        _deadline.reset(token)


def job_deadline_check() -> None:
    deadline = _deadline.get()
    if deadline is not None and time.monotonic() > deadline:
        raise SoftTimeLimitExceeded("the task's time limit passed")


def job_stage_set(job_id: int, stage: str, *, run_id: int | None = None) -> bool:
    """Record what the job is doing; returns False when the job was cancelled or failed meanwhile (stop then).

    The job's and the run's stage are what pages show (the steps' own heartbeats are ``pipeline.step_heartbeat``).
    Raises ``SoftTimeLimitExceeded`` once the step's deadline (``job_deadline``) has passed.
    """
    job_deadline_check()
    now = timezone.now()
    alive = bool(Job.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(stage=stage[:300], heartbeat_at=now))
    if alive and run_id is not None:
        ModelRun.objects.filter(pk=run_id).update(heartbeat_at=now, stage=stage[:300])
        ModelRun.objects.filter(pk=run_id, started_at__isnull=True).update(started_at=now)  # the live ETA's clock
    return alive


class JobStopCheck:
    """The engines' ``stop_check`` for one job's task: ``JobStopped`` once the job is no longer running.

    Called between every chunk of every engine loop, so it asks the database at most every ``interval``
    seconds, and only from the thread that made it (Django's connections are per thread; the engines' other
    threads see the answer at their next check). The task's deadline stays at batch boundaries (``job_stage_set``),
    so a batch already explained is saved whole.
    """

    def __init__(self, job_id: int, *, interval: float = 1.0) -> None:
        self.job_id, self.interval = job_id, interval
        self.stopped = False
        self._thread = threading.get_ident()
        self._next_poll = time.monotonic() + interval

    def __call__(self) -> None:
        if self.stopped:
            raise JobStopped(f"job {self.job_id} is no longer running")
        if threading.get_ident() != self._thread or time.monotonic() < self._next_poll:
            return
        self._next_poll = time.monotonic() + self.interval
        if not Job.objects.filter(pk=self.job_id, status=JobStatus.RUNNING).exists():
            self.stopped = True
            raise JobStopped(f"job {self.job_id} is no longer running")


def duration_text(seconds: float) -> str:
    minutes = seconds / 60
    if minutes >= 1:
        return f"{minutes:g} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} second{'s' if seconds != 1 else ''}"


# ---------------------------------------------------------------- run


def model_run_record(*, job: Job, run: ModelRun, data: JobData, model, predictor, fit_seconds: float) -> None:
    """Test metrics, the model file and the confusion matrix of a freshly trained model; the run becomes TRAINED."""
    spec = classifier_spec_of(run.classifier)
    y_test = data.y[data.test_idx]
    y_pred = predictor.predict_proba(data.X[data.test_idx]).argmax(axis=1)
    labels = list(range(len(data.space.class_names)))
    matrix = confusion_matrix(y_test, y_pred, labels=labels)
    run.metrics = {
        "accuracy": float(accuracy_score(y_test, y_pred)),
        "f1_macro": float(f1_score(y_test, y_pred, average="macro", labels=sorted(set(y_test) | set(y_pred)), zero_division=0)),
        "n_train": int(len(data.train_idx)),
        "n_test": int(len(data.test_idx)),
        "fit_seconds": round(fit_seconds, 3),
        "confusion_matrix": matrix.tolist(),
        "notes": data.notes,
    }
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    run.model_file.save(f"{job.pk}/{run.classifier}.joblib", ContentFile(buffer.getvalue()), save=False)
    figure = confusion_matrix_plot(matrix, data.space.class_names, title=f"Confusion matrix — {spec.label}",
                                   subtitle=f"{len(data.test_idx)} test rows · accuracy {run.metrics['accuracy']:.1%}")
    plot_save(job=job, classifier=run.classifier, kind="confusion_matrix", figure=figure,
              title=f"Confusion matrix — {spec.label}",
              alt=f"Confusion matrix of {spec.label} on {len(data.test_idx)} test rows; accuracy {run.metrics['accuracy']:.1%}.")
    run.status = ModelRunStatus.TRAINED
    run.seconds = fit_seconds
    run.save()


def explanation_title(*, data: JobData, row: int, predicted: str, classifier_label: str, explainer_label: str) -> str:
    name = data.row_names[row]
    return f"Why row {row}{f' ({name})' if name else ''} is predicted {predicted} — {classifier_label}, {explainer_label}"


def explanation_picture(*, job: Job, run: ModelRun, data: JobData, result: ExplanationResult,
                        trust: dict | None = None) -> tuple[str, bytes, bytes, str]:
    """Title, PNG, SVG and alt text of one row's explanation, as its explainer draws it (with what trust adds)."""
    space = data.space
    predicted = space.class_names[result.predicted]
    spec, explainer_cls = classifier_spec_of(run.classifier), explainer_for(result.method, schema_modality(job.schema))
    label = spec.label if uploaded_model_id(run.classifier) is not None else spec.label.lower()  # a name as typed
    title = explanation_title(data=data, row=result.row, predicted=predicted, classifier_label=label,
                              explainer_label=explainer_cls.label)
    subtitle = " · ".join(f"{k.replace('_', ' ')} {v}" for k, v in job.params.get(result.method, {}).items())
    figure = explanation_figure(explainer_cls, result, space, title=title, subtitle=subtitle, trust=trust)
    png, svg = figure_render(figure)
    return title, png, svg, explanation_alt(explainer_cls, result, space)


def explanation_save(*, job: Job, run: ModelRun, data: JobData, result: ExplanationResult, seconds: float,
                     trust: dict | None = None) -> None:
    """Store one row's explanation with the picture and alt text its explainer names (for this kind of data).

    Once: a redelivered batch finds the row saved and stores nothing (the table's unique row per explainer)."""
    if Explanation.objects.filter(job=job, classifier=run.classifier, explainer=result.method, row=result.row).exists():
        return
    space = data.space
    title, png, svg, alt = explanation_picture(job=job, run=run, data=data, result=result, trust=trust)
    with transaction.atomic():
        try:
            with transaction.atomic():
                explanation = Explanation.objects.create(
                    job=job, classifier=run.classifier, explainer=result.method, row=result.row,
                    row_name=data.row_names[result.row][:300], in_train=bool(np.isin(result.row, data.train_idx)),
                    true_label=data.row_label(result.row), predicted=space.class_names[result.predicted],
                    probabilities={name: round(float(p), 6) for name, p in zip(space.class_names, result.probabilities)},
                    data=dict(result.data), meta=result.meta, trust=trust or {}, seconds=round(seconds, 4))
        except IntegrityError:
            return  # saved meanwhile by another delivery of this batch
        plot_files_save(job=job, classifier=run.classifier, kind=result.method, png=png, svg=svg, title=title,
                        alt=alt, explanation=explanation)


def plot_save(*, job: Job, classifier: str, kind: str, figure, title: str, alt: str) -> Plot:
    png, svg = figure_render(figure)
    Plot.objects.filter(job=job, classifier=classifier, kind=kind, explanation=None).delete()
    return plot_files_save(job=job, classifier=classifier, kind=kind, png=png, svg=svg, title=title, alt=alt)


def plot_files_save(*, job: Job, classifier: str, kind: str, png: bytes, svg: bytes, title: str, alt: str,
                    explanation: Explanation | None = None) -> Plot:
    stem = f"{job.pk}/plots/{classifier}_{kind}" + (f"_row{explanation.row}" if explanation else "")
    plot = Plot(job=job, explanation=explanation, classifier=classifier, kind=kind, title=title[:400], alt=alt)
    plot.png.save(f"{stem}.png", ContentFile(png), save=False)
    plot.svg.save(f"{stem}.svg", ContentFile(svg), save=False)
    plot.save()
    return plot
