"""A job's results as one self-contained HTML file: metrics, the trust table, global views and every explained
row with its plots embedded (``data:`` URIs), so it opens anywhere, offline, with no link back to the app.

The same file is what a share link shows (``explanations.shares``): a reader without an account sees the
results and nothing else of the owner's.
"""

from __future__ import annotations

import base64

from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone

from explanations.insights import job_trust_summary
from explanations.ml.catalogue import explainer_label
from explanations.models import Job, Plot, WhatIfStatus
from uploaded_models.job_classifiers import classifier_label_of, classifier_labels_of

REPORT_ROWS_MAX = 60  # explained rows drawn into the file (each with every explainer's plot); the ZIP has them all

# The report may show its own inline styles and embedded images, and nothing else: no script, no request out.
REPORT_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def plot_data_uri(plot: Plot) -> str:
    with plot.png.open("rb") as handle:
        return "data:image/png;base64," + base64.b64encode(handle.read()).decode("ascii")


def report_plot(plot: Plot | None) -> dict | None:
    if plot is None:
        return None
    return {"title": plot.title, "alt": plot.alt, "src": plot_data_uri(plot)}


def job_report_html(*, job: Job) -> str:
    """The report of a job as it is now (a job still running reports what is done so far)."""
    runs = []
    labels = classifier_labels_of(job.classifiers)
    label = lambda key: labels.get(key) or classifier_label_of(key)  # noqa: E731
    for run in job.runs.all():
        plots = [report_plot(p) for p in job.plots.filter(explanation__isnull=True, scenario__isnull=True, network_view__isnull=True,
                                                          classifier=run.classifier)]
        runs.append({"label": label(run.classifier), "metrics": run.metrics or {}, "plots": plots})
    explanations = list(job.explanations.prefetch_related("plots").order_by("row", "classifier", "explainer"))
    shown_rows = sorted({e.row for e in explanations})[:REPORT_ROWS_MAX]
    rows: dict[int, dict] = {}
    for e in explanations:
        if e.row > shown_rows[-1]:
            break
        entry = rows.setdefault(e.row, {"row": e.row, "name": e.row_name, "true_label": e.true_label, "items": []})
        entry["items"].append({
            "classifier": label(e.classifier),
            "explainer": explainer_label(e.explainer),
            "predicted": e.predicted, "confidence": e.confidence, "correct": e.is_correct,
            "plot": report_plot(next(iter(e.plots.all()), None)),
        })
    n_rows = len({e.row for e in explanations})
    whatifs = [report_plot(w.plot) for w in job.whatifs.filter(row__isnull=True, status=WhatIfStatus.READY)
               .select_related("plot") if w.plot]
    return render_to_string("explanations/report/report.html", {
        "job": job, "runs": runs, "rows": list(rows.values()), "n_rows": n_rows, "rows_cut": n_rows > len(rows),
        "summary": job_trust_summary(job=job), "partial_dependence": whatifs, "made_at": timezone.now(),
        "classifiers": ", ".join(map(label, job.classifiers)),
        "explainers": ", ".join(map(explainer_label, job.explainers)),
    })


def report_response(job: Job, *, download: bool) -> HttpResponse:
    """The job's report file: ``text/html``, its own strict policy (inline styles and embedded images only)."""
    response = HttpResponse(job_report_html(job=job), content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = REPORT_POLICY
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = (f'{"attachment" if download else "inline"}; '
                                       f'filename="explainer-job-{job.pk}-report.html"')
    return response
