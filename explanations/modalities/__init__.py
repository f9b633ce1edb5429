"""What kind of data a dataset holds (table, text, image) and which plug-ins serve each kind.

A schema is "text" when it names a ``text`` column, "image" when it has an ``image_shape``, else "tabular"
(tabular schemas are exactly what they always were). Jobs on text and images run through
``explanations.modalities.run``; this module only answers questions about keys, so forms, the API and job
validation can ask it without loading torch models or data.
"""

from __future__ import annotations

from explanations.classifiers import CLASSIFIERS, ClassifierSpec
from explanations.explainers import EXPLAINER_VARIANTS, TabularExplainer, explainer_for
from explanations.modalities.text import TEXT_CLASSIFIERS

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
    if modality == "text":
        return list(TEXT_CLASSIFIERS.values())
    return [spec for spec in CLASSIFIERS.values() if modality in spec.modalities]


def classifier_for(key: str, modality: str) -> ClassifierSpec:
    """The spec (label, params, builder) of ``key`` on this kind of data; ``KeyError`` says which keys fit."""
    for spec in classifier_choices(modality):
        if spec.key == key:
            return spec
    keys = ", ".join(s.key for s in classifier_choices(modality))
    if key not in CLASSIFIERS:
        raise KeyError(f"Unknown classifier “{key}”; choose from {keys}.")
    raise KeyError(f"{CLASSIFIERS[key].label} cannot learn from {modality} data; choose from {keys}.")


def explainer_choices(modality: str) -> list[type[TabularExplainer]]:
    return list(EXPLAINER_VARIANTS.get(modality, {}).values())

