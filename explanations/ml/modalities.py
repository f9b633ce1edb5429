"""What kind of data a dataset holds (table, text, image) and which plug-ins serve each kind.

A schema is "text" when it names a ``text`` column, "image" when it has an ``image_shape``, else "tabular"
(tabular schemas are exactly what they always were). Jobs on text and images run through
``explanations.text_image_run``. The choices come from ``explanations.ml.catalogue`` (no numeric library):
forms, the API and job validation ask them without loading models or data. ``explainer_for`` is the one
exception: it gives the class where a job runs, importing its module then.
"""

from __future__ import annotations

from explanations.ml.catalogue import (
    CLASSIFIER_VARIANTS,
    EXPLAINER_VARIANTS,
    MODALITIES,
    ClassifierSpec,
    ExplainerEntry,
    classifier_for,
)
from explanations.ml.explainers import explainer_for

__all__ = ["MODALITIES", "classifier_choices", "classifier_for", "explainer_choices", "explainer_for",
           "schema_modality"]


def schema_modality(schema: dict | None) -> str:
    schema = schema or {}
    if schema.get("text"):
        return "text"
    if schema.get("image_shape"):
        return "image"
    return "tabular"


def classifier_choices(modality: str) -> list[ClassifierSpec]:
    return list(CLASSIFIER_VARIANTS.get(modality, {}).values())


def explainer_choices(modality: str) -> list[ExplainerEntry]:
    return list(EXPLAINER_VARIANTS.get(modality, {}).values())
