"""The explainers a user can pick. Adding one = a module with a ``TabularExplainer`` subclass + a line here."""

from __future__ import annotations

from explanations.explainers.anchors import AnchorExplainer
from explanations.explainers.base import ExplainerError, TabularExplainer
from explanations.explainers.lime import LimeExplainer
from explanations.explainers.shap import ShapExplainer

EXPLAINERS: dict[str, type[TabularExplainer]] = {
    explainer.key: explainer for explainer in (LimeExplainer, AnchorExplainer, ShapExplainer)
}


class UnknownExplainerError(ExplainerError, KeyError):
    """No explainer is registered under the requested key."""

    def __str__(self) -> str:  # KeyError would otherwise show the message in quotes
        return str(self.args[0]) if self.args else ""


def explainer_get(key: str) -> type[TabularExplainer]:
    try:
        return EXPLAINERS[key]
    except KeyError:
        raise UnknownExplainerError(f"Unknown explainer {key!r}; choose one of {', '.join(EXPLAINERS)}.") from None
