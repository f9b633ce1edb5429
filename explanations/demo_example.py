"""A finished example job for the demo account, so that a first visit shows results at once (``demo_setup``).

It runs in the process that asks (a management command, never a web request): the job's tasks run eagerly
here, not on a worker, so it is finished when ``demo_example_ensure`` returns. Idempotent: the example is one
job per owner (its ``request_key``); a succeeded one is kept, a broken one is made again.
"""

from __future__ import annotations

from contextlib import contextmanager

from datasets.demo import demo_dataset_existing
from explanations.models import Job, JobStatus
from explanations.services.job_create import job_create
from explanations.services.job_delete import job_delete

EXAMPLE_REQUEST_KEY = "demo-example"
EXAMPLE_DEMO = "breast_cancer"
# Small on purpose (well under a minute on 2 cores): two classifiers × the three table explainers × 3 rows.
EXAMPLE_OPTIONS = {
    "classifiers": ["logistic_regression", "random_forest"],
    "explainers": ["lime", "anchor", "shap"],
    "rows": {"random": 3, "seed": 1},
    "params": {"classifiers": {"random_forest": {"n_estimators": 30, "max_depth": 6}}, "lime": {"num_samples": 500},
               "trust": {"stability_runs": 0}},
}


@contextmanager
def tasks_in_process():
    """Every task and pipeline step sent inside runs here. Eager Celery alone is not enough: the pipeline feeds
    steps by its own allowance and only runs them inline when ``CELERY_TASK_ALWAYS_EAGER`` is set, so under
    ``make run`` (a real broker) ``demo_setup`` said "The example job 1 ended running"."""
    from explainer_site.celery import app
    from explanations.pipeline import steps_run_inline

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with steps_run_inline():
            yield
    finally:
        app.conf.task_always_eager = before


def demo_example_ensure(*, owner) -> Job | None:
    """The owner's finished example job (made now if missing or broken); None without the demo dataset."""
    dataset = demo_dataset_existing(owner=owner, key=EXAMPLE_DEMO)
    if dataset is None or not dataset.schema:
        return None
    existing = Job.objects.filter(owner=owner, request_key=EXAMPLE_REQUEST_KEY).first()
    if existing is not None and existing.status == JobStatus.SUCCEEDED:
        return existing
    if existing is not None:  # failed, cancelled or left running by an interrupted setup: start over
        job_delete(job=existing)
    with tasks_in_process():
        job = job_create(owner=owner, dataset=dataset, request_key=EXAMPLE_REQUEST_KEY, **EXAMPLE_OPTIONS)
    job.refresh_from_db()
    return job


def demo_example_made(sender, *, owner, **kwargs) -> str:
    """``datasets.demo.demo_account_ready``'s receiver: the sentence ``demo_setup`` prints."""
    job = demo_example_ensure(owner=owner)
    if job is None:
        return "No example job: the breast cancer demo dataset is missing."
    if job.status != JobStatus.SUCCEEDED:
        return f"The example job {job.pk} ended {job.status}: {job.error or 'no reason given'}"
    return f"Example job {job.pk} is ready: /jobs/{job.pk}/results/"
