"""What a job's results look like outside the app: explanation records (API, JSON, CSV) and the ZIP."""

from __future__ import annotations

import io
import json
import platform
import tempfile
import zipfile
from collections.abc import Callable
from importlib import metadata

from django.core.files import File
from django.core.files.storage import default_storage
from django.utils import timezone

from datasets.ingest import formula_safe
from explanations.insights import insight_archive_files, trust_record
from explanations.ml.explainers import explainer_variant
from explanations.ml.modalities import schema_modality
from explanations.models import Explanation, Job, Plot

LIBRARIES = ("django", "celery", "numpy", "pandas", "scikit-learn", "lime", "anchor-exp", "shap", "torch", "matplotlib")


def explanation_record(explanation: Explanation, plot_link: Callable[[Plot, str], str]) -> dict:
    """One explained row as the API and the ZIP show it: class names, not codes."""
    data = dict(explanation.data)
    if "label" in data and isinstance(data["label"], int):
        names = list(explanation.probabilities)
        data["label"] = names[data["label"]] if 0 <= data["label"] < len(names) else data["label"]
    return {
        "classifier": explanation.classifier,
        "explainer": explanation.explainer,
        "row": explanation.row,
        "row_name": explanation.row_name,
        "in_train": explanation.in_train,
        "true_label": explanation.true_label,
        "predicted": explanation.predicted,
        "probabilities": explanation.probabilities,
        "data": data,
        "seconds": explanation.seconds,
        "trust": trust_record(explanation.trust),
        "plots": [{"kind": p.kind, "png": plot_link(p, "png"), "svg": plot_link(p, "svg")} for p in explanation.plots.all()],
    }


def explanation_summary_text(explanation: Explanation) -> str:
    """The CSV's ``explanation`` cell: the explainer's own ``summary_text`` of the saved ``data``."""
    job = getattr(explanation, "job", None)
    explainer = explainer_variant(explanation.explainer, schema_modality(getattr(job, "schema", None)))
    return json.dumps(explanation.data) if explainer is None else explainer.summary_text(explanation.data)


def explanations_csv(explanations: list[Explanation]) -> str:
    import pandas as pd

    frame = pd.DataFrame(
        [{"classifier": e.classifier, "explainer": e.explainer, "row": e.row, "row_name": e.row_name,
          "in_train": e.in_train, "true_label": e.true_label, "predicted": e.predicted,
          "confidence": round(e.confidence, 4), "explanation": explanation_summary_text(e)} for e in explanations],
        columns=["classifier", "explainer", "row", "row_name", "in_train", "true_label", "predicted", "confidence", "explanation"])
    buffer = io.StringIO()
    formula_safe(frame).to_csv(buffer, index=False)
    return buffer.getvalue()


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def job_manifest(job: Job) -> dict:
    return {
        "job": job.pk,
        "created_at": job.created_at.isoformat(),
        "packed_at": timezone.now().isoformat(),
        "dataset": {"name": job.dataset.name, "file": job.dataset.original_filename, "sha256": job.dataset.sha256,
                    "rows": job.dataset.n_rows, "columns": job.dataset.n_columns},
        "schema": job.schema,
        "classifiers": job.classifiers,
        "explainers": job.explainers,
        "rows": job.rows_spec,
        "parameters": job.params,
        "seeds": {"split_and_models": job.params.get("seed"), "random_rows": job.rows_spec.get("seed")},
        "metrics": {r.classifier: r.metrics for r in job.runs.all()},
        "library_versions": library_versions(),
    }


def plot_archive_name(plot: Plot, extension: str) -> str:
    return f"plots/{plot.slug}.{extension}"


def job_zip_build(*, job: Job) -> str:
    """Write the ZIP to a temporary file, then store it whole: a half-written archive is never offered."""
    explanations = list(job.explanations.prefetch_related("plots").order_by("classifier", "row", "explainer"))
    records = [explanation_record(e, lambda p, ext: plot_archive_name(p, ext)) for e in explanations]
    with tempfile.TemporaryFile() as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for plot in job.plots.select_related("explanation"):
                for extension in ("png", "svg"):
                    with getattr(plot, extension).open("rb") as handle:
                        archive.writestr(plot_archive_name(plot, extension), handle.read())
            for explanation in explanations:  # image attribution maps, as .npy, where the records say
                stored, archived = explanation.meta.get("attribution_file"), explanation.data.get("attribution_file")
                if stored and archived and default_storage.exists(stored):
                    with default_storage.open(stored, "rb") as handle:
                        archive.writestr(archived, handle.read())
            archive.writestr("explanations.json", json.dumps(records, indent=2))
            archive.writestr("explanations.csv", explanations_csv(explanations))
            archive.writestr("manifest.json", json.dumps(job_manifest(job), indent=2, default=str))
            for name, text in insight_archive_files(job=job).items():
                archive.writestr(name, text)
        tmp.seek(0)
        name = f"jobs/{job.pk}/explainer-job-{job.pk}.zip"
        if default_storage.exists(name):
            default_storage.delete(name)
        return default_storage.save(name, File(tmp))
