"""The explainers a user can pick. Adding one = a module with a ``TabularExplainer`` subclass + a line here."""

from __future__ import annotations

from explanations.explainers.anchors import AnchorExplainer
from explanations.explainers.base import ExplainerError, TabularExplainer
from explanations.explainers.image import IMAGE_EXPLAINERS, GradientShapExplainer, IntegratedGradientsExplainer
from explanations.explainers.lime import LimeExplainer
from explanations.explainers.shap import ShapExplainer
from explanations.explainers.text import TEXT_EXPLAINERS

EXPLAINERS: dict[str, type[TabularExplainer]] = {
    explainer.key: explainer
    for explainer in (LimeExplainer, AnchorExplainer, ShapExplainer, GradientShapExplainer, IntegratedGradientsExplainer)
}

# The class behind each key for each kind of data: a key such as "lime" works on tables, texts and images.
EXPLAINER_VARIANTS: dict[str, dict[str, type[TabularExplainer]]] = {
    "tabular": {key: EXPLAINERS[key] for key in ("lime", "anchor", "shap")},
    "text": TEXT_EXPLAINERS,
    "image": IMAGE_EXPLAINERS,
}


def explainer_modalities(key: str) -> list[str]:
    return [modality for modality, variants in EXPLAINER_VARIANTS.items() if key in variants]


def explainer_for(key: str, modality: str) -> type[TabularExplainer]:
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


def explainer_get(key: str) -> type[TabularExplainer]:
    try:
        return EXPLAINERS[key]
    except KeyError:
        raise UnknownExplainerError(f"Unknown explainer {key!r}; choose one of {', '.join(EXPLAINERS)}.") from None
