"""Reads of uploaded models, always scoped to their owner (another user's id is a 404)."""

from django.db.models import QuerySet
from django.http import Http404

from .models import KEY_PREFIX, UploadedModel, UploadedModelStatus


def uploaded_model_list(*, user, dataset_id: int | None = None) -> QuerySet[UploadedModel]:
    models = UploadedModel.objects.filter(owner=user)
    return models.filter(dataset_id=dataset_id) if dataset_id is not None else models


def uploaded_model_get(*, user, model_id: int) -> UploadedModel:
    try:
        return UploadedModel.objects.get(owner=user, pk=model_id)
    except (UploadedModel.DoesNotExist, ValueError, TypeError):
        raise Http404("No such model.") from None


def uploaded_model_id(key: str) -> int | None:
    """The id in a job's classifier key ``model:<id>``; None for the registry's keys."""
    if not isinstance(key, str) or not key.startswith(KEY_PREFIX):
        return None
    digits = key[len(KEY_PREFIX):]
    return int(digits) if digits.isdigit() and len(digits) < 12 else -1


def uploaded_model_for_key(key: str, *, dataset_id: int | None = None) -> UploadedModel | None:
    """The ready model a job's key names (on that dataset when given); None when there is none."""
    model_id = uploaded_model_id(key)
    if model_id is None or model_id < 0:
        return None
    models = UploadedModel.objects.filter(pk=model_id, status=UploadedModelStatus.READY)
    if dataset_id is not None:
        models = models.filter(dataset_id=dataset_id)
    return models.select_related("dataset").first()
