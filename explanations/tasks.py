"""Celery tasks: ids in, one service call; every failure ends on the job as a sentence a user can act on."""

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from explainer_site.exceptions import ApplicationError
from explanations.explainers.base import ExplainerError
from explanations.services import job_classifier_run as job_classifier_run_service
from explanations.services import job_fail

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def job_classifier_run(self, job_id: int, classifier: str) -> None:
    try:
        job_classifier_run_service(job_id=job_id, classifier=classifier, worker=self.request.hostname or "")
    except SoftTimeLimitExceeded:
        minutes = settings.CELERY_TASK_SOFT_TIME_LIMIT // 60
        job_fail(job_id=job_id, reason=f"The job took longer than {minutes} minutes; try fewer rows or samples.")
    except (ApplicationError, ExplainerError) as exc:
        job_fail(job_id=job_id, reason=str(exc))
    except MemoryError:
        job_fail(job_id=job_id, reason="The worker ran out of memory; try fewer rows, samples or a smaller background.")
    except OSError as exc:
        logger.exception("job %s: storage error", job_id)
        job_fail(job_id=job_id, reason=f"Results could not be saved ({exc.strerror or exc}); tell the administrator the disk may be full.")
    except Exception as exc:  # the job must end with a reason, whatever broke
        logger.exception("job %s failed", job_id)
        job_fail(job_id=job_id, reason=f"Something went wrong while running the job ({type(exc).__name__}: {exc}). "
                                       "Try other settings, or report it with the job number.")
