"""What a job's results look like outside the app: explanation records (API, JSON, CSV) and the ZIP."""

from __future__ import annotations

import hashlib
import io
import json
import logging
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
from explanations.models import Explanation, Job, JobStatus, Plot, WhatIf

logger = logging.getLogger(__name__)

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


def explanation_details_csvs(explanations: list[Explanation]) -> dict[str, str]:
    """The extra CSVs explainers declare (``detail_name``, ``detail_rows``), e.g. ``counterfactuals.csv`` with one row
    per counterfactual change, each row led by the explanation it belongs to."""
    import pandas as pd

    tables: dict[str, list[dict]] = {}
    for e in explanations:
        explainer = explainer_variant(e.explainer, schema_modality(getattr(e.job, "schema", None)))
        if explainer is None or not explainer.detail_name:
            continue
        lead = {"classifier": e.classifier, "explainer": e.explainer, "row": e.row, "row_name": e.row_name}
        tables.setdefault(f"{explainer.detail_name}.csv", []).extend({**lead, **row} for row in explainer.detail_rows(e.data))
    out = {}
    for name, rows in tables.items():
        buffer = io.StringIO()
        formula_safe(pd.DataFrame(rows)).to_csv(buffer, index=False)
        out[name] = buffer.getvalue()
    return out


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


def job_zip_stamp(job: Job) -> str:
    """A fingerprint of everything the ZIP holds: plots (a redrawn plot is a new row), explanations and their
    trust, what-if curves and the runs' metrics. A ZIP whose name carries the current stamp is up to date."""
    digest = hashlib.sha256()
    parts = [
        [job.status, job.schema, job.params],
        list(job.plots.order_by("pk").values_list("pk", "png", "svg")),
        list(job.explanations.order_by("pk").values_list("pk", "trust", "meta")),
        list(WhatIf.objects.filter(job=job).order_by("pk").values_list("pk", "plot_id", "curves")),
        list(job.runs.order_by("pk").values_list("pk", "status", "metrics")),
    ]
    for part in parts:
        digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def job_zip_fresh(*, job: Job) -> str:
    """The storage name of a ZIP of the job as it is now, packed again when anything in it changed since
    (a what-if drawn after the job finished is in the next download). Only succeeded jobs have a ZIP."""
    if job.status != JobStatus.SUCCEEDED:
        raise ValueError("only a succeeded job has a ZIP")
    stamp = job_zip_stamp(job)
    current = job.result_zip.name if job.result_zip else ""
    if current.endswith(f"-{stamp}.zip") and default_storage.exists(current):
        return current
    name = job_zip_build(job=job, stamp=stamp)
    Job.objects.filter(pk=job.pk).update(result_zip=name)
    job.result_zip.name = name
    if current and current != name:
        try:
            default_storage.delete(current)
        except OSError:  # a download that still reads it, or the disk: the receivers remove it with the job
            logger.warning("could not remove the older ZIP %s", current)
    return name


def job_zip_build(*, job: Job, stamp: str | None = None) -> str:
    """Write the ZIP to a temporary file, then store it whole: a half-written archive is never offered.

    Its name carries ``job_zip_stamp`` (computed before packing, so a change made while packing makes the next
    download pack again)."""
    stamp = stamp or job_zip_stamp(job)
    explanations = list(job.explanations.prefetch_related("plots").order_by("classifier", "row", "explainer"))
    records = [explanation_record(e, lambda p, ext: plot_archive_name(p, ext)) for e in explanations]
    with tempfile.TemporaryFile() as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for plot in job.plots.select_related("explanation"):
                for extension in ("png", "svg"):
                    with getattr(plot, extension).open("rb") as handle:
                        # PNGs are compressed already: stored as they are, packing is several times faster
                        archive.writestr(plot_archive_name(plot, extension), handle.read(),
                                         compress_type=zipfile.ZIP_STORED if extension == "png" else zipfile.ZIP_DEFLATED)
            for explanation in explanations:  # image attribution maps, as .npy, where the records say
                stored, archived = explanation.meta.get("attribution_file"), explanation.data.get("attribution_file")
                if stored and archived and default_storage.exists(stored):
                    with default_storage.open(stored, "rb") as handle:
                        archive.writestr(archived, handle.read())
            archive.writestr("explanations.json", json.dumps(records, indent=2))
            archive.writestr("explanations.csv", explanations_csv(explanations))
            for name, text in explanation_details_csvs(explanations).items():
                archive.writestr(name, text)
            archive.writestr("manifest.json", json.dumps(job_manifest(job), indent=2, default=str))
            for name, text in insight_archive_files(job=job).items():
                archive.writestr(name, text)
        tmp.seek(0)
        name = f"jobs/{job.pk}/explainer-job-{job.pk}-{stamp}.zip"
        if default_storage.exists(name):
            default_storage.delete(name)
        try:
            return default_storage.save(name, File(tmp))
        except OSError:  # e.g. the disk filled up while writing: leave no half-written archive behind
            try:
                if default_storage.exists(name):
                    default_storage.delete(name)
            except OSError:
                logger.warning("could not remove the partial ZIP %s", name)
            raise
