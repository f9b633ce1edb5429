"""The dataset page's "Bring your own model" form: parse the request, call one service, redirect."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from datasets.selectors import dataset_get
from explainer_site.exceptions import ApplicationError

from .selectors import uploaded_model_get
from .services import uploaded_model_create, uploaded_model_delete


def _whole_number(text: str) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() and len(text) < 7 else None


@login_required
@require_POST
def uploaded_model_upload(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = dataset_get(user=request.user, dataset_id=dataset_id)
    files = request.FILES  # parses the upload, which is what sets ``upload_too_large``
    if getattr(request, "upload_too_large", False) or "file" not in files:
        messages.error(request, "Choose a model file (ONNX, skops or safetensors) no larger than the size limit.")
        return redirect(f"/datasets/{dataset.pk}/#models")
    try:
        model = uploaded_model_create(owner=request.user, dataset=dataset, file=files["file"],
                                      name=request.POST.get("name", ""), format=request.POST.get("format", ""),
                                      architecture=request.POST.get("architecture", ""),
                                      n_classes=_whole_number(request.POST.get("n_classes", "")))
    except ApplicationError as exc:
        messages.error(request, f"The model was not saved: {exc.message}")
    else:
        messages.success(request, f"Checked and saved “{model.name}”: accuracy {model.accuracy:.1%} on "
                                  f"{model.n_rows_scored:,} rows. Pick it as a classifier in a new job.")
    return redirect(f"/datasets/{dataset.pk}/#models")


@login_required
@require_POST
def uploaded_model_delete_page(request: HttpRequest, model_id: int) -> HttpResponse:
    model = uploaded_model_get(user=request.user, model_id=model_id)
    dataset_id, name = model.dataset_id, model.name
    uploaded_model_delete(model=model)
    messages.success(request, f"Deleted the model “{name}”.")
    return redirect(f"/datasets/{dataset_id}/#models")
