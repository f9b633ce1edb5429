"""A running job's state: the stage its steps report, their deadline and stop check, and its failure.

Below the pipeline and every step (``explanations.pipeline``, ``explanations.job_steps`` and what they call import
these), so it imports no other service and nothing that runs a job.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from celery.exceptions import SoftTimeLimitExceeded
from django.db.models import Sum
from django.utils import timezone

from explanations.ml.engine import JobStopped
from explanations.models import FINAL_STATUSES, Job, JobStatus, ModelRun, Step, StepStatus


def job_fail(*, job_id: int, reason: str) -> None:
    """The one place failures are recorded: a sentence the user can act on."""
    Job.objects.filter(pk=job_id).exclude(status__in=FINAL_STATUSES).update(
        status=JobStatus.FAILED, error=reason[:2000], stage="Failed", finished_at=timezone.now())
    job_steps_stop(job_id=job_id)



def job_steps_stop(*, job_id: int) -> None:
    """No step of a cancelled or failed job starts any more."""
    Step.objects.filter(job_id=job_id, status=StepStatus.PENDING).update(status=StepStatus.CANCELLED,
                                                                        finished_at=timezone.now())


class JobTimeLimitExceeded(SoftTimeLimitExceeded):
    """The job's own work budget (``EXPLAINER_JOB_TIME_LIMIT``, the seconds of all its steps together) is spent."""


_deadline: ContextVar[tuple[float, bool] | None] = ContextVar("job_deadline", default=None)


@contextmanager
def job_deadline(seconds: float | None, *, job_seconds_left: float | None = None) -> Iterator[None]:
    """Work inside must end within ``seconds`` (one step's limit), and within ``job_seconds_left`` (what is left of
    the job's budget) when given: checked at every stage (so at every batch) by ``job_stage_set``.

    Celery's soft time limit is an exception raised asynchronously by a signal handler; one that lands inside a
    logging handler, a ``__del__`` or a library's ``except Exception`` is swallowed and the task runs on to the
    hard kill. This check makes the limit certain at the next batch boundary. A job is many small steps, so a
    step's limit alone would never end a job that is too big: its budget counts the seconds of all its steps.
    """
    limits = [(seconds, False)] if seconds else []
    if job_seconds_left is not None:
        limits.append((max(job_seconds_left, 0.0), True))
    earliest = min(limits, default=None)
    token = _deadline.set(None if earliest is None else (time.monotonic() + earliest[0], earliest[1]))
    try:
        yield
    finally:
        _deadline.reset(token)


def job_deadline_check() -> None:
    deadline = _deadline.get()
    if deadline is not None and time.monotonic() > deadline[0]:
        if deadline[1]:
            raise JobTimeLimitExceeded("the job's time budget is spent")
        raise SoftTimeLimitExceeded("the task's time limit passed")


def job_seconds_used(job_id: int) -> float:
    """The seconds the job's finished steps worked (on all workers together)."""
    return float(Step.objects.filter(job_id=job_id, status=StepStatus.DONE).aggregate(total=Sum("seconds"))["total"]
                 or 0.0)


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
