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


ROW_COLUMNS_MAX = 200  # a row's own values are shown for at most this many columns (images: their pixels are not)


def dataset_row_values(*, dataset: Dataset, row: int, columns: list[str]) -> dict[str, str]:
    """One data row's cells as text (missing: ""), reading only the Parquet row group that holds it, so a
    page about one row of a million-row table stays quick. ``{}`` when the row is not there."""
    from .ingest import value_text

    record = dataset_row_record(dataset=dataset, row=row, columns=columns[:ROW_COLUMNS_MAX])
    return {c: value_text(v) if v is not None else "" for c, v in record.items()}


def dataset_row_record(*, dataset: Dataset, row: int, columns: list[str]) -> dict:
    """One data row's cells as Python values (missing: None), in ``columns`` order, from the one row group that
    holds it; ``{}`` when the row is not there. Columns the file lacks are left out."""
    import pyarrow.parquet as pq

    if row < 0:
        return {}
    with dataset.data_file.open("rb") as handle:
        parquet = pq.ParquetFile(handle)
        present = [c for c in columns if c in parquet.schema_arrow.names]
        start = 0
        for group in range(parquet.num_row_groups):
            size = parquet.metadata.row_group(group).num_rows
            if row < start + size:
                table = parquet.read_row_group(group, columns=present).slice(row - start, 1).to_pylist()
                break
            start += size
        else:
            return {}
    record = table[0] if table else {}
    return {c: record.get(c) for c in present} if record else {}
