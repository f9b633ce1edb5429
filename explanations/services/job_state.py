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
