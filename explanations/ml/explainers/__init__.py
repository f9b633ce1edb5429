"""The explainers a user can pick: adding one is a module with a ``BaseExplainer`` subclass + a line in
``EXPLAINER_CLASSES`` (the README's "How to add an explainer"). Each class says which kinds of data it explains.
"""

from __future__ import annotations

from explanations.ml.explainers.anchors import AnchorExplainer
from explanations.ml.explainers.base import BaseExplainer, ExplainerError
from explanations.ml.explainers.cam import GradCamExplainer, GuidedGradCamExplainer
from explanations.ml.explainers.gradients import (
    DeepLiftExplainer,
    DeepLiftShapExplainer,
    InputXGradientExplainer,
    SaliencyExplainer,
    SmoothGradExplainer,
)
from explanations.ml.explainers.image import (
    AnchorImageExplainer,
    DeepShapExplainer,
    GradientShapExplainer,
    IntegratedGradientsExplainer,
    LimeImageExplainer,
)
from explanations.ml.explainers.lime import LimeExplainer
from explanations.ml.explainers.perturbation import OcclusionExplainer, RiseExplainer
from explanations.ml.explainers.shap import ShapExplainer
from explanations.ml.explainers.text import AnchorTextExplainer, LimeTextExplainer, ShapTextExplainer
from explanations.ml.explainers.torch_tabular import TABULAR_GRADIENT_EXPLAINERS

MODALITIES = ("tabular", "text", "image")

# One line per explainer class. A key such as "lime" has one class per kind of data it explains.
EXPLAINER_CLASSES: tuple[type[BaseExplainer], ...] = (
    LimeExplainer,
    AnchorExplainer,
    ShapExplainer,
    LimeTextExplainer,
    AnchorTextExplainer,
    ShapTextExplainer,
    LimeImageExplainer,
    AnchorImageExplainer,
    DeepShapExplainer,
    GradientShapExplainer,
    IntegratedGradientsExplainer,
    SaliencyExplainer,
    InputXGradientExplainer,
    DeepLiftExplainer,
    DeepLiftShapExplainer,
    SmoothGradExplainer,
    GradCamExplainer,
    GuidedGradCamExplainer,
    OcclusionExplainer,
    RiseExplainer,
    *TABULAR_GRADIENT_EXPLAINERS,
)

# Every key once, with the first class registered under it (its label and description speak for the key).
EXPLAINERS: dict[str, type[BaseExplainer]] = {}
# The class behind each key for each kind of data.
EXPLAINER_VARIANTS: dict[str, dict[str, type[BaseExplainer]]] = {modality: {} for modality in MODALITIES}


def explainer_register(explainer: type[BaseExplainer]) -> type[BaseExplainer]:
    """Make ``explainer`` available for every modality it declares (what a line in ``EXPLAINER_CLASSES`` does)."""
    EXPLAINERS.setdefault(explainer.key, explainer)
    for modality in explainer.modalities:
        EXPLAINER_VARIANTS.setdefault(modality, {})[explainer.key] = explainer
    return explainer


def explainer_unregister(explainer: type[BaseExplainer]) -> None:
    """Undo ``explainer_register`` (tests that register a plug-in of their own)."""
    for variants in EXPLAINER_VARIANTS.values():
        if variants.get(explainer.key) is explainer:
            del variants[explainer.key]
    if EXPLAINERS.get(explainer.key) is explainer:
        del EXPLAINERS[explainer.key]
        for variants in EXPLAINER_VARIANTS.values():
            if explainer.key in variants:
                EXPLAINERS[explainer.key] = variants[explainer.key]
                break


for _explainer in EXPLAINER_CLASSES:
    explainer_register(_explainer)


def explainer_explains(explainer: type[BaseExplainer], classifier_key: str) -> bool:
    """Whether ``explainer`` can explain the classifier ``classifier_key`` (gradient methods need the network)."""
    return not explainer.classifiers or classifier_key in explainer.classifiers


def explainer_modalities(key: str) -> list[str]:
    return [modality for modality, variants in EXPLAINER_VARIANTS.items() if key in variants]


def explainer_variant(key: str, modality: str) -> type[BaseExplainer] | None:
    """The class that explains ``key`` on this kind of data, ``None`` when none does (e.g. a row saved by a
    plug-in since removed)."""
    return EXPLAINER_VARIANTS.get(modality, {}).get(key)


def explainer_for(key: str, modality: str) -> type[BaseExplainer]:
    """The class that explains ``key`` on this kind of data; an ``UnknownExplainerError`` names the keys that do."""
    variants = EXPLAINER_VARIANTS.get(modality, {})
    if key not in EXPLAINERS:
        raise UnknownExplainerError(f"Unknown explainer “{key}”; choose one of {', '.join(variants)}.")
    if key not in variants:
        raise UnknownExplainerError(f"{EXPLAINERS[key].label} cannot explain {modality} data; choose one of "
                                    f"{', '.join(variants)}.")
    return variants[key]


class UnknownExplainerError(ExplainerError, KeyError):
    """No explainer is registered under the requested key."""

    def __str__(self) -> str:  # KeyError would otherwise show the message in quotes
        return str(self.args[0]) if self.args else ""


def explainer_get(key: str) -> type[BaseExplainer]:
    try:
        return EXPLAINERS[key]
    except KeyError:
        raise UnknownExplainerError(f"Unknown explainer {key!r}; choose one of {', '.join(EXPLAINERS)}.") from None
