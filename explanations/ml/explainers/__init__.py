"""The explainer classes where jobs run, found through their entries in ``explanations.ml.catalogue``.

Importing this package imports no explainer module: ``explainer_for`` loads the class of an entry the first
time a job asks for it. The web side reads the catalogue itself (labels, parameters, kinds of data). Adding an
explainer is a module with a ``BaseExplainer`` subclass + one ``ExplainerEntry`` line in the catalogue (the
README's "How to add an explainer").
"""

from __future__ import annotations

from explanations.ml.catalogue import (
    EXPLAINER_VARIANTS,
    EXPLAINERS,
    MODALITIES,
    explainer_entry,
    explainer_modalities,
    explainer_register,
    explainer_unregister,
)
from explanations.ml.catalogue import explainer_variant as explainer_entry_variant
from explanations.ml.errors import ExplainerError, UnknownExplainerError
from explanations.ml.explainers.base import BaseExplainer

__all__ = ["EXPLAINERS", "EXPLAINER_VARIANTS", "MODALITIES", "BaseExplainer", "ExplainerError", "UnknownExplainerError",
           "explainer_explains", "explainer_for", "explainer_modalities", "explainer_register", "explainer_unregister", "explainer_variant"]


def explainer_for(key: str, modality: str) -> type[BaseExplainer]:
    """The class that explains ``key`` on this kind of data; an ``UnknownExplainerError`` names the keys that do."""
    return explainer_entry(key, modality).load()


def explainer_explains(explainer, classifier_key: str) -> bool:
    """Whether ``explainer`` (its class or its catalogue entry) can explain the classifier ``classifier_key``
    (gradient methods need the network itself)."""
    return not explainer.classifiers or classifier_key in explainer.classifiers


def explainer_variant(key: str, modality: str) -> type[BaseExplainer] | None:
    """The class that explains ``key`` on this kind of data, ``None`` when none does (e.g. a row saved by a
    plug-in since removed)."""
    entry = explainer_entry_variant(key, modality)
    return None if entry is None else entry.load()
