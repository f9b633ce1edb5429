"""Writes of jobs: create (validate, enqueue on commit), run one classifier in batches, finish, fail, cancel, delete."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta

import joblib
import numpy as np
import pandas as pd
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from datasets.models import Dataset
from explainer_site.exceptions import ApplicationError
from explanations import quotas
from explanations.insights import insight_params_clean, job_whatif_build, run_insight_finish, trust_meter_build
from explanations.job_data import JobData, job_data_build
from explanations.ml.classifiers import CLASSIFIERS, classifier_fit, predictor_build
from explanations.ml.engine import JobStopped, stop_check
from explanations.ml.explainers import EXPLAINERS, explainer_explains
from explanations.ml.explainers.base import ExplainerError, ExplanationResult, number_parse, params_clean
from explanations.ml.lazy import lazy
from explanations.ml.modalities import classifier_for, explainer_for, schema_modality
from explanations.ml.model_files import model_file_load
from explanations.models import FINAL_STATUSES, Explanation, Job, JobStatus, ModelRun, ModelRunStatus, Plot
from explanations.summaries import run_summary_plots

# Imported where models are fitted and plots drawn (workers), not when the web process loads this module.
accuracy_score = lazy("sklearn.metrics", "accuracy_score")
confusion_matrix = lazy("sklearn.metrics", "confusion_matrix")
f1_score = lazy("sklearn.metrics", "f1_score")
explanation_alt = lazy("explanations.ml.plots", "explanation_alt")
explanation_figure = lazy("explanations.ml.plots", "explanation_figure")
figure_render = lazy("explanations.ml.plots", "figure_render")
confusion_matrix_plot = lazy("explanations.ml.plots.metrics", "confusion_matrix_plot")

logger = logging.getLogger(__name__)

ROW_SPEC_KEYS = ("ids", "names", "random", "misclassified", "all_test")
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
        classifier_specs = {key: classifier_for(key, modality) for key in classifiers}
    except KeyError as exc:
        raise ApplicationError(str(exc.args[0]), {"field": "classifiers"}) from None
    try:
        explainer_classes = {key: explainer_for(key, modality) for key in explainers}
    except ExplainerError as exc:
        raise ApplicationError(str(exc), {"field": "explainers"}) from None
    for explainer_cls in explainer_classes.values():  # gradient methods need the network's gradients
        refused = [classifier_specs[c].label for c in classifiers if not explainer_explains(explainer_cls, c)]
        if refused:
            raise ApplicationError(f"{explainer_cls.label} cannot explain {', '.join(refused)}: it needs the network's "
                                   f"gradients. Leave it out, or pick only {', '.join(CLASSIFIERS[c].label for c in explainer_cls.classifiers)}.",
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
            clean[key] = params_clean(explainer_classes[key].params, params.pop(key, None))
        except ValueError as exc:
            raise ApplicationError(f"{explainer_classes[key].label}: {exc}", {"field": key}) from None
    clean.update(insight_params_clean(params=params, features=dataset.schema.get("features", [])))
    stray = [k for k in params if k not in EXPLAINERS and k not in CLASSIFIERS]
    if stray:
        raise ApplicationError(f"Unknown parameter group(s): {', '.join(stray)}.", {"field": "params"})
    return {"classifiers": classifiers, "explainers": explainers, "rows": rows_spec_clean(dataset=dataset, rows=rows),
            "params": clean}


def rows_spec_clean(*, dataset: Dataset, rows: dict | None) -> dict:
    rows = rows or {"random": 3}
    if not isinstance(rows, dict) or len([k for k in rows if k in ROW_SPEC_KEYS]) != 1:
        raise ApplicationError("Say which rows to explain with exactly one of: ids, names, random, misclassified, all_test.",
                               {"field": "rows"})
    limit = settings.EXPLAINER_MAX_JOB_ROWS
    if "ids" in rows:
        try:
            if not isinstance(rows["ids"], list):
                raise ValueError(rows["ids"])
            ids = [number_parse(i, whole=True) for i in rows["ids"]]
        except ValueError:
            raise ApplicationError("Row ids must be whole numbers such as 0, 12, 244.", {"field": "rows"}) from None
        if not ids:
            raise ApplicationError("Type at least one row id.", {"field": "rows"})
        bad = [i for i in ids if not 0 <= i < dataset.n_rows]
        if bad:
            raise ApplicationError(
                f"Row{'s' if len(bad) > 1 else ''} {', '.join(map(str, bad[:5]))} do{'' if len(bad) > 1 else 'es'} not exist; "
                f"rows are numbered 0 to {dataset.n_rows - 1}.", {"field": "rows"})
        return {"ids": list(dict.fromkeys(ids))[:limit]}
    if "names" in rows:
        row_name = dataset.schema.get("row_name")
        if not row_name:
            raise ApplicationError("This dataset has no row-name column; pick rows by id instead, or set one on the schema page.",
                                   {"field": "rows"})
        if not isinstance(rows["names"], list) or not all(isinstance(n, (str, int, float)) for n in rows["names"]):
            raise ApplicationError("Row names must be a list of names such as [\"alice\", \"bob\"].", {"field": "rows"})
        names = [str(n).strip() for n in rows["names"] if str(n).strip()]
        if not names:
            raise ApplicationError("Type at least one row name.", {"field": "rows"})
        with dataset.data_file.open("rb") as handle:
            column = pd.read_parquet(handle, columns=[row_name])[row_name]
        from datasets.ingest import value_text

        texts = column.map(lambda v: value_text(v) if pd.notna(v) else "")
        ids, missing = [], []
        for name in names:
            hits = np.flatnonzero((texts == name).to_numpy())
            if not len(hits):
                missing.append(name)
            ids.extend(int(i) for i in hits)
        if missing:
            raise ApplicationError(f"No row is named {', '.join(repr(m) for m in missing[:5])} in “{row_name}”.", {"field": "rows"})
        return {"ids": list(dict.fromkeys(ids))[:limit], "names": names}
    if "all_test" in rows:
        if not rows["all_test"]:
            raise ApplicationError("all_test takes true: explain every row of the test split.", {"field": "rows"})
        return {"all_test": True}
    key = "random" if "random" in rows else "misclassified"
    try:
        count = number_parse(rows[key], whole=True)
    except ValueError:
        raise ApplicationError("The number of rows must be a whole number.", {"field": "rows"}) from None
    if not 1 <= count <= limit:
        raise ApplicationError(f"The number of rows must be between 1 and {limit}.", {"field": "rows"})
    spec = {key: count}
    if key == "random":
        try:
            seed = number_parse(0 if rows.get("seed") in (None, "") else rows["seed"], whole=True)
        except ValueError:
            seed = None
        if seed is None or not 0 <= seed <= 2**31 - 1:
            raise ApplicationError("The row seed must be a whole number between 0 and 2147483647.", {"field": "rows"})
        spec["seed"] = seed
    return spec


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
        transaction.on_commit(lambda: job_enqueue(job=job))
    return job


def job_enqueue(*, job: Job) -> None:
    try:
        for key in job.classifiers:
            model_run_enqueue(job_id=job.pk, classifier=key)
    except Exception as exc:  # whatever the broker says, the job was not queued
        logger.exception("job %s could not be queued", job.pk)
        with transaction.atomic():
            job_delete(job=job)
        raise ApplicationError("The job queue is unavailable right now, so nothing was started. Try again in a minute.",
                               {"field": "queue"}, status=503) from exc


def model_run_enqueue(*, job_id: int, classifier: str) -> None:
    from explanations.tasks import job_classifier_run

    # No time limits in the message: the worker that runs the task applies its own (CELERY_TASK_*_TIME_LIMIT),
    # the same ones its failure message and the sweeper quote.
    job_classifier_run.apply_async(args=[job_id, classifier], queue=CLASSIFIERS[classifier].queue,
                                   time_limit=None, soft_time_limit=None)


@transaction.atomic
def job_rerun(*, job: Job) -> Job:
    """A new job with the same dataset, schema, classifiers, explainers, rows, parameters and seeds."""
    spec = dict(job.rows_spec)
    rows = {"names": spec["names"]} if spec.get("names") else {"ids": spec["ids"]} if "ids" in spec else spec
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
    job.refresh_from_db()
    if not updated and job.status not in FINAL_STATUSES:
        raise ApplicationError("This job cannot be cancelled now.")
    return job


def job_fail(*, job_id: int, reason: str) -> None:
    """The one place failures are recorded: a sentence the user can act on."""
    Job.objects.filter(pk=job_id).exclude(status__in=FINAL_STATUSES).update(
        status=JobStatus.FAILED, error=reason[:2000], stage="Failed", finished_at=timezone.now())


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

    Also the heartbeat the stale-job sweeper reads: of the job, and of the classifier run when given. Raises
    ``SoftTimeLimitExceeded`` once the task's deadline (``job_deadline``) has passed.
    """
    job_deadline_check()
    now = timezone.now()
    alive = bool(Job.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(stage=stage[:300], heartbeat_at=now))
    if alive and run_id is not None:
        ModelRun.objects.filter(pk=run_id).update(heartbeat_at=now, stage=stage[:300])
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


def job_stale_after() -> timedelta:
    """A live task cannot outlast the hard time limit, so a run silent for longer than that has lost its worker."""
    seconds = settings.EXPLAINER_JOB_STALE_SECONDS or settings.CELERY_TASK_TIME_LIMIT + 60
    return timedelta(seconds=seconds)


def model_run_claim(*, run: ModelRun, task_id: str) -> bool:
    """Take the run for this task; False when another task holds it and is alive (a duplicate delivery).

    The same task id may always take it back: that is the message redelivered after its worker died.
    """
    free = Q(task_id=task_id) | Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=timezone.now() - job_stale_after())
    runs = ModelRun.objects.filter(pk=run.pk)
    if task_id:
        runs = runs.filter(free)
    taken = runs.update(task_id=task_id[:64], heartbeat_at=timezone.now(), attempts=F("attempts") + 1)
    run.refresh_from_db(fields=["task_id", "heartbeat_at", "attempts"])
    return bool(taken)


_claimed_at: ContextVar[float | None] = ContextVar("model_run_claimed_at", default=None)
PAUSED_STAGE = "Paused to let other users' jobs start; it goes on when a worker is free"


def model_run_yield_due(*, job: Job, run: ModelRun, at_start: bool = False) -> bool:
    """Whether this run should hand its worker to another owner's waiting run (fair sharing between users).

    A run waits when its message is queued and no task holds it. Its owner is served first when this owner
    holds at least two more running runs than that owner (after the swap it still holds no fewer), or one more
    once this task has held the run, or that owner's run has waited, for ``EXPLAINER_FAIR_SHARE_SECONDS`` (turns
    on a single worker: the waiting clock also covers this owner's earlier jobs, which ended within their slice,
    so a burst of short jobs does not keep another user waiting). That last clause waits for one batch of
    progress (not ``at_start``): a waiting run whose message was lost then costs a batch per hand-over, never
    a hand-over loop that does nothing. Only runs on this run's queue and queued since it was (so their message
    is not already behind it) count.
    """
    quantum = settings.EXPLAINER_FAIR_SHARE_SECONDS
    if quantum < 0:
        return False
    queue = CLASSIFIERS[run.classifier].queue if run.classifier in CLASSIFIERS else None
    same_queue = [key for key, spec in CLASSIFIERS.items() if spec.queue == queue]
    now = timezone.now()
    active = (ModelRun.objects.filter(job__status__in=[JobStatus.QUEUED, JobStatus.RUNNING], classifier__in=same_queue)
              .exclude(status=ModelRunStatus.DONE))
    waiting = active.filter(heartbeat_at__isnull=True).exclude(job__owner_id=job.owner_id)
    if run.queued_at is not None:
        waiting = waiting.filter(queued_at__gte=run.queued_at)
    waiting_owners = set(waiting.order_by().values_list("job__owner_id", flat=True).distinct())
    if not waiting_owners:
        return False
    running = dict(active.filter(heartbeat_at__gte=now - job_stale_after()).order_by().values_list("job__owner_id")
                   .annotate(n=Count("id")).values_list("job__owner_id", "n"))
    mine = running.get(job.owner_id, 0)
    behind = [owner for owner in waiting_owners if running.get(owner, 0) < mine]
    if not behind:
        return False
    if min(running.get(owner, 0) for owner in behind) + 1 < mine:
        return True
    if at_start:
        return False
    claimed = _claimed_at.get()
    held = time.monotonic() - claimed if claimed is not None else 0.0
    oldest = waiting.filter(job__owner_id__in=behind).order_by("queued_at").values_list("queued_at", flat=True).first()
    waited = (now - oldest).total_seconds() if oldest is not None else 0.0
    return max(held, waited) >= quantum


def model_run_yield(*, job: Job, run: ModelRun) -> bool:
    """Give the run back to the queue (its message goes to the back) so another owner's work starts first.

    True when this task must stop: the run was handed back (or is no longer this task's). The handover does not
    count as an attempt for the stale-job sweeper, and the run is never lost: when the queue cannot take the
    message, the task takes the run back and goes on.
    """
    now = timezone.now()
    released = ModelRun.objects.filter(pk=run.pk, task_id=run.task_id, heartbeat_at__isnull=False).update(
        task_id="", heartbeat_at=None, queued_at=now, attempts=F("attempts") - 1, stage=PAUSED_STAGE)
    if not released:  # the sweeper or another delivery holds it now
        return True
    try:
        model_run_enqueue(job_id=job.pk, classifier=run.classifier)
    except Exception:
        logger.exception("job %s: could not re-queue %s to share the workers; it goes on", job.pk, run.classifier)
        return not ModelRun.objects.filter(pk=run.pk, task_id="", heartbeat_at__isnull=True).update(
            task_id=run.task_id, heartbeat_at=timezone.now(), attempts=F("attempts") + 1)
    Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(stage=PAUSED_STAGE, heartbeat_at=now)
    logger.info("job %s: %s handed its worker to another user's job", job.pk, run.classifier)
    return True


def model_run_yield_if_due(*, job: Job, run: ModelRun, at_start: bool = False) -> bool:
    """At a batch boundary (or ``at_start``, before any work): True when the run was handed back to the queue
    (stop here; it resumes from here)."""
    return model_run_yield_due(job=job, run=run, at_start=at_start) and model_run_yield(job=job, run=run)


def jobs_stale_sweep(*, stale_after: timedelta | None = None, queue_timeout: timedelta | None = None) -> dict[str, list[int]]:
    """Re-queue classifier runs whose worker died (heartbeat older than ``stale_after``) or whose message was
    lost (queued longer than ``queue_timeout`` and never started); fail the job once a run has been started
    ``EXPLAINER_JOB_MAX_ATTEMPTS`` times. Safe to run from several workers at once.
    """
    now = timezone.now()
    stale_after = stale_after or job_stale_after()
    queue_timeout = queue_timeout or timedelta(seconds=settings.EXPLAINER_JOB_QUEUE_TIMEOUT_SECONDS)
    active = ModelRun.objects.filter(job__status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).exclude(status=ModelRunStatus.DONE)
    orphaned = Q(heartbeat_at__lt=now - stale_after)
    lost = Q(heartbeat_at__isnull=True) & (Q(queued_at__lt=now - queue_timeout)
                                           | Q(queued_at__isnull=True, job__created_at__lt=now - queue_timeout))
    result: dict[str, list[int]] = {"requeued": [], "failed": []}
    for run in active.filter(orphaned | lost).order_by("pk"):
        label = CLASSIFIERS[run.classifier].label if run.classifier in CLASSIFIERS else run.classifier
        if run.attempts >= settings.EXPLAINER_JOB_MAX_ATTEMPTS:
            job_fail(job_id=run.job_id, reason=model_run_lost_reason(label=label, attempts=run.attempts))
            result["failed"].append(run.job_id)
            continue
        # The run's task id stays: a task still alive after all beats the heartbeat again and keeps the run.
        taken = ModelRun.objects.filter(pk=run.pk, heartbeat_at=run.heartbeat_at, queued_at=run.queued_at).update(
            heartbeat_at=None, queued_at=now)
        if not taken:  # another sweeper got there first
            continue
        try:
            model_run_enqueue(job_id=run.job_id, classifier=run.classifier)
        except Exception:  # the broker is still away: the next sweep after ``queue_timeout`` tries again
            logger.exception("job %s: could not re-queue %s", run.job_id, run.classifier)
            continue
        Job.objects.filter(pk=run.job_id, status=JobStatus.RUNNING).update(
            stage=f"{label}: its worker stopped responding; queued again", heartbeat_at=now)
        logger.warning("job %s: re-queued %s (started %s times so far)", run.job_id, run.classifier, run.attempts)
        result["requeued"].append(run.job_id)
    return result


def model_run_lost_reason(*, label: str, attempts: int) -> str:
    limit = settings.CELERY_TASK_TIME_LIMIT
    return (f"The worker running {label} stopped before finishing, {attempts} time{'s' if attempts != 1 else ''} "
            f"(it may have run out of memory or past the time limit of {duration_text(limit)}). "
            "Try fewer rows or samples, or a lighter classifier.")


def duration_text(seconds: float) -> str:
    minutes = seconds / 60
    if minutes >= 1:
        return f"{minutes:g} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} second{'s' if seconds != 1 else ''}"


# ---------------------------------------------------------------- run


def job_classifier_run(*, job_id: int, classifier: str, worker: str = "", task_id: str = "") -> None:
    """Train one classifier (or load it if a previous attempt did) and explain its rows batch by batch.

    Safe to run twice: finished explanations are skipped, so a retried task only does what is left; a
    duplicate delivery while another task holds the run does nothing.
    """
    job = Job.objects.select_related("dataset").filter(pk=job_id).first()
    if job is None:  # deleted meanwhile
        return
    Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(status=JobStatus.RUNNING, started_at=timezone.now())
    job.refresh_from_db()
    if job.status != JobStatus.RUNNING:
        return
    run = ModelRun.objects.get(job=job, classifier=classifier)
    if run.status == ModelRunStatus.DONE:  # an earlier delivery finished it
        job_finish_if_done(job_id=job_id)
        return
    if not model_run_claim(run=run, task_id=task_id):
        logger.info("job %s: %s is held by task %s; this delivery stops", job_id, classifier, run.task_id)
        return
    _claimed_at.set(time.monotonic())
    if run.attempts > settings.EXPLAINER_JOB_MAX_ATTEMPTS:
        job_fail(job_id=job_id, reason=model_run_lost_reason(label=CLASSIFIERS[classifier].label, attempts=run.attempts - 1))
        return
    if worker:  # on the instance too: later full saves of ``run`` must not blank it
        run.worker = worker[:200]
        ModelRun.objects.filter(pk=run.pk).update(worker=run.worker)
    if model_run_yield_if_due(job=job, run=run, at_start=True):  # another user's work is waiting: it goes first
        return
    if schema_modality(job.schema) != "tabular":  # texts and images: same phases, their own data and plug-ins
        from explanations.text_image_run import modality_classifier_run

        modality_classifier_run(job=job, run=run)
        return
    spec = CLASSIFIERS[classifier]
    seed = job.params["seed"]
    job_stage_set(job_id, f"Preparing the data for {spec.label}", run_id=run.pk)
    data = job_data_build(dataset=job.dataset, schema=job.schema, test_size=job.params["test_size"], seed=seed)
    model = model_run_train(job=job, run=run, data=data)
    if model is None:
        return
    predictor = predictor_build(classifier, model, data.space)
    if not run.rows:
        run.rows = rows_resolve(job=job, data=data, predict=lambda X: predictor.predict_proba(X).argmax(axis=1))
        run.units_total = 2 + len(run.rows) * len(job.explainers)
        run.units_done = 1
        run.save(update_fields=["rows", "units_total", "units_done"])
    for key in job.explainers:
        if not explainer_rows_run(job=job, run=run, data=data, predictor=predictor, explainer_key=key):
            return
    if not job_stage_set(job_id, f"Drawing the global views for {spec.label}", run_id=run.pk):
        return
    run_summary_plots(job=job, run=run, data=data, predictor=predictor)
    run_insight_finish(job=job, run=run, data=data)
    ModelRun.objects.filter(pk=run.pk).update(status=ModelRunStatus.DONE, units_done=run.units_total)
    job_finish_if_done(job_id=job_id)


def model_run_train(*, job: Job, run: ModelRun, data: JobData):
    spec = CLASSIFIERS[run.classifier]
    if run.status != ModelRunStatus.PENDING and run.model_file:
        with run.model_file.open("rb") as handle:
            return model_file_load(handle)  # a file our own worker wrote, never an upload
    if not job_stage_set(job.pk, f"Training {spec.label}", run_id=run.pk):
        return None
    started = time.perf_counter()
    X_train, y_train = data.X[data.train_idx], data.y[data.train_idx]
    model = classifier_fit(run.classifier, job.params["classifiers"].get(run.classifier, {}), data.space, X_train, y_train,
                           seed=job.params["seed"])
    fit_seconds = time.perf_counter() - started
    predictor = predictor_build(run.classifier, model, data.space)
    model_run_record(job=job, run=run, data=data, model=model, predictor=predictor, fit_seconds=fit_seconds)
    return model


def model_run_record(*, job: Job, run: ModelRun, data: JobData, model, predictor, fit_seconds: float) -> None:
    """Test metrics, the model file and the confusion matrix of a freshly trained model; the run becomes TRAINED."""
    spec = CLASSIFIERS[run.classifier]
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


def rows_resolve(*, job: Job, data: JobData, predict) -> list[int]:
    spec = job.rows_spec
    limit = settings.EXPLAINER_MAX_JOB_ROWS
    if "ids" in spec:
        return [int(i) for i in spec["ids"]]
    test = data.test_idx
    if spec.get("all_test"):
        return [int(i) for i in test[:limit]]
    if "random" in spec:
        rng = np.random.default_rng(spec.get("seed", 0))
        picked = rng.choice(test, size=min(spec["random"], len(test)), replace=False)
        return sorted(int(i) for i in picked)
    wrong = test[predict(data.X[test]) != data.y[test]]
    return [int(i) for i in wrong[: spec["misclassified"]]]


def batches(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def explainer_rows_run(*, job: Job, run: ModelRun, data: JobData, predictor, explainer_key: str) -> bool:
    """Explain the run's rows not yet done with one explainer; False when the job stopped meanwhile."""
    done = set(Explanation.objects.filter(job=job, classifier=run.classifier, explainer=explainer_key)
               .values_list("row", flat=True))
    pending = [r for r in run.rows if r not in done]
    if not pending:
        return True
    explainer_cls = explainer_for(explainer_key, "tabular")
    spec = CLASSIFIERS[run.classifier]
    seed = job.params["seed"]
    try:
        explainer = explainer_cls(**job.params.get(explainer_key, {})).fit(data.background(seed), predictor, data.space, seed=seed)
    except ExplainerError as exc:
        raise ApplicationError(f"{explainer_cls.label} could not be set up for {spec.label}: {exc}") from exc
    meter = trust_meter_build(job=job, data=data, predictor=predictor, explainer_key=explainer_key)
    total = len(run.rows)
    for batch in batches(pending, settings.EXPLAINER_BATCH_SIZE * getattr(explainer_cls, "batch_scale", 1)):
        position = total - len(pending) + 1
        if not job_stage_set(job.pk, f"Explaining rows {position}–{position + len(batch) - 1} of {total} with "
                                     f"{explainer_cls.label} — {spec.label}", run_id=run.pk):
            return False
        if model_run_yield_if_due(job=job, run=run):
            return False
        started = time.perf_counter()
        results = explainer.explain(data.X[batch], batch)
        seconds = (time.perf_counter() - started) / max(len(batch), 1)
        trusts = meter.measure(results)
        for result in results:
            stop_check()  # drawing a row's plots takes a while: a cancel stops between rows
            explanation_save(job=job, run=run, data=data, result=result, seconds=seconds, trust=trusts.get(result.row))
        pending = pending[len(batch):]
        finished = Explanation.objects.filter(job=job, classifier=run.classifier).count()
        ModelRun.objects.filter(pk=run.pk).update(units_done=1 + finished)
    return True


def explanation_title(*, data: JobData, row: int, predicted: str, classifier_label: str, explainer_label: str) -> str:
    name = data.row_names[row]
    return f"Why row {row}{f' ({name})' if name else ''} is predicted {predicted} — {classifier_label}, {explainer_label}"


def explanation_save(*, job: Job, run: ModelRun, data: JobData, result: ExplanationResult, seconds: float,
                     trust: dict | None = None) -> None:
    """Store one row's explanation with the picture and alt text its explainer names (for this kind of data)."""
    space = data.space
    predicted = space.class_names[result.predicted]
    spec, explainer_cls = CLASSIFIERS[run.classifier], explainer_for(result.method, schema_modality(job.schema))
    title = explanation_title(data=data, row=result.row, predicted=predicted, classifier_label=spec.label.lower(),
                              explainer_label=explainer_cls.label)
    subtitle = " · ".join(f"{k.replace('_', ' ')} {v}" for k, v in job.params.get(result.method, {}).items())
    figure = explanation_figure(explainer_cls, result, space, title=title, subtitle=subtitle, trust=trust)
    png, svg = figure_render(figure)
    payload = dict(result.data)
    with transaction.atomic():
        try:
            explanation = Explanation.objects.create(
                job=job, classifier=run.classifier, explainer=result.method, row=result.row,
                row_name=data.row_names[result.row][:300], in_train=bool(np.isin(result.row, data.train_idx)),
                true_label=data.row_label(result.row), predicted=predicted,
                probabilities={name: round(float(p), 6) for name, p in zip(space.class_names, result.probabilities)},
                data=payload, meta=result.meta, trust=trust or {}, seconds=round(seconds, 4))
        except IntegrityError:
            return  # a retried batch: this row was finished by the earlier attempt
        plot_files_save(job=job, classifier=run.classifier, kind=result.method, png=png, svg=svg, title=title,
                        alt=explanation_alt(explainer_cls, result, space), explanation=explanation)


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


def job_finish_if_done(*, job_id: int) -> None:
    """The last classifier to finish packs the ZIP and marks the job succeeded."""
    from explanations.exports import job_zip_build

    if ModelRun.objects.filter(job_id=job_id).exclude(status=ModelRunStatus.DONE).exists():
        return
    if not job_stage_set(job_id, "Drawing what-if curves"):
        return
    job_whatif_build(job=Job.objects.select_related("dataset").get(pk=job_id))
    if not job_stage_set(job_id, "Packing the results"):
        return
    job = Job.objects.get(pk=job_id)
    try:
        name = job_zip_build(job=job)
    except OSError:  # e.g. the disk filled up while writing: leave no half-written archive behind
        partial = f"jobs/{job_id}/explainer-job-{job_id}.zip"
        try:
            if default_storage.exists(partial):
                default_storage.delete(partial)
        except OSError:
            logger.warning("could not remove the partial ZIP %s", partial)
        raise
    Job.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
        status=JobStatus.SUCCEEDED, result_zip=name, stage="Done", finished_at=timezone.now())
