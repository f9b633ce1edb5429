"""Celery tasks: ids in, one service call; every failure ends on the job as a sentence a user can act on."""

import errno
import logging
import threading
import time

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init, worker_ready
from django.conf import settings
from django.db import close_old_connections

from explainer_site.exceptions import ApplicationError
from explanations.ml.engine import JobStopped, stop_check_set
from explanations.ml.explainers.base import ExplainerError
from explanations.models import WhatIf
from explanations.pipeline import (
    job_advance,
    job_steps_feed,
    jobs_stale_sweep,
    step_claim,
    step_done,
    step_failed,
    step_heartbeat,
    step_label,
    step_lost_reason,
    step_released,
)
from explanations.services.job_state import (
    JobStopCheck,
    JobTimeLimitExceeded,
    duration_text,
    job_deadline,
    job_fail,
    job_seconds_used,
)
from explanations.whatifs import whatif_draw as whatif_draw_service
from explanations.whatifs import whatif_fail

logger = logging.getLogger(__name__)


def step_task_run(step_id: int, *, worker: str, task_id: str) -> None:
    """Every step's task: hold the step, do its work under its time limit and heartbeat, then make and send what
    follows. A step already done, held by a live task, or of a job that ended, is a no-op."""
    from explanations.job_steps import step_work

    step = step_claim(step_id=step_id, task_id=task_id, worker=worker)
    if step is None:
        logger.info("step %s: done, held by a live task, or its job ended; this delivery stops", step_id)
        return
    if step.attempts > settings.EXPLAINER_JOB_MAX_ATTEMPTS:
        step_failed(step_id=step_id)
        job_fail(job_id=step.job_id, reason=step_lost_reason(label=step_label(step), attempts=step.attempts - 1))
        return
    started = time.perf_counter()
    try:
        job_seconds_left = settings.EXPLAINER_JOB_TIME_LIMIT - job_seconds_used(step.job_id)
        with (job_deadline(settings.CELERY_TASK_SOFT_TIME_LIMIT, job_seconds_left=job_seconds_left), stop_check_set(JobStopCheck(step.job_id)),
              step_heartbeat(step_id)):
            step_work(step=step)
    except JobStopped:  # cancelled (or failed elsewhere) while working: the job already says so
        logger.info("job %s: %s stopped, the job is no longer running", step.job_id, step.key)
        step_released(step=step)
        return
    except Exception as exc:  # the job must end with a reason, whatever broke
        step_failed(step_id=step_id)
        job_fail(job_id=step.job_id, reason=failure_reason(exc, job_id=step.job_id, step=step_label(step)))
        return
    step_done(step=step, seconds=time.perf_counter() - started)


STEP_TASK_OPTIONS = {"bind": True, "acks_late": True, "reject_on_worker_lost": True}


@shared_task(**STEP_TASK_OPTIONS)
def model_train(self, step_id: int) -> None:
    step_task_run(step_id, worker=self.request.hostname or "", task_id=self.request.id or "")


@shared_task(**STEP_TASK_OPTIONS)
def batch_explain(self, step_id: int) -> None:
    step_task_run(step_id, worker=self.request.hostname or "", task_id=self.request.id or "")


@shared_task(**STEP_TASK_OPTIONS)
def batch_trust(self, step_id: int) -> None:
    step_task_run(step_id, worker=self.request.hostname or "", task_id=self.request.id or "")


@shared_task(**STEP_TASK_OPTIONS)
def summary_rows(self, step_id: int) -> None:
    step_task_run(step_id, worker=self.request.hostname or "", task_id=self.request.id or "")


@shared_task(**STEP_TASK_OPTIONS)
def model_run_finish(self, step_id: int) -> None:
    step_task_run(step_id, worker=self.request.hostname or "", task_id=self.request.id or "")


@shared_task(**STEP_TASK_OPTIONS)
def whatif_curves(self, step_id: int) -> None:
    step_task_run(step_id, worker=self.request.hostname or "", task_id=self.request.id or "")


@shared_task(**STEP_TASK_OPTIONS)
def job_finish(self, step_id: int) -> None:
    step_task_run(step_id, worker=self.request.hostname or "", task_id=self.request.id or "")


@shared_task(acks_late=True, reject_on_worker_lost=True)
def job_classifier_run(job_id: int, classifier: str) -> None:
    """A message queued before jobs became pipelines: the job goes on as one (finished rows are kept)."""
    job_advance(job_id=job_id)
    job_steps_feed(job_id=job_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def whatif_draw(whatif_id: int) -> None:
    """A what-if curve asked for on a page or through the API after the job ran."""
    try:
        with job_deadline(settings.CELERY_TASK_SOFT_TIME_LIMIT):
            whatif_draw_service(whatif_id=whatif_id)
    except Exception as exc:  # the curve must end drawn or with a reason, whatever broke
        job_id = WhatIf.objects.filter(pk=whatif_id).values_list("job_id", flat=True).first() or 0
        whatif_fail(whatif_id=whatif_id, reason=failure_reason(exc, job_id=job_id, work="drawing this curve"))


def failure_reason(exc: BaseException, *, job_id: int, work: str = "running the job", step: str = "") -> str:
    """The sentence for the job page (``work``: what failed; ``step``: the pipeline step that ran, whose own time
    limit is the one that struck); the time limit wins even when a library wrapped it in its own error."""
    chain, cause = [], exc
    while cause is not None and len(chain) < 10:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    if any(isinstance(e, JobTimeLimitExceeded) for e in chain):
        return (f"The job took longer than {duration_text(settings.EXPLAINER_JOB_TIME_LIMIT)} of work, this server's "
                "limit for one job; try fewer rows, classifiers, explainers or samples.")
    if any(isinstance(e, SoftTimeLimitExceeded) for e in chain):
        if step:
            return (f"Working on {step} took longer than {duration_text(settings.CELERY_TASK_SOFT_TIME_LIMIT)}, this "
                    "server's limit for one step of a job; try fewer rows or samples.")
        took = "The job took" if work == "running the job" else f"{work[0].upper()}{work[1:]} took"
        return f"{took} longer than {duration_text(settings.CELERY_TASK_SOFT_TIME_LIMIT)}; try fewer rows or samples."
    if isinstance(exc, ApplicationError | ExplainerError):
        if not isinstance(exc.__cause__, ApplicationError | ExplainerError | None):
            logger.exception("job %s failed", job_id)  # a message for users that wraps an internal error: keep that too
        return str(exc)
    if isinstance(exc, MemoryError):
        return "The worker ran out of memory; try fewer rows, samples or a smaller background."
    if isinstance(exc, OSError):
        logger.exception("job %s: storage error", job_id)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return "Results could not be saved: the disk is full. Tell the administrator, then run the job again."
        return ("Results could not be saved; tell the administrator the results folder is not writable or the disk "
                f"is full, with job number {job_id}.")
    # The exception's text names code, paths or data; it goes to the log with the job number, the page says what to do.
    logger.exception("job %s failed", job_id)
    return f"Something went wrong while {work}. Try other settings, or report it with job number {job_id}."


@worker_process_init.connect
def step_work_import(**kwargs) -> None:
    """A pool process imports the steps' code (scikit-learn, matplotlib, the compiled kernels: some 4 s) as it
    starts, not when the first job's first step arrives (``CELERY_WORKER_PROC_ALIVE_TIMEOUT`` allows for it)."""
    try:
        import explanations.job_steps  # noqa: F401
    except Exception:  # the first step imports it again and reports what is wrong
        logger.exception("importing the steps' code ahead of the first step failed")


@worker_ready.connect
def stale_job_sweeper_start(**kwargs) -> None:
    """Every worker sweeps for orphaned jobs now and then (no beat needed); sweeps may overlap safely."""

    def sweep_forever() -> None:
        while True:
            try:
                swept = jobs_stale_sweep()
                if swept["requeued"] or swept["failed"]:
                    logger.warning("stale-job sweep: %s", swept)
            except Exception:  # the database or broker is away: try again next time
                logger.exception("stale-job sweep failed")
            finally:
                close_old_connections()
            time.sleep(settings.EXPLAINER_JOB_SWEEP_SECONDS)

    threading.Thread(target=sweep_forever, name="stale-job-sweeper", daemon=True).start()


SCENARIO_SOFT_TIME_LIMIT = 120  # seconds: an edited row is one prediction and one explanation per classifier


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=SCENARIO_SOFT_TIME_LIMIT,
             time_limit=SCENARIO_SOFT_TIME_LIMIT + 30)
def scenario_compute(scenario_id: int) -> None:
    """An edited row of the what-if editor (queue ``interactive``): predicted and explained again."""
    from explanations.models import Scenario
    from explanations.scenarios import scenario_compute as scenario_compute_service
    from explanations.scenarios import scenario_fail

    try:
        with job_deadline(SCENARIO_SOFT_TIME_LIMIT):
            scenario_compute_service(scenario_id=scenario_id)
    except SoftTimeLimitExceeded:
        scenario_fail(scenario_id=scenario_id, reason=f"Computing this scenario took longer than {SCENARIO_SOFT_TIME_LIMIT} "
                                                      "seconds; a job with fewer LIME or SHAP samples answers faster.")
    except Exception as exc:  # the scenario must end ready or with a reason, whatever broke
        job_id = Scenario.objects.filter(pk=scenario_id).values_list("job_id", flat=True).first() or 0
        scenario_fail(scenario_id=scenario_id, reason=failure_reason(exc, job_id=job_id, work="computing this scenario"))


NETWORK_VIEW_SOFT_TIME_LIMIT = 300  # seconds: at most 16 pictures of 128 steps, or 100 attack steps and 8 groups


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=NETWORK_VIEW_SOFT_TIME_LIMIT,
             time_limit=NETWORK_VIEW_SOFT_TIME_LIMIT + 30)
def network_view_draw(view_id: int) -> None:
    """A look inside an image job's CNN (queue ``gpu``): feature visualisations, neuron groups or an adversarial example."""
    from explanations.models import NetworkView
    from explanations.network_views import network_view_draw as network_view_draw_service
    from explanations.network_views import network_view_fail

    try:
        with job_deadline(NETWORK_VIEW_SOFT_TIME_LIMIT):
            network_view_draw_service(view_id=view_id)
    except SoftTimeLimitExceeded:
        network_view_fail(view_id=view_id, reason=f"Drawing this took longer than {NETWORK_VIEW_SOFT_TIME_LIMIT} seconds; "
                                                  "ask for fewer channels, groups or iterations.")
    except Exception as exc:  # the view must end ready or with a reason, whatever broke
        job_id = NetworkView.objects.filter(pk=view_id).values_list("job_id", flat=True).first() or 0
        network_view_fail(view_id=view_id, reason=failure_reason(exc, job_id=job_id, work="looking inside the network"))
