"""A user stops a job: its running steps end within about a second, its finished explanations stay."""

from __future__ import annotations

from django.utils import timezone

from explainer_site.exceptions import ApplicationError
from explanations.models import FINAL_STATUSES, Job, JobStatus
from explanations.services.job_state import job_steps_stop


def job_cancel(*, job: Job) -> Job:
    """Stop the job within about a second (its tasks' ``JobStopCheck``); finished explanations stay."""
    updated = Job.objects.filter(pk=job.pk, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).update(
        status=JobStatus.CANCELLED, stage="Cancelled", finished_at=timezone.now())
    job_steps_stop(job_id=job.pk)
    job.refresh_from_db()
    if not updated and job.status not in FINAL_STATUSES:
        raise ApplicationError("This job cannot be cancelled now.")
    return job

