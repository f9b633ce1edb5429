"""Sharing a job: one secret link per job (``/shared/<token>/``) that shows its self-contained report to anyone
who has it, logged in or not, and nothing else; the owner stops sharing and the link answers 404."""

from __future__ import annotations

import secrets

from django.db import IntegrityError, transaction
from django.http import Http404

from explanations.models import Job, JobShare


def job_share(*, job: Job) -> JobShare:
    """The job's share link, made on first use (sharing twice gives the same link)."""
    existing = JobShare.objects.filter(job=job).first()
    if existing:
        return existing
    try:
        with transaction.atomic():
            return JobShare.objects.create(job=job, token=secrets.token_urlsafe(24))
    except IntegrityError:  # shared twice at once: the other request made it
        return JobShare.objects.get(job=job)


def job_unshare(*, job: Job) -> bool:
    """Stop sharing: the link answers 404 from now on. False when it was not shared."""
    deleted, _ = JobShare.objects.filter(job=job).delete()
    return bool(deleted)


def shared_job_get(*, token: str) -> Job:
    if not isinstance(token, str) or not 20 <= len(token) <= 64:
        raise Http404("No such shared job.")
    share = JobShare.objects.select_related("job", "job__dataset").filter(token=token).first()
    if share is None:
        raise Http404("No such shared job.")
    return share.job
