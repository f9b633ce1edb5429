"""Pages for jobs and results: parse the request, call one service or selector, render."""

from __future__ import annotations

import json
import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from rest_framework.decorators import api_view

from datasets.selectors import dataset_get, dataset_list, dataset_row_values
from explainer_site.exceptions import ApplicationError
from explainer_site.request_values import form_text_check, query_int
from explanations.compare import jobs_compare
from explanations.estimates import form_estimate
from explanations.exports import job_zip_fresh
from explanations.insights import job_trust_summary, row_insight
from explanations.ml.catalogue import EXPLAINERS, explainer_label, explainer_variant
from explanations.ml.explainers import explainer_for
from explanations.ml.modalities import classifier_choices, explainer_choices, schema_modality
from explanations.models import JobShare, JobStatus
from explanations.network_views import network_page
from explanations.progress import eta_words, job_live_status
from explanations.report import report_response
from explanations.scenarios import scenario_editor
from explanations.selectors import (
    explanation_list,
    job_get,
    job_global_plots,
    job_list,
    job_run_stages,
    plot_get,
    row_image_uri,
)
from explanations.services.job_cancel import job_cancel
from explanations.services.job_create import job_create, job_rerun
from explanations.services.job_delete import job_delete
from explanations.shares import job_share, job_unshare, shared_job_get
from explanations.whatifs import whatif_list
from uploaded_models.job_classifiers import classifier_spec_or_none, uploaded_classifier_choices

ROW_MODES = ("random", "misclassified", "ids", "names", "all_test")
DEFAULT_CLASSIFIERS = {"tabular": ["random_forest", "logistic_regression"], "text": ["logistic_regression", "naive_bayes"],
                       "image": ["cnn"]}


ROW_NAME_SUGGESTIONS = 5000
TRUST_FORM_FIELDS = ("stability_runs", "sanity_images", "roar_images", "roar_epochs")  # the job form's trust__<name> inputs


def dataset_row_names(dataset) -> list[str]:
    """Every distinct name in the dataset's row-name column, sorted (the form's suggestions and what it knows)."""
    if dataset is None or not dataset.schema.get("row_name"):
        return []
    import pandas as pd

    with dataset.data_file.open("rb") as handle:
        column = pd.read_parquet(handle, columns=[dataset.schema["row_name"]]).iloc[:, 0]
    return sorted({str(v) for v in column.dropna()})


@login_required
def job_list_page(request: HttpRequest) -> HttpResponse:
    return render(request, "explanations/job_list.html", {"jobs": job_list(user=request.user)})


def row_names_parse(raw: str, known: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Names one per line (a name may hold commas: "Smith, Mr. John"). A line that is not a known name but has
    commas is the older comma-separated form ("flamingo, frog"), so forms and bookmarks from before still work."""
    names: list[str] = []
    for line in raw.splitlines():
        line = line.strip()
        if not line:
            continue
        if "," in line and line not in known:
            names += [part.strip() for part in line.split(",") if part.strip()]
        else:
            names.append(line)
    return list(dict.fromkeys(names))


def job_form_request(post, modality: str = "tabular", known_names: set[str] | frozenset[str] = frozenset()) -> dict:
    """Turn the posted form into the service's arguments (the parameters of the plug-ins serving ``modality``)."""
    form_text_check(post)
    mode = post.get("rows_mode", "random")
    if mode == "ids":
        raw = post.get("rows_ids", "").replace(";", ",").replace(" ", ",")
        rows = {"ids": [part for part in raw.split(",") if part.strip()]}
    elif mode == "names":
        rows = {"names": row_names_parse(post.get("rows_names", ""), known_names)}
    elif mode == "all_test":
        rows = {"all_test": True}
    elif mode == "misclassified":
        rows = {"misclassified": post.get("rows_count", "3")}
    else:
        rows = {"random": post.get("rows_count", "3"), "seed": post.get("seed", "0") or 0}
    also_wrong = post.get("rows_also_misclassified", "").strip()
    if mode != "misclassified" and also_wrong not in ("", "0"):  # "3 random + 2 misclassified" in one job
        rows = {"any_of": [rows, {"misclassified": also_wrong}]}
    params: dict = {"test_size": post.get("test_size", "0.25"), "seed": post.get("seed", "0"), "classifiers": {}}
    for explainer in explainer_choices(modality):
        key = explainer.key
        params[key] = {p.name: post.get(f"{key}__{p.name}") for p in explainer.params if post.get(f"{key}__{p.name}") not in (None, "")}
        if explainer.params and any(p.kind == "bool" for p in explainer.params):
            for p in explainer.params:
                if p.kind == "bool":
                    params[key][p.name] = post.get(f"{key}__{p.name}") == "on"
        for p in explainer.params:  # a list of ticked features; the marker tells "none ticked" from "not on the form"
            if p.kind == "features" and f"{key}__{p.name}__shown" in post:
                params[key][p.name] = post.getlist(f"{key}__{p.name}")
    for classifier in classifier_choices(modality):
        key = classifier.key
        params["classifiers"][key] = {p.name: post.get(f"clf__{key}__{p.name}") for p in classifier.params
                                      if post.get(f"clf__{key}__{p.name}") not in (None, "")}
    explainers = post.getlist("explainers")
    params = {k: v for k, v in params.items() if k not in EXPLAINERS or k in explainers}
    params["classifiers"] = {k: v for k, v in params["classifiers"].items() if k in post.getlist("classifiers")}
    trust = {name: post[f"trust__{name}"] for name in TRUST_FORM_FIELDS if post.get(f"trust__{name}", "") != ""}
    if trust:
        params["trust"] = trust
    if post.getlist("whatif__features"):
        params["whatif"] = {"features": post.getlist("whatif__features")}
    return {"classifiers": post.getlist("classifiers"), "explainers": explainers, "rows": rows, "params": params,
            "request_key": post.get("request_key", "")}


@login_required
def job_new(request: HttpRequest) -> HttpResponse:
    datasets = [d for d in dataset_list(user=request.user) if d.schema]
    dataset_id = request.POST.get("dataset") or request.GET.get("dataset")
    dataset = dataset_get(user=request.user, dataset_id=dataset_id) if dataset_id else (datasets[0] if datasets else None)
    if dataset is not None and not dataset.schema:
        messages.info(request, "First say which column to predict and which columns are features.")
        return redirect("datasets:schema", dataset.pk)
    modality = schema_modality(dataset.schema if dataset is not None else None)
    error, field, status, posted = "", "", 200, request.POST if request.method == "POST" else None
    names = dataset_row_names(dataset)
    if request.method == "POST" and dataset is not None:
        try:
            job = job_create(owner=request.user, dataset=dataset, **job_form_request(request.POST, modality, set(names)))
        except ApplicationError as exc:  # including "the queue is unavailable" (503)
            error, field, status = exc.message, exc.extra.get("field", ""), exc.status
        else:
            return redirect("explanations:job", job.pk)
    row_names = names[:ROW_NAME_SUGGESTIONS]
    checked_classifiers = posted.getlist("classifiers") if posted else DEFAULT_CLASSIFIERS[modality]
    checked_explainers = posted.getlist("explainers") if posted else [e.key for e in explainer_choices(modality)
                                                                         if e.offered_by_default]
    estimate = None
    if dataset is not None:
        estimate = (job_form_estimate(request.POST, dataset=dataset, owner=request.user, modality=modality) if posted else
                    form_estimate(dataset=dataset, owner=request.user, classifiers=checked_classifiers,
                                  explainers=checked_explainers, rows={"random": 3}, params={}))
    return render(request, "explanations/job_new.html", {
        "datasets": datasets,
        "dataset": dataset,
        "classifiers": classifier_choices(modality) + uploaded_classifier_choices(dataset=dataset),
        "explainers": explainer_choices(modality),
        "modality": modality,
        "posted": posted,
        "checked_classifiers": checked_classifiers,
        "checked_explainers": checked_explainers,
        "estimate": estimate,
        "feature_names": dataset.schema.get("features", []) if dataset is not None and modality == "tabular" else [],
        "rows_mode": posted.get("rows_mode", "random") if posted else "random",
        "row_names": row_names,
        "request_key": uuid.uuid4().hex,
        "error": error,
        "error_field": field,
        "max_job_rows": settings.EXPLAINER_MAX_JOB_ROWS,
    }, status=status)


def job_form_estimate(query, *, dataset, owner, modality: str) -> dict:
    """The form's estimate from what it holds now (incomplete or wrong values estimate as the defaults would)."""
    try:
        # the dataset's row names, so a name with commas ("Smith, Mr. John") counts as one row, as on submit
        values = job_form_request(query, modality, set(dataset_row_names(dataset)))
    except ApplicationError:  # e.g. text too long: no estimate to give
        values = {"classifiers": [], "explainers": [], "rows": {}, "params": {}}
    return form_estimate(dataset=dataset, owner=owner, classifiers=values["classifiers"], explainers=values["explainers"],
                         rows=values["rows"], params=values["params"])


@login_required
def job_estimate(request: HttpRequest) -> JsonResponse:
    """What the job form would cost: ``{seconds, rows, text, basis, large}`` for the form's fields as a query."""
    dataset = dataset_get(user=request.user, dataset_id=request.GET.get("dataset"))
    if not dataset.schema:
        raise Http404("Name the dataset's columns first.")
    return JsonResponse(job_form_estimate(request.GET, dataset=dataset, owner=request.user,
                                          modality=schema_modality(dataset.schema)))


def runs_with_live_progress(runs: list[dict], live_runs: list[dict]) -> list[dict]:
    """The progress page's classifier lines move with the job's bar (by expected seconds) and say their own ETA."""
    live = {r["classifier"]: r for r in live_runs}
    return [{**r, **({"progress": live[r["classifier"]]["progress"], "eta": eta_words(live[r["classifier"]]["eta_seconds"])}
                     if r["classifier"] in live and r["status"] != "done" else {})} for r in runs]


def job_status_payload(job) -> dict:
    live = job_live_status(job=job)
    return {
        "id": job.pk,
        "status": job.status,
        "progress": live["progress"],
        "stage": job.stage,
        "headline": live["headline"],  # the stage running now (each classifier's when two run side by side)
        "eta_seconds": live["eta_seconds"],
        "eta": eta_words(live["eta_seconds"]),
        "explained": live["explained"],
        "runs": runs_with_live_progress(job_run_stages(job=job), live["runs"]),
        "error": job.error,
        "elapsed": round(((job.finished_at or timezone.now()) - (job.started_at or job.created_at)).total_seconds()),
        "results_url": reverse("explanations:results", args=[job.pk]),
    }


@login_required
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    job = job_get(user=request.user, job_id=job_id)
    if job.status == JobStatus.SUCCEEDED:
        return redirect("explanations:results", job.pk)
    return render(request, "explanations/job_detail.html", {"job": job, "status": job_status_payload(job),
                                                             "status_json": json.dumps(job_status_payload(job))})


@login_required
def job_status(request: HttpRequest, job_id: int) -> JsonResponse:
    return JsonResponse(job_status_payload(job_get(user=request.user, job_id=job_id)))


@login_required
@require_POST
def job_cancel_page(request: HttpRequest, job_id: int) -> HttpResponse:
    job = job_get(user=request.user, job_id=job_id)
    try:
        job_cancel(job=job)
        messages.info(request, "Cancelled. Explanations finished so far are kept.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("explanations:job", job.pk)


@login_required
@require_POST
def job_delete_page(request: HttpRequest, job_id: int) -> HttpResponse:
    job = job_get(user=request.user, job_id=job_id)
    dataset_id = job.dataset_id
    job_delete(job=job)
    messages.success(request, f"Deleted job {job_id} and its files.")
    return redirect("datasets:detail", dataset_id)


ROWS_PER_PAGE = 50
ROW_SORTS = {"row": "row number", "-confidence": "most confident first", "confidence": "least confident first",
             "predicted": "predicted answer"}
ROW_FILTERS = {"all": "all rows", "wrong": "only mistakes", "right": "only right answers"}


def rows_table_options(query) -> dict:
    """The explained-rows table's sort, filter and page from the query string (anything unknown: the default)."""
    sort = query.get("sort", "row") if query.get("sort") in ROW_SORTS else "row"
    show = query.get("show", "all") if query.get("show") in ROW_FILTERS else "all"
    page = query.get("page", "1")
    page = int(page) if page.isdigit() and 0 < len(page) <= 6 else 1
    return {"sort": sort, "show": show, "page": max(page, 1), "sorts": ROW_SORTS, "filters": ROW_FILTERS}


def rows_table_page(rows: list[dict], table: dict) -> tuple[list[dict], dict]:
    if table["show"] != "all":
        rows = [r for r in rows if r["correct"] is (table["show"] == "right")]
    key = table["sort"].lstrip("-")
    rows = sorted(rows, key=lambda r: (r[key], r["row"]), reverse=table["sort"].startswith("-"))
    count = max((len(rows) + ROWS_PER_PAGE - 1) // ROWS_PER_PAGE, 1)
    page = min(table["page"], count)
    return rows[(page - 1) * ROWS_PER_PAGE: page * ROWS_PER_PAGE], {
        "page": page, "count": count, "total": len(rows), "previous": page - 1 if page > 1 else None,
        "next": page + 1 if page < count else None, "first": (page - 1) * ROWS_PER_PAGE + 1 if rows else 0,
        "last": min(page * ROWS_PER_PAGE, len(rows))}


@login_required
def job_results(request: HttpRequest, job_id: int) -> HttpResponse:
    job = job_get(user=request.user, job_id=job_id)
    table = rows_table_options(request.GET)
    runs = []
    for run in job.runs.all():
        rows: dict[int, dict] = {}
        for row, row_name, true_label, predicted, probabilities, in_train, explainer in (
                job.explanations.filter(classifier=run.classifier).order_by("row", "pk").values_list(
                    "row", "row_name", "true_label", "predicted", "probabilities", "in_train", "explainer")):
            rows.setdefault(row, {"row": row, "row_name": row_name, "true_label": true_label, "predicted": predicted,
                                  "confidence": max(probabilities.values(), default=0.0), "in_train": in_train,
                                  "correct": (predicted == true_label) if true_label else None,
                                  "explainers": []})["explainers"].append(explainer)
        shown, pages = rows_table_page(list(rows.values()), table)
        plots = list(job_global_plots(job=job, classifier=run.classifier))
        runs.append({"run": run, "spec": classifier_spec_or_none(run.classifier), "rows": shown, "n_rows": len(rows),
                     "pages": pages, "plots": plots,
                     # What results_live.js compares to swap only the parts that changed while the job runs.
                     "metrics_version": f"{run.status}-{bool(run.metrics)}-{len(rows)}",
                     "summary_version": '.'.join(str(p.pk) for p in plots),
                     "rows_version": f"{run.status}-{len(rows)}"})
    live = job_live_status(job=job)
    context = {"job": job, "runs": runs, "progress": live["progress"], "live": live, "live_eta": eta_words(live["eta_seconds"]),
               "table": table, "summary": job_trust_summary(job=job),
               "partial_dependence": whatif_list(job=job, partial_dependence=True)}
    if request.GET.get("fragment") == "live":  # the live page asks for its changing parts only
        return render(request, "explanations/_results_live.html", context)
        runs.append({"run": run, "spec": classifier_spec_or_none(run.classifier), "rows": shown, "n_rows": len(rows),
                     "pages": pages, "plots": job_global_plots(job=job, classifier=run.classifier)})
    share = JobShare.objects.filter(job=job).first()
    share_url = request.build_absolute_uri(reverse("explanations:shared", args=[share.token])) if share else ""
    return render(request, "explanations/job_results.html", {
        **context, "share_url": share_url, "active_tab": request.GET.get("tab") or (job.classifiers or [""])[0]})


@login_required
def job_row(request: HttpRequest, job_id: int, row: int) -> HttpResponse:
    """The row page; a POST is the what-if editor's form (the edited row goes to a worker, the page shows it)."""
    job = job_get(user=request.user, job_id=job_id)
    explanations = list(explanation_list(job=job, row=row))
    if not explanations:
        raise Http404("This row was not explained in this job.")
    by_classifier: dict[str, dict] = {}
    modality = schema_modality(job.schema)
    for e in explanations:
        entry = by_classifier.setdefault(e.classifier, {"spec": classifier_spec_or_none(e.classifier), "first": e, "items": []})
        explainer = explainer_variant(e.explainer, modality)
        entry["items"].append({"explanation": e, "label": explainer_label(e.explainer),
                               "kind": explainer.result_kind if explainer else "", "plot": next(iter(e.plots.all()), None),
                               # a table under the plot (counterfactuals' changes): the class draws it, loaded only then
                               "detail": explainer_for(e.explainer, modality).detail_table(e.data)
                               if explainer and explainer.detail_name else None})
    first = explanations[0]
    probabilities = sorted(first.probabilities.items(), key=lambda kv: -kv[1])
    insight = row_insight(job=job, row=row, explanations=explanations, feature=request.GET.get("feature", ""))
    schema = job.schema
    image = ""
    if modality == "image":  # shown as the image itself: its pixels are no list to read
        values, text, image = {}, "", row_image_uri(job=job, row=row)
    else:
        shown = [*schema.get("features", []), schema["label"]]
        values = dataset_row_values(dataset=job.dataset, row=row, columns=list(dict.fromkeys(shown)))
        text = values.pop(schema["text"][0], "") if modality == "text" and schema.get("text") else ""
    editor: dict = {"editor_fields": [], "scenarios": []}
    if modality == "tabular":
        editor = scenario_editor(job=job, row=row, row_values=values, post=request.POST if request.method == "POST" else None,
                                 predicted={key: entry["first"].predicted for key, entry in by_classifier.items()})
        if editor.get("created"):
            return redirect(reverse("explanations:row", args=[job.pk, row]) + f"#scenario-{editor['created'].pk}")
    return render(request, "explanations/job_row.html", {"job": job, "row": row, "first": first,
                                                          "row_values": values, "row_text": text, "row_image": image,
                                                          "label_column": schema["label"],
                                                          "classifiers": by_classifier, "probabilities": probabilities,
                                                          **insight, **editor},
                  status=400 if editor.get("editor_error") else 200)


@login_required
def job_network(request: HttpRequest, job_id: int) -> HttpResponse:
    """Inside an image job's CNN: feature visualisations, neuron groups and adversarial examples, each drawn by a
    worker; a POST is one of the page's forms (the page shows the view being drawn, then drawn)."""
    job = job_get(user=request.user, job_id=job_id)
    try:
        row = query_int(request.GET, "row")
    except ApplicationError:  # ?row=abc: the page opens at the first explained row
        row = None
    try:
        context = network_page(job=job, row=row, post=request.POST if request.method == "POST" else None)
    except ApplicationError as exc:  # not an image job, not finished, no CNN: say so on the page
        return render(request, "explanations/job_network.html", {"job": job, "unavailable": exc.message}, status=400)
    if context.get("created"):
        view = context["created"]
        query = f"?row={view.params['row']}" if "row" in view.params else ""
        return redirect(reverse("explanations:network", args=[job.pk]) + query + f"#view-{view.pk}")
    return render(request, "explanations/job_network.html", {"job": job, **context},
                  status=400 if context["form_error"] else 200)


PLOT_SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox"  # matplotlib's SVG has one <style>


@api_view(["GET"])
def plot_file(request: HttpRequest, plot_id: int, extension: str) -> FileResponse:
    """A plot image for its owner, logged in by session (pages) or by API token (scripts).

    Not found (or another user's): a browser gets the site's 404 page, a script the API's JSON error."""
    try:
        if extension not in ("png", "svg"):
            raise Http404("Plots come as .png or .svg.")
        plot = plot_get(user=request.user, plot_id=plot_id)
    except Http404:
        if "text/html" in request.META.get("HTTP_ACCEPT", ""):
            return render(request._request, "errors/404.html", status=404)
        raise
    field = plot.png if extension == "png" else plot.svg
    response = FileResponse(field.open("rb"), content_type="image/png" if extension == "png" else "image/svg+xml",
                            as_attachment="download" in request.GET,
                            filename=f"job{plot.job_id}_{plot.slug}.{extension}")  # downloads of two jobs never collide
    response["Cache-Control"] = "private, max-age=3600"
    if extension == "svg":
        # An SVG opened on its own is a document that could run script: this one may only style itself.
        response["Content-Security-Policy"] = PLOT_SVG_POLICY
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
@require_POST
def job_rerun_page(request: HttpRequest, job_id: int) -> HttpResponse:
    try:
        job = job_rerun(job=job_get(user=request.user, job_id=job_id))
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("explanations:results", job_id)
    messages.success(request, f"Started job {job.pk}: the same data, settings and seeds as job {job_id}.")
    return redirect("explanations:job", job.pk)


@login_required
def job_download(request: HttpRequest, job_id: int) -> HttpResponse:
    job = job_get(user=request.user, job_id=job_id)
    if job.status != JobStatus.SUCCEEDED:
        messages.error(request, "The ZIP is made when the job has finished successfully.")
        return redirect("explanations:job", job.pk)
    try:
        name = job_zip_fresh(job=job)
    except ApplicationError as exc:
        messages.error(request, str(exc))
        return redirect("explanations:job", job.pk)
    return FileResponse(default_storage.open(name, "rb"), as_attachment=True, filename=f"explainer-job-{job.pk}.zip",
                        content_type="application/zip")


@login_required
def job_report_page(request: HttpRequest, job_id: int) -> HttpResponse:
    return report_response(job_get(user=request.user, job_id=job_id), download="download" in request.GET)


@login_required
@require_POST
def job_share_page(request: HttpRequest, job_id: int) -> HttpResponse:
    job_share(job=job_get(user=request.user, job_id=job_id))
    messages.success(request, "Anyone with the link below can now read this job's report, without an account.")
    return redirect(reverse("explanations:results", args=[job_id]) + "#share")


@login_required
@require_POST
def job_unshare_page(request: HttpRequest, job_id: int) -> HttpResponse:
    job_unshare(job=job_get(user=request.user, job_id=job_id))
    messages.success(request, "Stopped sharing: the link no longer works.")
    return redirect(reverse("explanations:results", args=[job_id]) + "#share")


def shared_report(request: HttpRequest, token: str) -> HttpResponse:
    """A shared job's report, for anyone with the link (logged in or not); 404 once its owner stops sharing."""
    response = report_response(shared_job_get(token=token), download=False)
    response["Cache-Control"] = "private, no-store"  # stops working at once when the owner stops sharing
    response["Referrer-Policy"] = "no-referrer"  # the link is the secret
    return response


@login_required
def jobs_compare_page(request: HttpRequest) -> HttpResponse:
    """Pick two of one's jobs on the same dataset and see them side by side."""
    a_id, b_id = request.GET.get("a", ""), request.GET.get("b", "")
    a = job_get(user=request.user, job_id=a_id) if a_id else None
    b = job_get(user=request.user, job_id=b_id) if b_id else None
    others = list(job_list(user=request.user, dataset_id=a.dataset_id).exclude(pk=a.pk)) if a else []
    comparison, error = None, ""
    if a and b:
        try:
            comparison = jobs_compare(a=a, b=b)
        except ApplicationError as exc:
            error = exc.message
    return render(request, "explanations/job_compare.html", {"a": a, "b": b, "others": others, "comparison": comparison,
                                                              "error": error}, status=400 if error else 200)
