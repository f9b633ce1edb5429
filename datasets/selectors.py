"""Reads of datasets, always scoped to their owner (another user's id is a 404)."""

import pandas as pd
from django.db.models import Count, QuerySet
from django.http import Http404

from .models import Dataset


def dataset_list(*, user) -> QuerySet[Dataset]:
    return Dataset.objects.filter(owner=user).annotate(n_jobs=Count("jobs"))


def dataset_get(*, user, dataset_id: int) -> Dataset:
    try:
        return Dataset.objects.get(owner=user, pk=dataset_id)
    except (Dataset.DoesNotExist, ValueError, TypeError):
        raise Http404("No such dataset.") from None


def dataset_frame_load(*, dataset: Dataset) -> pd.DataFrame:
    """The cleaned table, row ids being 0-based positions of data rows in the uploaded file."""
    with dataset.data_file.open("rb") as handle:
        return pd.read_parquet(handle)
