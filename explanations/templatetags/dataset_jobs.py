"""``{% dataset_jobs dataset %}``: the jobs section of a dataset's page, so the datasets app needs no job query."""

from django import template

from explanations.models import JobStatus
from explanations.selectors import job_list

register = template.Library()

DATASET_JOBS_SHOWN = 20


@register.inclusion_tag("explanations/_dataset_jobs.html", takes_context=True)
def dataset_jobs(context: template.Context, dataset) -> dict:
    """The viewer's latest jobs on ``dataset`` (scoped to the request's user, as every job read is)."""
    return {"dataset": dataset, "jobs": job_list(user=context["request"].user, dataset_id=dataset.pk)[:DATASET_JOBS_SHOWN]}


@register.inclusion_tag("explanations/_latest_results.html", takes_context=True)
def latest_results(context: template.Context) -> dict:
    """The viewer's latest finished job, at the top of the datasets page: a first visit (the demo's example job)
    opens results in one click."""
    job = job_list(user=context["request"].user).filter(status=JobStatus.SUCCEEDED).first()
    return {"job": job}
