"""Signal receivers: a job's files go with its row, whatever deletes it (its own page, its dataset, its owner).

``datasets`` deletes a dataset and Django cascades to its jobs; this receiver, connected in
``ExplanationsConfig.ready``, is how the plots, model files, attribution maps, summary rows and result ZIP go too,
without the datasets app knowing that jobs exist.
"""

from __future__ import annotations

import logging

from django.core.files.storage import default_storage
from django.db import transaction

from explanations.job_files import summary_rows_path
from explanations.models import Job, StepKind

logger = logging.getLogger(__name__)


def job_file_paths(*, job: Job) -> list[str]:
    plots = list(job.plots.all())
    paths = [p.png.name for p in plots] + [p.svg.name for p in plots]
    paths += [r.model_file.name for r in job.runs.all() if r.model_file]
    paths += [m["attribution_file"] for m in job.explanations.values_list("meta", flat=True) if m.get("attribution_file")]
    paths += [summary_rows_path(job=job, run=step.run, key=step.explainer)
              for step in job.steps.filter(kind=StepKind.SUMMARY).select_related("run") if step.run is not None]
    if job.result_zip:
        paths.append(job.result_zip.name)
    return paths


def job_files_delete(sender: type[Job], instance: Job, using: str, **kwargs) -> None:
    """``pre_delete`` of a job: read the paths while its rows still exist, remove the files once the deletion
    commits (a rollback keeps both the rows and the files)."""
    paths = job_file_paths(job=instance)

    def remove() -> None:
        for path in paths:
            try:
                default_storage.delete(path)
            except OSError:
                logger.warning("could not delete %s", path)

    transaction.on_commit(remove, using=using)
