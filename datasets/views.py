"""Pages for datasets: parse the request, call one service, render or redirect."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from explainer_site.exceptions import ApplicationError
from explainer_site.request_values import form_text_check

from .demo import DEMOS, demo_dataset_create, demo_dataset_existing
from .selectors import dataset_get, dataset_list
from .services import dataset_create, dataset_delete, dataset_schema_set, dataset_schema_suggestion


def upload_context(error: str = "") -> dict:
    return {"demos": DEMOS.values(), "max_upload_mb": settings.EXPLAINER_MAX_UPLOAD_MB, "upload_error": error}


@login_required
def dataset_list_page(request: HttpRequest) -> HttpResponse:
    return render(request, "datasets/list.html", {"datasets": dataset_list(user=request.user), **upload_context()})


@login_required
@require_POST
def dataset_upload(request: HttpRequest) -> HttpResponse:
    error = ""
    files = request.FILES  # parses the upload, which is what sets ``upload_too_large``
    if getattr(request, "upload_too_large", False):
        error = f"The file is larger than {settings.EXPLAINER_MAX_UPLOAD_MB} MB, the limit of this server. Upload a smaller file or a sample."
    elif "file" not in files:
        error = "Choose a CSV file to upload."
    else:
        try:
            dataset = dataset_create(owner=request.user, file=request.FILES["file"], name=request.POST.get("name", ""))
        except ApplicationError as exc:
            error = exc.message
        else:
            if dataset.is_ready:
                messages.success(request, f"Uploaded “{dataset.name}”: {dataset.n_rows:,} rows, {dataset.n_columns} columns.")
            else:
                messages.info(request, f"Uploaded “{dataset.name}”. It is big, so a worker is reading it now.")
            return redirect("datasets:detail", dataset.pk)
    return render(request, "datasets/list.html",
                  {"datasets": dataset_list(user=request.user), **upload_context(error)}, status=400)


@login_required
@require_POST
def dataset_demo(request: HttpRequest, key: str) -> HttpResponse:
    if key not in DEMOS:
        raise Http404("No such demo dataset.")
    existing = demo_dataset_existing(owner=request.user, key=key)
    if existing is not None:  # clicked twice (or again later): one copy is enough
        messages.info(request, f"You already have the demo dataset “{existing.name}”; here it is.")
        return redirect("datasets:detail", existing.pk)
    dataset = demo_dataset_create(owner=request.user, key=key)
    messages.success(request, f"Added the demo dataset “{dataset.name}”; its columns are already named.")
    return redirect("datasets:detail", dataset.pk)


@login_required
def dataset_detail(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = dataset_get(user=request.user, dataset_id=dataset_id)
    # Its jobs are listed by the explanations app's ``{% dataset_jobs %}`` tag.
    return render(request, "datasets/detail.html", {"dataset": dataset, "preview_columns": dataset.column_names})


def image_shape_parse(text: str) -> list | str:
    """``28 x 28``, ``28×28×3`` or ``28, 28`` -> a list; anything else is passed on for the service to reject."""
    parts = [p for p in text.replace("×", "x").replace(",", "x").lower().split("x") if p.strip()]
    try:
        return [int(p) for p in parts]
    except ValueError:
        return [text]


@login_required
def dataset_schema(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = dataset_get(user=request.user, dataset_id=dataset_id)
    if not dataset.is_ready:
        return redirect("datasets:detail", dataset.pk)
    suggestion = dataset_schema_suggestion(dataset=dataset)
    reasons = suggestion.pop("reasons")
    schema = dataset.schema or suggestion
    error, field = "", ""
    if request.method == "POST":
        label = request.POST.get("label", "")
        values = [v for v, _ in dataset.label_values.get(label, [])]
        posted = {
            "label": label,
            "features": request.POST.getlist("features"),
            "categorical": request.POST.getlist("categorical"),
            "class_names": {v: request.POST.get(f"class_name__{i}", "") for i, v in enumerate(values)},
            "row_name": request.POST.get("row_name", ""),
            "text": [request.POST.get("text", "")] if request.POST.get("text") else [],
            "image_shape": image_shape_parse(request.POST.get("image_shape", "")),
        }
        try:
            form_text_check(request.POST)
            dataset_schema_set(dataset=dataset, **posted)
        except ApplicationError as exc:
            error, field = exc.message, exc.extra.get("field", "")
            schema = {**posted, "class_names": {v: posted["class_names"].get(v) or v for v in values}}
        else:
            messages.success(request, "Saved. Now choose classifiers and explainers.")
            return redirect(f"/jobs/new/?dataset={dataset.pk}")
    columns = [
        {**c, "is_feature": c["name"] in schema["features"],
         "is_categorical": c["name"] in schema["categorical"] or c["dtype"] == "categorical",
         "reason": reasons.get(c["name"], "") if c["name"] not in (*schema["features"], schema["label"],
                                                                 schema.get("row_name")) else ""}
        for c in dataset.columns
    ]
    return render(request, "datasets/schema.html", {
        "dataset": dataset,
        "schema": schema,
        "columns": columns,
        "label_values": dataset.label_values,
        "class_names_initial": schema.get("class_names", {}),
        "text_columns": [c["name"] for c in dataset.columns if c["dtype"] != "numeric"],
        "show_text": bool(schema.get("text")) or any(c["dtype"] == "text" for c in dataset.columns),
        "show_image": bool(schema.get("image_shape")) or sum(c["dtype"] == "numeric" for c in dataset.columns) >= 16,
        "image_shape_text": " × ".join(map(str, schema.get("image_shape") or [])),
        "error": error,
        "error_field": field,
    }, status=400 if error else 200)


@login_required
@require_POST
def dataset_delete_page(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = dataset_get(user=request.user, dataset_id=dataset_id)
    name = dataset.name
    dataset_delete(dataset=dataset)
    messages.success(request, f"Deleted “{name}” with its jobs and files.")
    return redirect("datasets:list")
