"""What the app offers: one entry per explainer and classifier variant, and nothing numeric.

The web side (forms, views, the API, job validation, the quotas) reads everything it shows or checks from
here: key, kind of data, label, one-line description, parameters with their bounds and help. An entry names
its implementation as ``"module:Class"`` (or ``"module:function"`` for a classifier's builder), imported by
``entry.load()`` where a job runs, so the web process never imports numpy's heavy neighbours (scikit-learn,
shap, lime, anchor-exp, torch, numba, matplotlib) nor an explainer's module. The implementation classes read
their key, label, description, parameters and modalities back from their entries
(``explanations.ml.explainers.base.BaseExplainer``): the entries are the one place they are written.

- ``registry``: what an entry is (``ExplainerEntry``, ``ClassifierSpec``) and the registries with their look-ups;
- ``tabular``, ``text``, ``image``: the entries for each kind of data.

Adding an explainer is its module and one ``ExplainerEntry`` line in the tuple of its kind of data (the README's
"How to add an explainer"); a classifier is a builder function and one ``ClassifierSpec`` beside it. Everything
is imported from here (``from explanations.ml.catalogue import explainer_entry``).
"""

from __future__ import annotations

from explanations.ml.catalogue.image import (
    IMAGE_CLASSIFIERS,
    IMAGE_EXPLAINERS,
    IMAGE_EXPLAINERS_CALLING_ONLY,
    SEGMENTATION_PARAMS,
    SEGMENTATIONS,
    TARGET_PARAM,
)
from explanations.ml.catalogue.registry import (
    CLASSIFIER_VARIANTS,
    CLASSIFIERS,
    EXPLAINER_VARIANTS,
    EXPLAINERS,
    EXPLAINERS_PACKAGE,
    GLOBAL_VIEWS,
    MODALITIES,
    RULE_SEARCH_ROUNDS,
    SAMPLE_PARAMS,
    SAMPLES_DEFAULT,
    ClassifierSpec,
    ExplainerEntry,
    classifier_for,
    classifier_label,
    classifier_modalities,
    classifier_register,
    classifier_spec_get,
    explainer_entries_of,
    explainer_entry,
    explainer_entry_get,
    explainer_label,
    explainer_modalities,
    explainer_register,
    explainer_unregister,
    explainer_variant,
    global_view_entries,
    implementation_load,
    rule_search_samples,
    sample_count,
)
from explanations.ml.catalogue.tabular import (
    NETWORK_EXPLAINERS,
    TABULAR_CLASSIFIERS,
    TABULAR_EXPLAINERS,
    boosting_params,
)
from explanations.ml.catalogue.text import TEXT_CLASSIFIERS, TEXT_EXPLAINERS

__all__ = [
    "IMAGE_EXPLAINERS_CALLING_ONLY",
    "CLASSIFIERS", "CLASSIFIER_ENTRIES", "CLASSIFIER_VARIANTS", "EXPLAINERS", "EXPLAINERS_PACKAGE", "EXPLAINER_ENTRIES",
    "EXPLAINER_VARIANTS", "GLOBAL_VIEWS", "IMAGE_CLASSIFIERS", "IMAGE_EXPLAINERS", "MODALITIES", "NETWORK_EXPLAINERS",
    "RULE_SEARCH_ROUNDS", "SAMPLES_DEFAULT", "SAMPLE_PARAMS", "SEGMENTATIONS", "SEGMENTATION_PARAMS", "TABULAR_CLASSIFIERS",
    "TABULAR_EXPLAINERS", "TARGET_PARAM", "TEXT_CLASSIFIERS", "TEXT_EXPLAINERS", "ClassifierSpec", "ExplainerEntry",
    "boosting_params", "classifier_for", "classifier_label", "classifier_modalities", "classifier_register",
    "classifier_spec_get", "explainer_entries_of", "explainer_entry", "explainer_entry_get", "explainer_label",
    "explainer_modalities", "explainer_register", "explainer_unregister", "explainer_variant", "global_view_entries",
    "implementation_load", "rule_search_samples", "sample_count",
]

# In this order (the API lists them so, and a key's first entry speaks for it): tables, texts, images, then the
# MLP's gradient methods, whose keys the images' entries speak for.
EXPLAINER_ENTRIES: tuple[ExplainerEntry, ...] = (*TABULAR_EXPLAINERS, *TEXT_EXPLAINERS, *IMAGE_EXPLAINERS,
                                                 *NETWORK_EXPLAINERS)
CLASSIFIER_ENTRIES: tuple[ClassifierSpec, ...] = (*TABULAR_CLASSIFIERS, *IMAGE_CLASSIFIERS, *TEXT_CLASSIFIERS)

for _entry in EXPLAINER_ENTRIES:
    explainer_register(_entry)
for _spec in CLASSIFIER_ENTRIES:
    classifier_register(_spec)
