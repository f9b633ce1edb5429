"""Celery tasks for datasets: ids in, one service call."""

from celery import shared_task

from .services import dataset_ingest as dataset_ingest_service


@shared_task(acks_late=True, reject_on_worker_lost=True)
def dataset_ingest(dataset_id: int) -> None:
    dataset_ingest_service(dataset_id=dataset_id)
