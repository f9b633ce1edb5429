"""What an entry of the catalogue is, and the registries built from the entries (no numpy here).

``ExplainerEntry`` and ``ClassifierSpec`` say everything the web side shows and checks about one explainer or
classifier on one kind of data; the entries themselves are in ``tabular``, ``text`` and ``image``, collected by the
package (``explanations.ml.catalogue``), which registers them here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from explanations.ml.errors import UnknownExplainerError
from explanations.ml.params import Param

MODALITIES = ("tabular", "text", "image")

# Model evaluations per row for an explainer whose parameters name no sample count (about one LIME).
SAMPLES_DEFAULT = 1000
SAMPLE_PARAMS = ("num_samples", "nsamples", "steps")
# A rule search draws ``batch_size`` samples for each of ``beam_size`` candidate rules over a few rounds.
RULE_SEARCH_ROUNDS = 5


def sample_count(params: dict[str, Any]) -> int:
    """Model evaluations per row: the ``num_samples``/``nsamples``/``steps`` parameter, else ``SAMPLES_DEFAULT``."""
    for name in SAMPLE_PARAMS:
        if name in params:
            return max(int(params[name]), 1)
    return SAMPLES_DEFAULT


def rule_search_samples(params: dict[str, Any]) -> int:
    """Model evaluations per row of an anchors-style beam search, for the job quotas."""
    return max(int(params.get("batch_size", 100)) * int(params.get("beam_size", 1)) * RULE_SEARCH_ROUNDS, 1)


def implementation_load(path: str) -> Any:
    """``"package.module:Name"`` imported now."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class ExplainerEntry:
    """One explainer on one kind of data: what a form shows and checks, and where the class is."""

    key: str
    modality: str  # "tabular" | "text" | "image"
    label: str
    description: str
    params: tuple[Param, ...]
    implementation: str  # "module:Class", a ``BaseExplainer`` subclass
    # "attributions" (signed values per feature, word or region towards a class) or "rule" (precision, coverage).
    result_kind: str = "attributions"
    # Classifier keys whose fitted models it needs (gradients need the torch network); () for any model.
    model_kinds: tuple[str, ...] = ()
    # Model evaluations one row costs with these cleaned parameters (the job quotas add them up).
    samples_per_row: Callable[[dict[str, Any]], int] = sample_count
    # Ticked on the job form to start with (False: a question of its own, asked on purpose).
    offered_by_default: bool = True
    # The name of the extra table the row page shows and the extra CSV in the ZIP ("": none); the class draws them.
    detail_name: str = ""
    # The model-wide view its rows feed on a table's results ("": none), one of ``GLOBAL_VIEWS``. The rows are
    # averaged with the class's ``feature_importance`` into ``metrics["importance"][key]``, which what-if and compare read.
    global_view: str = ""
    # Parameters added after jobs were made, with the value those jobs ran with: a rerun of an older job keeps it.
    params_before: tuple[tuple[str, Any], ...] = ()

    @property
    def classifiers(self) -> tuple[str, ...]:
        """The classifier keys it can explain (``()``: any); the class reads it as ``classifiers``."""
        return self.model_kinds

    @property
    def modalities(self) -> tuple[str, ...]:
        """Every kind of data this key explains (the API's ``modalities``)."""
        return tuple(explainer_modalities(self.key))

    def load(self) -> type:
        return implementation_load(self.implementation)


@dataclass(frozen=True)
class ClassifierSpec:
    """One classifier on one kind of data: everything the app needs to offer and configure it, and its builder."""

    key: str
    modality: str  # what it learns from: "tabular" (the encoded table), "text" (the raw messages), "image" (pixels)
    label: str
    description: str
    params: tuple[Param, ...]
    queue: str  # "gpu" for torch models, else "celery"
    family: str  # "tree" | "linear" | "other"
    builder: str  # "module:function" taking (cleaned params, FeatureSpace, seed), returning an unfitted model

    @property
    def modalities(self) -> tuple[str, ...]:
        """Every kind of data this key learns from (the API's ``modalities``)."""
        return tuple(classifier_modalities(self.key))

    def load(self) -> Callable[..., Any]:
        return implementation_load(self.builder)


# What a ``global_view`` draws, the most telling first (what-if curves take their features from the first there is):
# "summary": every class's attributions (``class_attributions``) stacked towards the job's reference class as a
# beeswarm, and their mean |value| over every class as a bar chart; "importance": the mean |weight| per feature over
# the explained rows as a bar chart.
GLOBAL_VIEWS = ("summary", "importance")

# Where the explainer classes are, for the entries' ``"module:Class"``.
EXPLAINERS_PACKAGE = "explanations.ml.explainers"


# ---------------------------------------------------------------- the registries built from the entries

# Every explainer key once, with its first entry (its label and description speak for the key).
EXPLAINERS: dict[str, ExplainerEntry] = {}
# The entry behind each key for each kind of data.
EXPLAINER_VARIANTS: dict[str, dict[str, ExplainerEntry]] = {modality: {} for modality in MODALITIES}
CLASSIFIERS: dict[str, ClassifierSpec] = {}
CLASSIFIER_VARIANTS: dict[str, dict[str, ClassifierSpec]] = {modality: {} for modality in MODALITIES}


def explainer_register(entry: ExplainerEntry) -> ExplainerEntry:
    """Offer ``entry`` (what a line in the catalogue's entries does; tests register plug-ins of their own)."""
    if entry.global_view and entry.global_view not in GLOBAL_VIEWS:
        raise ValueError(f"{entry.key}: global_view must be one of {', '.join(GLOBAL_VIEWS)} (got {entry.global_view!r}).")
    EXPLAINERS.setdefault(entry.key, entry)
    EXPLAINER_VARIANTS.setdefault(entry.modality, {})[entry.key] = entry
    return entry


def explainer_unregister(entry: ExplainerEntry) -> None:
    """Undo ``explainer_register``."""
    variants = EXPLAINER_VARIANTS.get(entry.modality, {})
    if variants.get(entry.key) is entry:
        del variants[entry.key]
    if EXPLAINERS.get(entry.key) is entry:
        del EXPLAINERS[entry.key]
        others = [v[entry.key] for v in EXPLAINER_VARIANTS.values() if entry.key in v]
        if others:
            EXPLAINERS[entry.key] = others[0]


def classifier_register(spec: ClassifierSpec) -> ClassifierSpec:
    CLASSIFIERS.setdefault(spec.key, spec)
    CLASSIFIER_VARIANTS.setdefault(spec.modality, {})[spec.key] = spec
    return spec


def explainer_modalities(key: str) -> list[str]:
    return [modality for modality, variants in EXPLAINER_VARIANTS.items() if key in variants]


def explainer_variant(key: str, modality: str) -> ExplainerEntry | None:
    """The entry of ``key`` on this kind of data, ``None`` when there is none (a row saved by a removed plug-in)."""
    return EXPLAINER_VARIANTS.get(modality, {}).get(key)


def explainer_entry(key: str, modality: str) -> ExplainerEntry:
    """The entry of ``key`` on this kind of data; an ``UnknownExplainerError`` names the keys that fit."""
    variants = EXPLAINER_VARIANTS.get(modality, {})
    if key not in EXPLAINERS:
        raise UnknownExplainerError(f"Unknown explainer “{key}”; choose one of {', '.join(variants)}.")
    if key not in variants:
        raise UnknownExplainerError(f"{EXPLAINERS[key].label} cannot explain {modality} data; choose one of "
                                    f"{', '.join(variants)}.")
    return variants[key]


def explainer_entry_get(key: str) -> ExplainerEntry:
    try:
        return EXPLAINERS[key]
    except KeyError:
        raise UnknownExplainerError(f"Unknown explainer {key!r}; choose one of {', '.join(EXPLAINERS)}.") from None


def global_view_entries(modality: str) -> list[ExplainerEntry]:
    """The entries on this kind of data whose rows feed a model-wide view, in ``GLOBAL_VIEWS`` order."""
    entries = [entry for entry in EXPLAINER_VARIANTS.get(modality, {}).values() if entry.global_view]
    return sorted(entries, key=lambda entry: GLOBAL_VIEWS.index(entry.global_view))


def explainer_entries_of(implementation: str) -> list[ExplainerEntry]:
    """The entries that name this ``"module:Class"`` (one per kind of data the class explains)."""
    return [entry for variants in EXPLAINER_VARIANTS.values() for entry in variants.values()
            if entry.implementation == implementation]


def explainer_label(key: str) -> str:
    """The key's label, or the key itself for a row saved by an explainer since removed."""
    return EXPLAINERS[key].label if key in EXPLAINERS else key


def classifier_modalities(key: str) -> list[str]:
    return [modality for modality, variants in CLASSIFIER_VARIANTS.items() if key in variants]


def classifier_for(key: str, modality: str) -> ClassifierSpec:
    """The spec (label, params, builder) of ``key`` on this kind of data; ``KeyError`` says which keys fit."""
    variants = CLASSIFIER_VARIANTS.get(modality, {})
    if key in variants:
        return variants[key]
    keys = ", ".join(variants)
    if key not in CLASSIFIERS:
        raise KeyError(f"Unknown classifier “{key}”; choose from {keys}.")
    raise KeyError(f"{CLASSIFIERS[key].label} cannot learn from {modality} data; choose from {keys}.")


def classifier_spec_get(key: str) -> ClassifierSpec:
    try:
        return CLASSIFIERS[key]
    except KeyError:
        raise KeyError(f"Unknown classifier {key!r}; choose one of {', '.join(CLASSIFIERS)}.") from None


def classifier_label(key: str) -> str:
    """The key's label, or the key itself for a run of a classifier since removed."""
    return CLASSIFIERS[key].label if key in CLASSIFIERS else key
