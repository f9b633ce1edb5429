"""Writes of uploaded models: check a file against its dataset (load, take the columns, predict every class) and
keep it only then; delete. Nothing here unpickles or executes an upload (``explanations.ml.uploaded``)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from datasets.models import Dataset
from datasets.selectors import dataset_frame_load
from datasets.services import upload_size_check
from explainer_site.exceptions import ApplicationError
from explanations.job_data import JobData, image_data_from_frame, image_shape_of, job_data_from_frame
from explanations.ml.modalities import schema_modality
from explanations.ml.uploaded import (
    ARCHITECTURES,
    FORMATS,
    ModelFileRefused,
    image_model_load,
    outputs_match,
    table_model_load,
)

from .models import UploadedModel, UploadedModelStatus

logger = logging.getLogger(__name__)

ACCURACY_ROWS_MAX = 20_000  # the accuracy shown is measured on at most this many labelled rows (a fixed sample)


def uploaded_model_load(*, content: bytes, format: str, architecture: str, data: JobData, schema: dict,
                        numeric: list[bool]):
    """The model in ``content``, loaded for this dataset's data; ``ModelFileRefused`` says why not."""
    modality = schema_modality(schema)
    if modality == "tabular":
        return table_model_load(content, format=format, space=data.space, numeric=numeric,
                                class_values=data.class_values, architecture=architecture)
    if modality == "image":
        return image_model_load(content, format=format, architecture=architecture, n_classes=len(data.class_values),
                                image_shape=image_shape_of(schema), check_images=data.X[np.flatnonzero(data.y >= 0)])
    raise ModelFileRefused("Uploaded models explain tables and images; for texts, train a classifier in the app.")


def dataset_data_for_models(*, dataset: Dataset) -> tuple[JobData, list[bool]]:
    """The dataset as an uploaded model sees it (the same encoding a job uses), and which features are numbers."""
    frame = dataset_frame_load(dataset=dataset)
    schema = dataset.schema
    build = image_data_from_frame if schema_modality(schema) == "image" else job_data_from_frame
    data = build(frame, schema=schema, test_size=0.25, seed=0)
    numeric = [bool(pd.api.types.is_numeric_dtype(frame[f])) for f in schema["features"]]
    return data, numeric


def _refuse(message: str, field: str = "file") -> ApplicationError:
    return ApplicationError(message, {"field": field})


def uploaded_model_create(*, owner, dataset: Dataset, file, name: str = "", format: str, architecture: str = "",
                          n_classes: int | None = None) -> UploadedModel:
    """Check the file against ``dataset`` and keep it; every refusal is a 400 sentence and saves nothing."""
    if not dataset.schema:
        raise _refuse("Name the dataset's columns first (which one to predict, which are features); the model is "
                      "checked against them.", "dataset")
    format = (format or "").strip().lower()
    if format not in FORMATS:
        raise _refuse(f"Say which format the file is: {', '.join(FORMATS)}.", "format")
    architecture = (architecture or "").strip().lower()
    if format == "safetensors":
        if architecture not in ARCHITECTURES:
            raise _refuse(f"Safetensors holds only weights: name the architecture they are for "
                          f"({', '.join(ARCHITECTURES)}).", "architecture")
        if n_classes is None:
            raise _refuse("Say how many classes the network predicts (its last layer's size).", "n_classes")
        if n_classes != len(dataset.schema.get("class_names") or {}):
            raise _refuse(f"The network predicts {n_classes} classes but “{dataset.schema['label']}” has "
                          f"{len(dataset.schema['class_names'])}; upload weights trained on this label.", "n_classes")
    limit = settings.EXPLAINER_MAX_UPLOADED_MODELS_PER_USER
    if UploadedModel.objects.filter(owner=owner).count() >= limit:
        raise _refuse(f"You have {limit} uploaded models, the most one account may keep; delete one first.")
    upload_size_check(file.size or 0)
    content = b"".join(file.chunks())
    upload_size_check(len(content))
    filename = Path(getattr(file, "name", "") or f"model.{format}").name
    try:
        data, numeric = dataset_data_for_models(dataset=dataset)
        model = uploaded_model_load(content=content, format=format, architecture=architecture, data=data,
                                    schema=dataset.schema, numeric=numeric)
        labelled = np.flatnonzero(data.y >= 0)
        info = outputs_match(model, data.X[labelled], data.class_values)
        scored = labelled
        if len(scored) > ACCURACY_ROWS_MAX:
            scored = np.sort(np.random.default_rng(0).choice(labelled, ACCURACY_ROWS_MAX, replace=False))
        proba = np.asarray(model.predict_proba(data.X[scored]), dtype=np.float64)
        if not np.isfinite(proba).all():
            raise ModelFileRefused("The model returned NaN or infinite probabilities on some of the dataset's rows.")
        accuracy = float(np.mean(proba.argmax(axis=1) == data.y[scored]))
    except ModelFileRefused as error:
        raise _refuse(str(error)) from None
    except ApplicationError:
        raise
    except Exception:  # whatever a hostile or broken file does inside a library, the answer is a sentence
        logger.exception("uploaded model %r for dataset %s could not be checked", filename, dataset.pk)
        raise _refuse(f"The app could not load this file as {FORMATS[format]}, or the model failed on the dataset's "
                      "rows. Check that it was saved completely and trained on this dataset's columns.") from None
    family = ("tree" if getattr(model, "tree_ensemble", False) else "network" if format == "safetensors" else "other")
    with transaction.atomic():
        uploaded = UploadedModel(
            owner=owner, dataset=dataset, name=(name or "").strip()[:200] or Path(filename).stem[:200] or "model",
            format=format, architecture=architecture if format == "safetensors" else "",
            original_filename=filename[:255], size_bytes=len(content), sha256=hashlib.sha256(content).hexdigest(),
            status=UploadedModelStatus.READY, accuracy=accuracy, n_rows_scored=len(scored),
            class_labels=info["class_labels"],
            input_mapping=_input_mapping(info=info, schema=dataset.schema, numeric=numeric),
            family=family)
        uploaded.file.save("upload", ContentFile(content), save=False)
        uploaded.full_clean()
        uploaded.save()
    return uploaded


def _input_mapping(*, info: dict, schema: dict, numeric: list[bool]) -> dict:
    if schema_modality(schema) != "tabular":
        return {"by": info["inputs"], "columns": [], "numeric": []}
    return {"by": info["inputs"], "columns": list(schema["features"]), "numeric": numeric}


def uploaded_model_delete(*, model: UploadedModel) -> None:
    """Its file goes once the deletion commits (``uploaded_model_file_delete``)."""
    model.delete()


def uploaded_model_file_delete(sender: type[UploadedModel], instance: UploadedModel, using: str, **kwargs) -> None:
    """``post_delete`` (the model itself, its dataset or its owner): remove the file when the deletion commits."""
    name = instance.file.name

    def remove() -> None:
        try:
            if name:
                default_storage.delete(name)
        except OSError:
            logger.warning("could not delete %s", name)

    transaction.on_commit(remove, using=using)
