"""How a job finds and builds each of its classifiers: the registry's keys, and ``model:<id>`` for an uploaded model.

The job pipeline asks this module for a key's spec, never ``CLASSIFIERS`` directly, so an uploaded model runs
through the same phases as a trained one: its spec (label, queue, family) comes from the upload, and where the
pipeline would train, ``uploaded_model_job_load`` loads the file and checks it against the job's data again (the
dataset's columns may have changed since).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from explanations.job_data import JobData
from explanations.ml.catalogue import classifier_label
from explanations.ml.classifiers import ClassifierSpec, classifier_spec_get
from explanations.ml.modalities import classifier_for, schema_modality
from explanations.ml.uploaded import ModelFileRefused, outputs_match

from .models import UploadedModel
from .selectors import uploaded_model_for_key, uploaded_model_id


def _not_trained(params: dict, space: Any, seed: int) -> Any:
    raise ValueError("An uploaded model is loaded, not built.")


@dataclass(frozen=True)
class UploadedModelSpec(ClassifierSpec):
    """A user's model shown as a classifier: one kind of data, never built (it is loaded); ``gradients``: whether
    the explainers that need a network's gradients can run on it (an ONNX graph is only called)."""

    gradients: bool = True

    @property
    def modalities(self) -> tuple[str, ...]:
        return (self.modality,)


def uploaded_model_label(name: str) -> str:
    return f"{name} (uploaded)"


def uploaded_model_spec(model: UploadedModel) -> ClassifierSpec:
    modality = schema_modality(model.dataset.schema)
    return UploadedModelSpec(
        key=model.key, modality=modality, label=uploaded_model_label(model.name),
        description=f"Your {model.get_format_display()} model “{model.name}”, uploaded for this dataset.",
        params=(), queue="gpu" if model.format == "safetensors" else "celery",
        family="tree" if model.family == "tree" else "other", builder="uploaded_models.job_classifiers:_not_trained",
        gradients=model.format == "safetensors")


def classifier_spec_of(key: str, modality: str | None = None, *, dataset=None) -> ClassifierSpec:
    """The spec behind a job's classifier key (its variant for ``modality`` when given); ``KeyError`` with the
    sentence to show when there is none.

    With ``dataset`` (validating a new job) an uploaded model must belong to it, which makes it the owner's.
    """
    if uploaded_model_id(key) is None:
        return classifier_for(key, modality) if modality else classifier_spec_get(key)
    model = uploaded_model_for_key(key, dataset_id=dataset.pk if dataset is not None else None)
    if model is None:
        raise KeyError(f"There is no uploaded model “{key}” for this dataset; see the models on the dataset's page.")
    spec = uploaded_model_spec(model)
    if modality and modality not in spec.modalities:
        raise KeyError(f"{spec.label} explains {spec.modalities[0]} data, not {modality} data.")
    return spec


def uploaded_model_job_load(*, key: str, data: JobData, dataset) -> Any:
    """The uploaded model a job names, loaded and checked against the job's data (its columns may have changed)."""
    from explainer_site.exceptions import ApplicationError
    from uploaded_models.services import uploaded_model_load

    model = uploaded_model_for_key(key, dataset_id=dataset.pk)
    if model is None:
        raise ApplicationError(f"The uploaded model “{key}” was deleted before this job could use it.")
    mapping = model.input_mapping or {}
    if mapping.get("columns") and mapping["columns"] != list(data.space.feature_names):
        raise ApplicationError(f"The dataset's features changed since “{model.name}” was uploaded; upload the model "
                               "again so it is checked against the new columns.")
    with model.file.open("rb") as handle:
        content = handle.read()
    schema = dataset.schema
    try:
        loaded = uploaded_model_load(content=content, format=model.format, architecture=model.architecture,
                                     data=data, schema=schema, numeric=list(mapping.get("numeric") or []))
        outputs_match(loaded, data.X[np.flatnonzero(data.y >= 0)], data.class_values)
    except ModelFileRefused as error:
        raise ApplicationError(f"“{model.name}” no longer fits this dataset: {error}") from None
    return loaded


def uploaded_classifier_choices(*, dataset) -> list[ClassifierSpec]:
    """The dataset's ready uploaded models as classifier cards for the new-job form (its owner's, as the dataset is)."""
    if dataset is None:
        return []
    return [uploaded_model_spec(m) for m in UploadedModel.objects.filter(dataset=dataset).order_by("created_at", "id")]


def classifier_spec_or_none(key: str) -> ClassifierSpec | None:
    """For pages that show a job's classifiers: the spec, or None for a key no longer known (the key is shown)."""
    try:
        return classifier_spec_of(key)
    except KeyError:
        return None


def classifier_labels_of(keys: Iterable[str]) -> dict[str, str]:
    """What pages and exports call each of a job's classifier keys: the registry's label, an uploaded model's name
    (one query for all of them), or the key itself for a classifier since removed or a model since deleted."""
    keys = list(dict.fromkeys(keys))
    ids = {key: uploaded_model_id(key) for key in keys}
    names = dict(UploadedModel.objects.filter(pk__in=[i for i in ids.values() if i and i > 0]).values_list("pk", "name"))
    return {key: classifier_label(key) if ids[key] is None else uploaded_model_label(names[ids[key]]) if ids[key] in names
            else key for key in keys}


def classifier_label_of(key: str) -> str:
    """One key's label, as ``classifier_labels_of`` gives it (no query for the registry's keys)."""
    return classifier_labels_of([key])[key]
