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
from typing import Any

import pandas as pd
from django.core.files import File
from django.core.files.storage import default_storage
from django.utils import timezone

from datasets.ingest import formula_safe, value_text
from explainer_site.exceptions import ApplicationError
from explanations.insights import job_trust_summary, trust_record
from explanations.ml import trust as trust_metrics
from explanations.ml.catalogue import explainer_variant as catalogue_variant
from explanations.ml.explainers import explainer_variant  # the class: its own summary_text writes the cell
from explanations.ml.modalities import schema_modality
from explanations.models import Explanation, Job, JobStatus, Plot, Scenario, WhatIf, WhatIfStatus
from explanations.network_views import network_view_record
from uploaded_models.job_classifiers import classifier_labels_of

logger = logging.getLogger(__name__)

LIBRARIES = ("django", "celery", "numpy", "pandas", "scikit-learn", "lime", "anchor-exp", "shap", "torch", "matplotlib")


def explanation_record(explanation: Explanation, plot_link: Callable[[Plot, str], str],
                       labels: dict[str, str] | None = None) -> dict:
    """One explained row as the API and the ZIP show it: class names, not codes, and the classifier's label (an
    uploaded model's name) beside its key; ``labels`` from ``classifier_labels_of`` when there are many rows."""
    labels = labels if labels is not None else classifier_labels_of([explanation.classifier])
    data = dict(explanation.data)
    if "label" in data and isinstance(data["label"], int):
        names = list(explanation.probabilities)
        data["label"] = names[data["label"]] if 0 <= data["label"] < len(names) else data["label"]
    return {
        "classifier": explanation.classifier,
        "classifier_label": labels.get(explanation.classifier, explanation.classifier),
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
    """The CSV's ``explanation`` cell: the explainer's own ``summary_text`` of the saved ``data``, as the worker
    stored it with the explanation (``services.explanation_texts``); rows saved before that ask the class."""
    stored = (explanation.meta or {}).get("summary_text")
    if isinstance(stored, str):
        return stored
    job = getattr(explanation, "job", None)
    explainer = explainer_variant(explanation.explainer, schema_modality(getattr(job, "schema", None)))
    return json.dumps(explanation.data) if explainer is None else explainer.summary_text(explanation.data)


def explanations_csv(explanations: list[Explanation]) -> str:
    labels = classifier_labels_of(e.classifier for e in explanations)
    frame = pd.DataFrame(
        [{"classifier": e.classifier, "classifier_label": labels[e.classifier], "explainer": e.explainer, "row": e.row, "row_name": e.row_name,
          "in_train": e.in_train, "true_label": e.true_label, "predicted": e.predicted,
          "confidence": round(e.confidence, 4), "explanation": explanation_summary_text(e)} for e in explanations],
        columns=["classifier", "classifier_label", "explainer", "row", "row_name", "in_train", "true_label", "predicted", "confidence", "explanation"])
    buffer = io.StringIO()
    formula_safe(frame).to_csv(buffer, index=False)
    return buffer.getvalue()


def explanation_details_csvs(explanations: list[Explanation]) -> dict[str, str]:
    """The extra CSVs explainers declare (``detail_name``, ``detail_rows``), e.g. ``counterfactuals.csv`` with one row
    per counterfactual change, each row led by the explanation it belongs to."""
    import pandas as pd

    tables: dict[str, list[dict]] = {}
    labels = classifier_labels_of(e.classifier for e in explanations)
    for e in explanations:
        modality = schema_modality(getattr(e.job, "schema", None))
        entry = catalogue_variant(e.explainer, modality)
        if entry is None or not entry.detail_name:  # the catalogue says so: no explainer class loaded for the rest
            continue
        explainer = explainer_variant(e.explainer, modality)
        lead = {"classifier": e.classifier, "classifier_label": labels[e.classifier], "explainer": e.explainer, "row": e.row, "row_name": e.row_name}
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
        "classifier_labels": classifier_labels_of(job.classifiers),
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
    trust, what-if curves, the runs' metrics and the what-if editor's scenarios. A ZIP whose name carries the current stamp is up to date."""
    digest = hashlib.sha256()
    parts = [
        [job.status, job.schema, job.params],
        list(job.plots.order_by("pk").values_list("pk", "png", "svg")),
        list(job.explanations.order_by("pk").values_list("pk", "trust", "meta")),
        list(WhatIf.objects.filter(job=job).order_by("pk").values_list("pk", "plot_id", "curves")),
        list(job.runs.order_by("pk").values_list("pk", "status", "metrics")),
        list(job.scenarios.order_by("pk").values_list("pk", "status", "predictions")),  # the what-if editor's rows
    ]
    for part in parts:
        digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


ZIP_UNWRITABLE = ("The ZIP could not be packed: the server's disk is full or its results folder is not writable. "
                  "Tell the administrator, with job number {job_id}; the results on the page are complete.")


def job_zip_fresh(*, job: Job) -> str:
    """The storage name of a ZIP of the job as it is now, packed again when anything in it changed since
    (a what-if drawn after the job finished is in the next download). Only succeeded jobs have a ZIP."""
    if job.status != JobStatus.SUCCEEDED:
        raise ValueError("only a succeeded job has a ZIP")
    stamp = job_zip_stamp(job)
    current = job.result_zip.name if job.result_zip else ""
    if current.endswith(f"-{stamp}.zip") and default_storage.exists(current):
        return current
    try:
        name = job_zip_build(job=job, stamp=stamp)
    except OSError as exc:  # no half-written archive is left (job_zip_build); the person is told, not a 500
        logger.exception("job %s: the ZIP could not be packed", job.pk)
        raise ApplicationError(ZIP_UNWRITABLE.format(job_id=job.pk), {"field": "download"}, status=503) from exc
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
    labels = classifier_labels_of(job.classifiers)
    records = [explanation_record(e, lambda p, ext: plot_archive_name(p, ext), labels) for e in explanations]
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
            for name, text in scenarios_archive_files(job=job).items():
                archive.writestr(name, text)
            for name, text in network_views_archive_files(job=job).items():
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


def insight_archive_files(*, job: Job) -> dict[str, str]:
    """Extra files for the job's ZIP: the trust table (JSON with readings, and CSV) and every what-if curve."""
    summary = job_trust_summary(job=job)
    columns = ["classifier", "classifier_label", "explainer", "rank", "n_rows", *trust_metrics.TRUST_KEYS, "mean_position"]
    labels = classifier_labels_of(job.classifiers)
    table = [{**e, "classifier_label": labels.get(e.get("classifier"), e.get("classifier"))} for e in summary["table"]]
    buffer = io.StringIO()
    formula_safe(pd.DataFrame([{c: e.get(c) for c in columns} for e in table], columns=columns)).to_csv(buffer, index=False)
    whatifs = [{"row": w.row, "feature": w.feature, "grid": w.grid, "grid_labels": w.grid_labels, "curves": w.curves,
                "plots": [{"kind": w.plot.kind, "png": plot_archive_name(w.plot, "png"), "svg": plot_archive_name(w.plot, "svg")}]
                if w.plot else []}
               for w in WhatIf.objects.filter(job=job, status=WhatIfStatus.READY).select_related("plot", "plot__explanation")]
    return {"trust_summary.json": json_text(summary), "trust_summary.csv": buffer.getvalue(), "whatif.json": json_text(whatifs)}


def json_text(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)


# ---------------------------------------------------------------- the what-if editor's scenarios


def scenario_record(scenario: Scenario, plot_link) -> dict:
    """``GET /api/jobs/{id}/scenarios/{sid}/``: explanations in the shape of ``/explanations/``."""
    plots = {p.pk: p for p in scenario.plots.all()}
    explanations = []
    for record in scenario.explanations:
        record = dict(record)
        record["plots"] = [{"kind": plots[pk].kind, "png": plot_link(plots[pk], "png"), "svg": plot_link(plots[pk], "svg")}
                           for pk in record.pop("plot_ids", []) if pk in plots]
        explanations.append(record)
    return {"id": scenario.pk, "job": scenario.job_id, "status": scenario.status, "error": scenario.error,
            "row": scenario.row, "changes": scenario.changes, "predictions": scenario.predictions,
            "explanations": explanations, "created_at": scenario.created_at, "finished_at": scenario.finished_at}


def network_views_archive_files(*, job: Job) -> dict[str, str]:
    """``network_views.json``: the API's records of every look inside the network that was drawn (plots named as
    in the ZIP, in ``plots/`` with the job's)."""
    views = list(job.network_views.filter(status="ready").order_by("pk").prefetch_related("plots"))
    if not views:
        return {}
    return {"network_views.json": json.dumps([network_view_record(v, plot_archive_name) for v in views], indent=2,
                                             default=str)}


def scenarios_archive_files(*, job: Job) -> dict[str, str]:
    """``scenarios.json`` (the API's records, plots named as in the ZIP) and ``scenarios.csv`` (one line per
    scenario × classifier); their plots are in ``plots/`` with the job's."""
    scenarios = list(job.scenarios.order_by("pk").prefetch_related("plots"))
    if not scenarios:
        return {}
    records = [scenario_record(s, plot_archive_name) for s in scenarios]
    labels = classifier_labels_of(job.classifiers)
    lines = [{"scenario": s.pk, "row": s.row, "changes": "; ".join(f"{k} = {value_text(v)}" for k, v in s.changes.items()),
              "status": s.status, "classifier": key, "classifier_label": labels.get(key, key), "predicted": p["predicted"],
              "confidence": round(max(p["probabilities"].values(), default=0.0), 4)}
             for s in scenarios for key, p in (s.predictions or {"": {"predicted": "", "probabilities": {}}}).items()]
    buffer = io.StringIO()
    formula_safe(pd.DataFrame(lines, columns=["scenario", "row", "changes", "status", "classifier", "classifier_label",
                                              "predicted", "confidence"])).to_csv(buffer, index=False)
    return {"scenarios.json": json.dumps(records, indent=2, default=str), "scenarios.csv": buffer.getvalue()}
