"""What kind of data a dataset holds (table, text, image) and which plug-ins serve each kind.

A schema is "text" when it names a ``text`` column, "image" when it has an ``image_shape``, else "tabular"
(tabular schemas are exactly what they always were). Jobs on text and images run through
``explanations.text_image_run``; this module only answers questions about keys, so forms, the API and job
validation can ask it without loading torch models or data.
"""

from __future__ import annotations

from explanations.ml.classifiers import CLASSIFIER_VARIANTS, ClassifierSpec, classifier_for
from explanations.ml.explainers import EXPLAINER_VARIANTS, BaseExplainer, explainer_for

MODALITIES = ("tabular", "text", "image")

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


def explainer_choices(modality: str) -> list[type[BaseExplainer]]:
    return list(EXPLAINER_VARIANTS.get(modality, {}).values())

