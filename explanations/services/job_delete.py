"""A user removes a job."""

from __future__ import annotations

from explanations.models import Job


def job_delete(*, job: Job) -> None:
    """Its files go once the deletion commits (``explanations.receivers.job_files_delete``)."""
    job.delete()
