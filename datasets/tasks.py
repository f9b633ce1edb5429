"""Celery tasks for datasets: ids in, one service call."""

from celery import shared_task
from celery.exceptions import TimeLimitExceeded, WorkerLostError
from celery.signals import task_failure
from django.conf import settings

from .services import INGEST_FAILED, INGEST_WORKER_LOST, dataset_ingest_fail, ingest_time_reason
from .services import dataset_ingest as dataset_ingest_service


@shared_task(acks_late=True, reject_on_worker_lost=False,  # a file that kills its worker must not come back for ever
             soft_time_limit=settings.EXPLAINER_INGEST_SOFT_TIME_LIMIT,
             time_limit=settings.EXPLAINER_INGEST_SOFT_TIME_LIMIT + 60)
def dataset_ingest(dataset_id: int) -> None:
    dataset_ingest_service(dataset_id=dataset_id)


@task_failure.connect(sender=dataset_ingest)
def dataset_ingest_failed(sender=None, exception=None, args=None, kwargs=None, **_) -> None:
    """Sent by the worker's main process too, when the hard time limit or a crash ended the child before the
    service could say so: the dataset fails with the reason and its raw file goes, never "processing" for ever."""
    dataset_id = (args or [None])[0] or (kwargs or {}).get("dataset_id")
    if isinstance(exception, TimeLimitExceeded):
        reason = ingest_time_reason()
    elif isinstance(exception, WorkerLostError):
        reason = INGEST_WORKER_LOST
    else:
        reason = INGEST_FAILED
    dataset_ingest_fail(dataset_id=dataset_id, reason=reason)
