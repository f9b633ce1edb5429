"""A job as a pipeline of small steps: which steps exist, when they go to the queue, who holds one, and recovery.

Train one classifier (``train``), explain one batch of rows with one explainer (``explain``), measure that
batch's trust (``trust``), draw a classifier's global views (``run_finish``), draw one row's what-if curves
over every classifier (``whatif``, tables), finish the job (``job_finish``).
Every step is a ``Step`` row made once (its ``key`` is unique in the job) and a Celery task that takes its id.

- The joins are ours, not a chord's (there is no result backend): ``job_advance`` looks at what is done and makes
  the steps that can start now; it is safe to call any number of times, from any step or from the sweeper.
- ``steps_feed`` sends an account's pending steps to the queue, at most ``EXPLAINER_STEPS_IN_FLIGHT_PER_USER``
  at a time; each one that ends sends the next, behind whatever other users queued meanwhile. A step whose
  message could not be sent keeps ``queued_at`` empty and the next feed (the sweeper's, at the latest) sends it.
- A task holds its step (``step_claim``) and beats ``heartbeat_at`` from a thread while it runs; the sweeper
  hands a step silent for ``EXPLAINER_JOB_STALE_SECONDS`` to another worker, so losing a node costs the steps it
  was running, never the finished ones.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from explanations.ml.modalities import explainer_for, schema_modality
from explanations.models import Job, JobStatus, ModelRun, Step, StepKind, StepStatus
from explanations.services.job_state import duration_text, job_fail
from uploaded_models.job_classifiers import classifier_spec_or_none

logger = logging.getLogger(__name__)

ACTIVE_JOB = (JobStatus.QUEUED, JobStatus.RUNNING)
TASK_NAMES = {
    StepKind.TRAIN: "model_train",
    StepKind.EXPLAIN: "batch_explain",
    StepKind.TRUST: "batch_trust",
    StepKind.SUMMARY: "summary_rows",
    StepKind.RUN_FINISH: "model_run_finish",
    StepKind.WHATIF: "whatif_curves",
    StepKind.JOB_FINISH: "job_finish",
}
MODALITIES_WITH_TRUST = ("tabular",)
# Which of a job's waiting steps go to the queue first: what people wait to see, then its trust scores, then the
# work only the global views at the end need (the summary's extra rows), which would otherwise hold a worker while
# a long trust step waits behind it.
STEP_URGENCY = (StepKind.TRAIN, StepKind.EXPLAIN, StepKind.TRUST, StepKind.SUMMARY, StepKind.RUN_FINISH,
                StepKind.WHATIF, StepKind.JOB_FINISH)
MODALITIES_WITH_WHATIF = ("tabular",)  # sweeping a feature means a table's column
MODALITIES_WITH_SUMMARY_ROWS = ("tabular",)  # the summary beeswarm's extra test rows


# ---------------------------------------------------------------- making steps


def train_step_key(classifier: str) -> str:
    return f"train:{classifier}"


def job_steps_start(*, job: Job) -> None:
    """The first steps of a new job: one train step per classifier (inside the job's transaction)."""
    runs = {run.classifier: run for run in job.runs.all()}
    Step.objects.bulk_create([Step(job=job, run=runs[key], kind=StepKind.TRAIN, key=train_step_key(key))
                              for key in job.classifiers if key in runs], ignore_conflicts=True)


def batch_size(*, job: Job, explainer_key: str, rows: int | None = None) -> int:
    """Rows per explain step; with ``rows`` (the classifier's), at most a share of them, so even a few rows are
    spread over ``EXPLAINER_BATCHES_MIN`` steps that the worker processes run side by side (a row's explanation
    does not depend on its batch)."""
    explainer_cls = explainer_for(explainer_key, schema_modality(job.schema))
    size = settings.EXPLAINER_BATCH_SIZE * getattr(explainer_cls, "batch_scale", 1)
    if rows:
        size = min(size, max(1, -(-rows // max(settings.EXPLAINER_BATCHES_MIN, 1))))
    return size


def job_advance(*, job_id: int) -> int:
    """Make every step whose inputs are done (the joins of the pipeline); returns how many were new.

    A classifier's explain steps follow its training once its rows are resolved; each explain step is followed by
    its trust step (tables); a classifier's global views follow its last explain and trust step; the what-if steps
    (tables) follow every classifier's last explain and summary step (``whatif_ranking_known_early``; else its
    global views); the job's finish follows every classifier's global views and every what-if step. The keys make a join reached twice (two last batches ending at once,
    a redelivered step, the sweeper) create nothing twice.
    """
    job = Job.objects.filter(pk=job_id, status__in=ACTIVE_JOB).first()
    if job is None:
        return 0
    steps = list(Step.objects.filter(job=job).only("id", "run_id", "kind", "key", "explainer", "rows", "status"))
    if not steps:  # a job from before its work was steps (or whose first steps were never made)
        job_steps_start(job=job)
        return len(job.classifiers)
    by_key = {step.key: step for step in steps}
    measures_trust = schema_modality(job.schema) in MODALITIES_WITH_TRUST
    whatif_ranks_early = whatif_ranking_known_early(job)
    new: list[Step] = []
    finished_runs = ranked_runs = 0
    runs = list(job.runs.all())
    for run in runs:
        train = by_key.get(train_step_key(run.classifier))
        if train is None or train.status != StepStatus.DONE or not run.rows_resolved:
            continue
        explains = [s for s in steps if s.run_id == run.pk and s.kind == StepKind.EXPLAIN]
        if not explains and run.rows:
            new += explain_steps_build(job=job, run=run)
            continue
        trusts = {s.key: s for s in steps if s.run_id == run.pk and s.kind == StepKind.TRUST}
        if measures_trust:
            for step in explains:
                key = "trust" + step.key.removeprefix("explain")
                if step.status == StepStatus.DONE and key not in trusts:
                    new.append(Step(job=job, run=run, kind=StepKind.TRUST, key=key, explainer=step.explainer,
                                    rows=step.rows))
        explained = all(s.status == StepStatus.DONE for s in explains)
        trusted = not measures_trust or (len(trusts) == len(explains)
                                         and all(s.status == StepStatus.DONE for s in trusts.values()))
        summed = all(s.status == StepStatus.DONE for s in steps if s.run_id == run.pk and s.kind == StepKind.SUMMARY)
        finish_key = f"run_finish:{run.classifier}"
        if explained and trusted and summed and finish_key not in by_key:
            new.append(Step(job=job, run=run, kind=StepKind.RUN_FINISH, key=finish_key))
        finished = by_key.get(finish_key) is not None and by_key[finish_key].status == StepStatus.DONE
        finished_runs += finished
        ranked_runs += finished or (explained and summed and whatif_ranks_early)
    if runs and schema_modality(job.schema) in MODALITIES_WITH_WHATIF and ranked_runs == len(runs):
        if not any(s.kind == StepKind.WHATIF for s in steps):  # one per explained row (and one for the test rows)
            new += whatif_steps_build(job=job, runs=runs)
    if runs and finished_runs == len(runs) and "job_finish" not in by_key:
        whatifs = [s for s in steps if s.kind == StepKind.WHATIF]
        if (all(s.status == StepStatus.DONE for s in whatifs)
                and (whatifs or schema_modality(job.schema) not in MODALITIES_WITH_WHATIF)):
            new.append(Step(job=job, kind=StepKind.JOB_FINISH, key="job_finish"))
    if new:
        Step.objects.bulk_create(new, ignore_conflicts=True)
    return len(new)


def whatif_ranking_known_early(job: Job) -> bool:
    """Whether the what-if steps may start once every classifier's rows are explained (and the summary's extra rows
    are in), beside the trust steps and the global views: the features they draw are ranked from the explainers'
    model-wide importance (``whatifs.whatif_features``), which those rows already decide. Without an explainer that
    has a model-wide view the ranking reads the trust scores, so the curves wait for every classifier's views."""
    from explanations.ml.catalogue import global_view_entries

    if (job.params.get("whatif") or {}).get("features"):
        return True
    return any(entry.key in job.explainers for entry in global_view_entries(schema_modality(job.schema)))


def explain_steps_build(*, job: Job, run: ModelRun) -> list[Step]:
    """One step per batch of rows and explainer, batch by batch (each explainer's view of the first rows comes first)."""
    planned = []
    for order, key in enumerate(job.explainers):
        size = batch_size(job=job, explainer_key=key, rows=len(run.rows))
        for start in range(0, len(run.rows), size):
            planned.append((start, order, key, run.rows[start:start + size]))
    steps = [Step(job=job, run=run, kind=StepKind.EXPLAIN, key=f"explain:{run.classifier}:{key}:{rows[0]}",
                  explainer=key, rows=rows) for _, _, key, rows in sorted(planned)]
    return steps + summary_steps_build(job=job, run=run)


def summary_steps_build(*, job: Job, run: ModelRun) -> list[Step]:
    """A table's model-wide views may explain more test rows than the user picked (``explanations.summaries``):
    that work is a step of its own, beside the explanations, so the global views at the end only draw."""
    if schema_modality(job.schema) not in MODALITIES_WITH_SUMMARY_ROWS:
        return []
    from explanations.ml.catalogue import global_view_entries

    keys = [entry.key for entry in global_view_entries("tabular") if entry.global_view == "summary"]
    return [Step(job=job, run=run, kind=StepKind.SUMMARY, key=f"summary:{run.classifier}:{key}", explainer=key, rows=[])
            for key in job.explainers if key in keys]


def whatif_steps_build(*, job: Job, runs: list[ModelRun]) -> list[Step]:
    """Partial dependence over the test rows, then each explained row's what-if curves (every classifier overlaid),
    each its own step so the curves are drawn side by side."""
    from explanations.whatifs import WHATIF_ROWS_MAX

    rows = sorted({int(r) for run in runs for r in run.rows})[:WHATIF_ROWS_MAX]
    return [Step(job=job, kind=StepKind.WHATIF, key="whatif:test_rows", rows=[])] + [
        Step(job=job, kind=StepKind.WHATIF, key=f"whatif:{row}", rows=[row]) for row in rows]


# ---------------------------------------------------------------- sending steps to the queue


_inline: ContextVar[list[int] | None] = ContextVar("steps_inline", default=None)


@contextmanager
def steps_run_inline() -> Iterator[None]:
    """Run the steps sent inside here one after another in this process (eager Celery, the bench's
    in-process job), instead of nesting each step inside the one that sent it."""
    from explanations.tasks import step_task_run

    if _inline.get() is not None:
        yield
        return
    pending: list[int] = []
    token = _inline.set(pending)
    try:
        yield
        while pending:
            step_task_run(pending.pop(0), worker="inline", task_id="")
    finally:
        _inline.reset(token)


def job_run_inline(*, job_id: int) -> None:
    """Every step of the job, one after another in this process (no broker): the bench's notebook-like side."""
    with steps_run_inline():
        job_steps_feed(job_id=job_id)


def step_queue(step: Step) -> str:
    if step.run is None:  # job-wide steps
        return settings.CELERY_TASK_DEFAULT_QUEUE
    spec = classifier_spec_or_none(step.run.classifier)  # a user's uploaded network goes to the gpu queue too
    return spec.queue if spec else settings.CELERY_TASK_DEFAULT_QUEUE


def task_send(*, kind: str, step_id: int, queue: str) -> None:
    """The one place a step's message goes to the broker (no time limits in it: the worker applies its own), or
    to the in-process list ``steps_run_inline`` runs."""
    from explanations import tasks

    inline = _inline.get()
    if inline is not None:
        inline.append(step_id)
        return
    getattr(tasks, TASK_NAMES[kind]).apply_async(args=[step_id], queue=queue, time_limit=None, soft_time_limit=None)


def step_publish(step: Step, *, strict: bool = False) -> bool:
    """Send one step; when the broker is away the step stays unqueued (``strict``: and the error is raised)."""
    try:
        task_send(kind=step.kind, step_id=step.pk, queue=step_queue(step))
    except Exception:
        Step.objects.filter(pk=step.pk, status=StepStatus.PENDING).update(queued_at=None)
        if strict:
            raise
        logger.exception("job %s: could not queue %s; the next sweep sends it", step.job_id, step.key)
        return False
    return True


def steps_feed(*, owner_id: int, strict: bool = False) -> int:
    """Send this account's pending steps, oldest job first, until it has its allowance in the queue or running."""
    if getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False) and _inline.get() is None:
        with steps_run_inline():
            return steps_feed(owner_id=owner_id, strict=strict)
    active = Step.objects.filter(job__owner_id=owner_id, job__status__in=ACTIVE_JOB)
    in_flight = active.filter(Q(status=StepStatus.RUNNING) | Q(status=StepStatus.PENDING, queued_at__isnull=False)).count()
    room = max(settings.EXPLAINER_STEPS_IN_FLIGHT_PER_USER, 1) - in_flight
    if room <= 0:
        return 0
    sent = 0
    waiting = (active.filter(status=StepStatus.PENDING, queued_at__isnull=True).select_related("run")
               .annotate(urgency=Case(*(When(kind=kind, then=Value(n)) for n, kind in enumerate(STEP_URGENCY)),
                                      default=Value(len(STEP_URGENCY))))
               .order_by("job_id", "urgency", "id"))
    for step in waiting[:room]:
        if not Step.objects.filter(pk=step.pk, status=StepStatus.PENDING, queued_at__isnull=True).update(
                queued_at=timezone.now()):
            continue  # another feeder sent it
        sent += step_publish(step, strict=strict)
    return sent


def job_steps_feed(*, job_id: int, strict: bool = False) -> int:
    owner_id = Job.objects.filter(pk=job_id).values_list("owner_id", flat=True).first()
    return steps_feed(owner_id=owner_id, strict=strict) if owner_id is not None else 0


# ---------------------------------------------------------------- holding a step


def step_stale_after() -> timedelta:
    return timedelta(seconds=settings.EXPLAINER_JOB_STALE_SECONDS or settings.CELERY_TASK_TIME_LIMIT + 60)


def step_claim(*, step_id: int, task_id: str, worker: str) -> Step | None:
    """Take the step for this task; None when it is finished, cancelled, its job is over, or another live task
    holds it (a duplicate delivery). The same task id may take it back: its message, redelivered after its
    worker died."""
    now = timezone.now()
    holdable = Q(status=StepStatus.PENDING) | Q(status=StepStatus.RUNNING) & (
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=now - step_stale_after()) | (Q(task_id=task_id) & ~Q(task_id="")))
    job_ids = Job.objects.filter(status__in=ACTIVE_JOB).values("pk")
    taken = Step.objects.filter(holdable, pk=step_id, job_id__in=job_ids).update(
        status=StepStatus.RUNNING, task_id=task_id[:64], worker=worker[:200], attempts=F("attempts") + 1,
        started_at=now, heartbeat_at=now, finished_at=None)
    if not taken:
        return None
    step = Step.objects.select_related("job", "job__dataset", "run").get(pk=step_id)
    Job.objects.filter(pk=step.job_id, status=JobStatus.QUEUED).update(status=JobStatus.RUNNING, started_at=now)
    if step.run_id and worker:
        ModelRun.objects.filter(pk=step.run_id).update(worker=worker[:200])
    return step


def step_done(*, step: Step, seconds: float) -> None:
    """Mark the step done, make what follows it, and send the account's next steps."""
    Step.objects.filter(pk=step.pk, status=StepStatus.RUNNING).update(
        status=StepStatus.DONE, finished_at=timezone.now(), seconds=round(seconds, 3))
    job_advance(job_id=step.job_id)
    job_steps_feed(job_id=step.job_id)


def step_failed(*, step_id: int) -> None:
    Step.objects.filter(pk=step_id, status=StepStatus.RUNNING).update(status=StepStatus.FAILED, finished_at=timezone.now())


def step_released(*, step: Step) -> None:
    """The task stopped without finishing (its job was cancelled or failed meanwhile)."""
    Step.objects.filter(pk=step.pk, status=StepStatus.RUNNING).update(status=StepStatus.CANCELLED,
                                                                     finished_at=timezone.now())


@contextmanager
def step_heartbeat(step_id: int) -> Iterator[None]:
    """Beat the step's ``heartbeat_at`` from a thread while the task runs (training has no batch boundaries)."""
    interval = settings.EXPLAINER_HEARTBEAT_SECONDS
    if interval <= 0:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(interval):
                try:
                    Step.objects.filter(pk=step_id, status=StepStatus.RUNNING).update(heartbeat_at=timezone.now())
                except Exception:  # the database is away a moment: the next beat tries again
                    logger.warning("step %s: heartbeat failed", step_id, exc_info=True)
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"heartbeat-{step_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


# ---------------------------------------------------------------- recovery


def step_label(step: Step) -> str:
    classifier = step.run.classifier if step.run_id else ""
    spec = classifier_spec_or_none(classifier) if classifier else None
    label = spec.label if spec else classifier
    if step.kind == StepKind.EXPLAIN:
        return f"{label} ({step.explainer}, rows {step.rows[0]}–{step.rows[-1]})" if step.rows else label
    if step.kind == StepKind.SUMMARY:
        return f"the summary rows of {label} ({step.explainer})"
    if step.kind == StepKind.WHATIF:
        return f"the what-if curves of row {step.rows[0]}" if step.rows else "the partial dependence curves"
    return label or "the job's last step"


def step_lost_reason(*, label: str, attempts: int) -> str:
    return (f"The worker running {label} stopped before finishing, {attempts} time{'s' if attempts != 1 else ''} "
            f"(it may have run out of memory or past the time limit of {duration_text(settings.CELERY_TASK_TIME_LIMIT)}). "
            "Try fewer rows or samples, or a lighter classifier.")


def jobs_stale_sweep(*, stale_after: timedelta | None = None, queue_timeout: timedelta | None = None) -> dict[str, list[int]]:
    """Give the steps of dead workers (heartbeat older than ``stale_after``) and lost messages (queued longer than
    ``queue_timeout``, never started) back to the queue; fail the job once a step has been started
    ``EXPLAINER_JOB_MAX_ATTEMPTS`` times; make any step a missed join left out; send what is waiting.
    Safe to run from several workers at once."""
    now = timezone.now()
    stale_after = stale_after or step_stale_after()
    queue_timeout = queue_timeout or timedelta(seconds=settings.EXPLAINER_JOB_QUEUE_TIMEOUT_SECONDS)
    active = Step.objects.filter(job__status__in=ACTIVE_JOB).select_related("run")
    result: dict[str, list[int]] = {"requeued": [], "failed": []}
    for step in active.filter(status=StepStatus.RUNNING, heartbeat_at__lt=now - stale_after).order_by("pk"):
        if step.attempts >= settings.EXPLAINER_JOB_MAX_ATTEMPTS:
            job_fail(job_id=step.job_id, reason=step_lost_reason(label=step_label(step), attempts=step.attempts))
            result["failed"].append(step.job_id)
            continue
        # Its task id stays: a task still alive after all beats again and finishes (its work is idempotent).
        if Step.objects.filter(pk=step.pk, status=StepStatus.RUNNING, heartbeat_at=step.heartbeat_at).update(
                status=StepStatus.PENDING, queued_at=None, heartbeat_at=None):
            Job.objects.filter(pk=step.job_id, status=JobStatus.RUNNING).update(
                stage=f"{step_label(step)}: its worker stopped responding; queued again")
            logger.warning("job %s: re-queued %s (started %s times so far)", step.job_id, step.key, step.attempts)
            result["requeued"].append(step.job_id)
    for step in active.filter(status=StepStatus.PENDING, queued_at__lt=now - queue_timeout).order_by("pk"):
        if Step.objects.filter(pk=step.pk, status=StepStatus.PENDING, queued_at=step.queued_at).update(queued_at=None):
            logger.warning("job %s: %s waited %s in the queue; sent again", step.job_id, step.key, queue_timeout)
            result["requeued"].append(step.job_id)
    owners = set()
    for job_id, owner_id in Job.objects.filter(status__in=ACTIVE_JOB).values_list("pk", "owner_id"):
        job_advance(job_id=job_id)
        owners.add(owner_id)
    for owner_id in sorted(owners):
        steps_feed(owner_id=owner_id)
    result["requeued"] = list(dict.fromkeys(result["requeued"]))
    return result
