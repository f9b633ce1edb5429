"""Writes of datasets: create from an upload, name the schema, delete."""

from __future__ import annotations

import hashlib
import logging
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.base import ContentFile, File
from django.db import transaction

from explainer_site.exceptions import ApplicationError

from .images import images_zip_ingest, images_zip_is, images_zip_quick_check
from .ingest import ColumnValues, IngestedTable, csv_ingest, frame_parquet, frame_preview, frame_profile, value_text
from .modalities import image_shape_clean, schema_default_media, text_column_clean
from .models import Dataset, DatasetStatus
from .schema_guess import schema_guess

LABEL_VALUES_MAX = 100
INGEST_FAILED = ("The file could not be read because of an error on this server; it was deleted. Upload it again, "
                 "and if this happens again, upload a smaller sample of it.")
INGEST_WORKER_LOST = ("The worker reading the file stopped before it finished (the file may need more memory than "
                      "this server gives one upload); it was deleted. Upload a smaller sample of it.")
logger = logging.getLogger(__name__)


def upload_size_check(size: int) -> None:
    limit = settings.EXPLAINER_MAX_UPLOAD_MB
    if size > limit * 1024 * 1024:
        raise ApplicationError(
            f"The file is {size / 1024 / 1024:.1f} MB; the limit is {limit} MB. Upload a smaller file or a sample of your data.",
            {"field": "file"},
            status=413,
        )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dataset_name_clean(name: str, filename: str) -> str:
    name = (name or "").strip() or Path(filename or "dataset").stem
    return "".join(ch for ch in name if ch.isprintable())[:200] or "dataset"


def dataset_create(*, owner, file: File, name: str = "", is_demo: bool = False) -> Dataset:
    """Read and clean an uploaded CSV (or a ZIP of images in class folders) and store it as Parquet; the upload
    itself is never kept or executed. Files above ``EXPLAINER_SYNC_INGEST_MB`` are read by a worker instead,
    so the web process never holds a big table in memory."""
    filename = Path(getattr(file, "name", "") or "upload.csv").name
    upload_size_check(file.size or 0)
    if (file.size or 0) > settings.EXPLAINER_SYNC_INGEST_MB * 1024 * 1024:
        return dataset_create_deferred(owner=owner, file=file, name=name, filename=filename)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload.csv"
        with open(path, "wb") as out:
            for chunk in file.chunks():
                out.write(chunk)
        if images_zip_is(path) and not images_zip_quick_check(
                path, filename=filename, max_pixels=settings.EXPLAINER_IMAGE_MAX_PIXELS,
                sync_pixels=settings.EXPLAINER_SYNC_IMAGE_PIXELS,
                sync_bytes=int(settings.EXPLAINER_SYNC_INGEST_MB * 1024 * 1024)):
            table = None  # too many images, or too many pixels, to decode in the web request
        else:
            table, image_shape, sha256 = upload_read(path, filename=filename)
    if table is None:
        return dataset_create_deferred(owner=owner, file=file, name=name, filename=filename)
    with transaction.atomic():
        dataset = Dataset(owner=owner, name=dataset_name_clean(name, filename), original_filename=filename[:255],
                          size_bytes=file.size or 0, is_demo=is_demo)
        return dataset_fill(dataset=dataset, table=table, image_shape=image_shape, sha256=sha256)


def upload_read(path: Path, *, filename: str) -> tuple[IngestedTable, tuple | None, str]:
    sha256 = file_sha256(path)
    limits = {"max_rows": settings.EXPLAINER_MAX_ROWS, "max_columns": settings.EXPLAINER_MAX_COLUMNS}
    if images_zip_is(path):  # a ZIP of images, one folder per class: its pixels have a column limit of their own
        columns = max(settings.EXPLAINER_MAX_COLUMNS, settings.EXPLAINER_IMAGE_PIXEL_COLUMNS + 2)  # + label, file
        table, image_shape = images_zip_ingest(path, filename=filename, max_pixels=settings.EXPLAINER_IMAGE_MAX_PIXELS,
                                               max_rows=limits["max_rows"], max_columns=columns)
    else:
        table, image_shape = csv_ingest(path, filename=filename, **limits), None
    return table, image_shape, sha256


def dataset_fill(*, dataset: Dataset, table: IngestedTable, image_shape, sha256: str) -> Dataset:
    dataset = dataset_from_table(dataset=dataset, table=table, sha256=sha256)
    if image_shape:  # the archive says what everything is: label folders, file names, pixels
        pixels = [c for c in table.frame.columns if c not in ("label", "file")]
        dataset = dataset_schema_set(dataset=dataset, label="label", features=pixels, row_name="file",
                                     image_shape=image_shape)
    return dataset


def dataset_create_deferred(*, owner, file: File, name: str, filename: str) -> Dataset:
    """Keep the upload under a generated name and let a worker read it (``dataset_ingest``)."""
    with transaction.atomic():
        dataset = Dataset(owner=owner, name=dataset_name_clean(name, filename), original_filename=filename[:255],
                          size_bytes=file.size or 0, status=DatasetStatus.PROCESSING)
        dataset.raw_file.save("upload", file, save=False)
        dataset.full_clean()
        dataset.save()
        transaction.on_commit(lambda: dataset_ingest_enqueue(dataset_id=dataset.pk))
    return dataset


def dataset_ingest_enqueue(*, dataset_id: int) -> None:
    from .tasks import dataset_ingest as dataset_ingest_task

    try:
        dataset_ingest_task.delay(dataset_id)
    except Exception as exc:  # the broker is away: say so on the dataset rather than leave it "reading" forever
        Dataset.objects.filter(pk=dataset_id).update(
            status=DatasetStatus.FAILED, error="The queue that reads big files is unavailable; upload the file again "
                                               f"in a minute ({type(exc).__name__}).")


def dataset_ingest(*, dataset_id: int) -> None:
    """Worker side of a big upload: read, clean and profile it, then delete the raw file. Safe to run twice.

    Whatever happens, the dataset ends ``ready`` or ``failed`` with a sentence, and the raw file is deleted:
    an unexpected error (or the task's time limit) is logged and told in words, never left "processing"."""
    dataset = Dataset.objects.filter(pk=dataset_id).first()
    if dataset is None or dataset.status != DatasetStatus.PROCESSING or not dataset.raw_file:
        return
    raw = dataset.raw_file
    try:
        with tempfile.TemporaryDirectory() as tmp, memory_bounded(settings.EXPLAINER_INGEST_MAX_MEMORY_MB):
            path = Path(tmp) / "upload.csv"
            with raw.open("rb") as source, open(path, "wb") as out:
                for chunk in iter(lambda: source.read(1024 * 1024), b""):
                    out.write(chunk)
            table, image_shape, sha256 = upload_read(path, filename=dataset.original_filename or "upload.csv")
        with transaction.atomic():
            dataset_fill(dataset=dataset, table=table, image_shape=image_shape, sha256=sha256)
    except ApplicationError as exc:
        dataset_ingest_fail(dataset_id=dataset_id, reason=exc.message)
    except MemoryError:
        dataset_ingest_fail(dataset_id=dataset_id, reason="The file is too big for this server's memory; upload a sample of it.")
    except SoftTimeLimitExceeded:  # the task's soft limit, raised wherever it was
        dataset_ingest_fail(dataset_id=dataset_id, reason=ingest_time_reason())
    except Exception:
        logger.exception("Reading dataset %s failed", dataset_id)
        dataset_ingest_fail(dataset_id=dataset_id, reason=INGEST_FAILED)
    else:
        Dataset.objects.filter(pk=dataset_id).update(status=DatasetStatus.READY, error="", raw_file="")
        raw.storage.delete(raw.name)


@contextmanager
def memory_bounded(megabytes: int):
    """Lower this process's address-space limit to what it uses now plus ``megabytes`` while reading an upload, so a
    file that would need more raises ``MemoryError`` (a sentence) instead of swapping or killing the worker."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        with open("/proc/self/statm") as handle:
            used = int(handle.read().split()[0]) * resource.getpagesize()
    except (ImportError, OSError, ValueError):  # not Linux: no limit
        yield
        return
    limit = used + megabytes * 1024 * 1024
    if megabytes <= 0 or (soft != resource.RLIM_INFINITY and soft <= limit):
        yield
        return
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def ingest_time_reason() -> str:
    return (f"Reading the file took longer than {settings.EXPLAINER_INGEST_SOFT_TIME_LIMIT} seconds, this server's "
            "limit, so it was stopped and the file deleted. Upload a smaller sample of it.")


def dataset_ingest_fail(*, dataset_id: int, reason: str) -> None:
    """The one end of a deferred ingest that did not work: ``failed`` with ``reason`` and the raw file deleted.
    Also called from the task's failure hook (a hard time limit kills the worker child before it can say so)."""
    dataset = Dataset.objects.filter(pk=dataset_id, status=DatasetStatus.PROCESSING).first()
    if dataset is None:
        return
    raw = dataset.raw_file
    Dataset.objects.filter(pk=dataset_id).update(status=DatasetStatus.FAILED, error=reason, raw_file="")
    if raw:
        raw.storage.delete(raw.name)


def label_values_count(frame: pd.DataFrame, distinct: dict[str, ColumnValues] | None = None) -> dict[str, list[list]]:
    """For each column with few distinct values, its values and counts (what the schema form offers as classes),
    from ``distinct`` where the ingest counted them."""
    result = {}
    for name in frame.columns:
        if distinct is not None:
            column = distinct[name]
            by_count = np.argsort(-column.counts, kind="stable")  # as value_counts: most rows first
            counts = [(column.values[i], column.counts[i]) for i in by_count] if len(column.values) <= LABEL_VALUES_MAX else []
        else:
            counts = list(frame[name].value_counts(dropna=True).items())
        if 1 <= len(counts) <= LABEL_VALUES_MAX:
            result[name] = sorted(([value_text(v), int(c)] for v, c in counts), key=class_sort_key)
    return result


def class_sort_key(item: list) -> tuple:
    try:
        return (0, float(item[0]), "")
    except ValueError:
        return (1, 0.0, str(item[0]))


@transaction.atomic
def dataset_from_table(*, dataset: Dataset, table: IngestedTable, sha256: str) -> Dataset:
    parquet = frame_parquet(table)
    dataset.sha256 = sha256
    dataset.n_rows = len(table.frame)
    dataset.n_columns = table.frame.shape[1]
    dataset.columns = frame_profile(table.frame, table.kinds, table.distinct)
    dataset.preview = frame_preview(table.frame)
    dataset.cleaning_notes = table.notes
    dataset.label_values = label_values_count(table.frame, table.distinct)
    dataset.status, dataset.error = DatasetStatus.READY, ""
    dataset.data_file.save("data.parquet", ContentFile(parquet), save=False)
    try:
        dataset.full_clean()
        dataset.save()
    except Exception:
        dataset.data_file.delete(save=False)
        raise
    return dataset


def dataset_schema_suggestion(*, dataset: Dataset) -> dict:
    """What the schema form pre-fills, with why each column left out was left out (``reasons``).

    Pixel columns with a square count are proposed as images, a lone free-text column as text; tables get
    ``schema_guess``: the column that reads most like an outcome is the label, ids, codes, mostly empty and
    constant columns are left unticked.
    """
    media = schema_default_media(dataset.columns, dataset.label_values)
    if media:
        values = [v for v, _ in dataset.label_values.get(media["label"], [])]
        kind = "pixels of an image" if media.get("image_shape") else "the text to learn from"
        reasons = {media["label"]: "This is the column to predict."}
        reasons.update({c["name"]: f"Not one of the {kind}." for c in dataset.columns
                        if c["name"] not in media["features"] and c["name"] != media["label"]})
        return {**media, "class_names": {v: v for v in values}, "row_name": "", "reasons": reasons}
    guess = schema_guess(dataset.columns, dataset.label_values, dataset.n_rows or 0)
    values = [v for v, _ in dataset.label_values.get(guess["label"], [])]
    return {**guess, "class_names": {v: v for v in values}}


def dataset_schema_default(*, dataset: Dataset) -> dict:
    """``dataset_schema_suggestion`` without the reasons: a schema ``dataset_schema_set`` takes as it is."""
    return {k: v for k, v in dataset_schema_suggestion(dataset=dataset).items() if k != "reasons"}


def dataset_schema_set(*, dataset: Dataset, label: str, features: list[str], categorical: list[str] | None = None,
                       class_names: dict[str, str] | None = None, row_name: str | None = "",
                       text: list[str] | None = None, image_shape: list[int] | None = None) -> Dataset:
    """Validate and store what the user named; every error points at the field it concerns.

    ``text`` names the free-text column of a text dataset (its only feature); ``image_shape`` folds the
    feature columns into images. Without either the schema is tabular, exactly as before.
    """
    if not dataset.is_ready:
        message = (f"“{dataset.name}” could not be read: {dataset.error}" if dataset.status == DatasetStatus.FAILED
                   else f"“{dataset.name}” is still being read; name its columns once that is done.")
        raise ApplicationError(message, {"field": "dataset"}, status=409)
    columns = {c["name"]: c for c in dataset.columns}
    if label not in columns:
        raise ApplicationError(f"There is no column called “{label}”. Pick the label from: {', '.join(columns)}.", {"field": "label"})
    if columns[label]["n_unique"] == 0:
        raise ApplicationError(f"“{label}” has no values at all, so there is nothing to predict. Pick another column.",
                               {"field": "label"})
    if label not in dataset.label_values:
        raise ApplicationError(
            f"“{label}” has {columns[label]['n_unique']:,} different values — too many to be classes. "
            f"Pick a column with at most {LABEL_VALUES_MAX} values to predict.", {"field": "label"})
    values = [v for v, _ in dataset.label_values[label]]
    if len(values) > 20 and len(values) > dataset.n_rows / 2:
        raise ApplicationError(
            f"“{label}” has a different value in almost every row ({len(values)} values in {dataset.n_rows} rows), like a "
            "name or an id. Pick the column with the answer to predict; an id can name rows instead.", {"field": "label"})
    if len(values) < 2:
        raise ApplicationError(f"“{label}” has only one value ({values[0] if values else 'none'}), so there is nothing to predict. Pick another column.", {"field": "label"})
    features = list(dict.fromkeys(features or []))
    unknown = [f for f in features if f not in columns]
    if unknown:
        raise ApplicationError(f"Unknown feature column{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}.", {"field": "features"})
    row_name = row_name or ""
    if row_name and row_name not in columns:
        raise ApplicationError(f"There is no column called “{row_name}” for row names.", {"field": "row_name"})
    features = [f for f in features if f not in (label, row_name)]
    if text and image_shape:
        raise ApplicationError("A dataset is either text or images, not both: clear the text column or the image shape.",
                               {"field": "text"})
    media: dict = {}
    if text:
        media["text"] = [text_column_clean(columns=columns, text=text, label=label)]
        features, categorical = list(media["text"]), []  # the classifiers read the text column only
    if not features:
        raise ApplicationError("Tick at least one feature column (a column other than the one you predict).", {"field": "features"})
    if image_shape:
        media["image_shape"] = image_shape_clean(columns=columns, image_shape=image_shape, features=features)
        categorical = []
    texts = [f for f in features if columns[f]["dtype"] == "text"]
    if texts and not media:
        raise ApplicationError(f"{', '.join(texts)} hold{'s' if len(texts) == 1 else ''} free text; untick {'it' if len(texts) == 1 else 'them'} "
                               "or choose it as the text column (a table's features cannot be free text).", {"field": "features"})
    categorical = [f for f in dict.fromkeys(categorical or []) if f in features]
    forced = [f for f in features if columns[f]["dtype"] == "categorical" and f not in categorical]
    categorical += forced  # words cannot be numbers
    class_names = {str(k): str(v).strip() for k, v in (class_names or {}).items()}
    stray = [k for k in class_names if k not in values]
    if stray:
        raise ApplicationError(f"“{label}” has no value {', '.join(stray)}; its values are {', '.join(values)}.", {"field": "class_names"})
    names = {v: (class_names.get(v) or v)[:100] for v in values}
    if len(set(names.values())) != len(names):
        raise ApplicationError("Two classes have the same display name; give each class its own name.", {"field": "class_names"})
    dataset.schema = {
        "label": label,
        "features": features,
        "categorical": [f for f in features if f in categorical],
        "class_names": names,
        "row_name": row_name,
        **media,
    }
    dataset.full_clean()
    dataset.save(update_fields=["schema"])
    return dataset


@transaction.atomic
def dataset_delete(*, dataset: Dataset) -> None:
    """Delete the dataset and its files once committed; the rows that refer to it cascade, and the apps that
    own them remove their files on ``pre_delete`` (the datasets app knows nothing of them)."""
    storage = dataset.data_file.storage
    paths = [f.name for f in (dataset.data_file, dataset.raw_file) if f]
    dataset.delete()
    transaction.on_commit(lambda: [storage.delete(path) for path in paths])
