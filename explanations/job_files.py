"""Where a job's working files live in storage, beside its plots and model files (``jobs/<id>/...``).

Light on purpose: the web process reads these paths when it deletes a job (``explanations.receivers``).
"""

from __future__ import annotations

from explanations.models import Job, ModelRun


def file_part(classifier: str) -> str:
    """A classifier key as part of a file name (an uploaded model's key holds a colon)."""
    return "".join(c if c.isalnum() or c in "_-" else "-" for c in classifier)


def summary_rows_path(*, job: Job, run: ModelRun, key: str) -> str:
    """The extra test rows a classifier's model-wide view of explainer ``key`` explained (the summary step's)."""
    return f"jobs/{job.pk}/summary/{file_part(run.classifier)}_{key}.json"
