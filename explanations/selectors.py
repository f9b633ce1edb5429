"""Reads of jobs, explanations and plots, always scoped to their owner (another user's id is a 404)."""

from __future__ import annotations

import base64
import io

import numpy as np
from django.db.models import QuerySet
from django.http import Http404
from PIL import Image

from datasets.selectors import dataset_row_record
from explanations.job_data import image_shape_of, pixels_to_images
from explanations.models import Explanation, Job, ModelRun, Plot, StepKind, StepStatus


def job_list(*, user, dataset_id: int | None = None) -> QuerySet[Job]:
    jobs = Job.objects.filter(owner=user).select_related("dataset").prefetch_related("runs")
    return jobs.filter(dataset_id=dataset_id) if dataset_id else jobs


def job_get(*, user, job_id) -> Job:
    try:
        return Job.objects.select_related("dataset").get(owner=user, pk=job_id)
    except (Job.DoesNotExist, ValueError, TypeError):
        raise Http404("No such job.") from None


def job_progress(*, job: Job) -> float:
    """0..1 by expected seconds: training, each explained row, the global views, then the what-if curves and ZIP."""
    from explanations.progress import job_live_status

    return job_live_status(job=job)["progress"]


def job_run_stages(*, job: Job) -> list[dict]:
    """Each classifier's own line (parallel tasks would otherwise overwrite one another's job stage)."""
    from uploaded_models.job_classifiers import classifier_labels_of  # "model:<id>": the uploaded model's name

    runs = list(job.runs.all())
    labels = classifier_labels_of(r.classifier for r in runs)
    return [{"classifier": r.classifier, "label": labels.get(r.classifier, r.classifier), "status": r.status,
             "stage": r.stage, "progress": 1.0 if r.status == "done" else round(min(r.units_done / max(r.units_total, 1), 1.0), 4)}
            for r in runs]


def job_metrics(*, job: Job) -> dict[str, dict]:
    return {r.classifier: {"accuracy": r.metrics.get("accuracy"), "f1_macro": r.metrics.get("f1_macro"),
                           "n_train": r.metrics.get("n_train"), "n_test": r.metrics.get("n_test")}
            for r in job.runs.all() if r.metrics}


def job_runs(*, job: Job) -> QuerySet[ModelRun]:
    return job.runs.all()


def explanation_list(*, job: Job, classifier: str | None = None, row: int | None = None) -> QuerySet[Explanation]:
    items = job.explanations.prefetch_related("plots")
    if classifier:
        items = items.filter(classifier=classifier)
    if row is not None:
        items = items.filter(row=row)
    return items


def plot_get(*, user, plot_id) -> Plot:
    try:
        return Plot.objects.select_related("job", "explanation").get(job__owner=user, pk=plot_id)
    except (Plot.DoesNotExist, ValueError, TypeError):
        raise Http404("No such plot.") from None


def job_global_plots(*, job: Job, classifier: str | None = None) -> QuerySet[Plot]:
    plots = job.plots.filter(explanation__isnull=True, scenario__isnull=True,
                            network_view__isnull=True)  # a scenario's (a network view's) plots show with it
    return plots.filter(classifier=classifier) if classifier else plots


ROW_IMAGE_SIDE = 224  # pixels the row page shows an image at, at least (small images are scaled up, pixel by pixel)


def row_image_uri(*, job: Job, row: int) -> str:
    """An image job's row as the image itself (a ``data:`` PNG, so it needs no file and no URL); "" when absent."""
    features = job.schema.get("features", [])
    record = dataset_row_record(dataset=job.dataset, row=row, columns=features)
    if len(record) != len(features) or not features:
        return ""
    pixels = np.array([[np.nan if v is None else float(v) for v in record.values()]], dtype=np.float32)
    image = pixels_to_images(pixels, image_shape_of(job.schema))[0]
    height, width, channels = image.shape
    array = (image * 255).round().astype(np.uint8)
    picture = Image.fromarray(array[:, :, 0], "L") if channels == 1 else Image.fromarray(array[:, :, :3], "RGB")
    scale = max(1, ROW_IMAGE_SIDE // max(height, width))
    picture = picture.resize((width * scale, height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def job_batches(*, job: Job) -> list[dict]:
    """The job's explain steps as the pipeline runs them: rows, status, worker, seconds and attempts of each, with
    the status of its trust step (``skipped`` where trust is not measured, e.g. texts and images)."""
    steps = list(job.steps.filter(kind__in=[StepKind.EXPLAIN, StepKind.TRUST]).select_related("run").order_by("pk"))
    trust = {s.key.removeprefix("trust"): s.status for s in steps if s.kind == StepKind.TRUST}
    measured = not (job.schema.get("text") or job.schema.get("image_shape"))
    return [{"classifier": s.run.classifier if s.run_id else "", "explainer": s.explainer, "rows": s.rows,
             "status": s.status, "worker": s.worker, "seconds": s.seconds, "attempts": s.attempts,
             "trust": trust.get(s.key.removeprefix("explain"), StepStatus.PENDING if measured else "skipped")}
            for s in steps if s.kind == StepKind.EXPLAIN]


def job_eta_seconds(*, job: Job, batches: list[dict]) -> float | None:
    """Seconds until the last batch is explained, from the batches timed so far and how many run side by side."""
    if job.status not in ("queued", "running"):
        return None
    timed = [b["seconds"] for b in batches if b["status"] == StepStatus.DONE and b["seconds"]]
    left = sum(b["status"] in (StepStatus.PENDING, StepStatus.RUNNING) for b in batches)
    if not timed or not left:
        return None
    side_by_side = max(len({b["worker"] for b in batches if b["status"] == StepStatus.RUNNING}), 1)
    running = sum(b["status"] == StepStatus.RUNNING for b in batches)
    return round(sum(timed) / len(timed) * left / max(running, side_by_side, 1), 1)
