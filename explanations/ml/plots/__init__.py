"""Pictures of explanations and results: each function takes what it draws and returns a ``Figure``.

Nothing here computes explanations, and nothing uses pyplot (its global state is not safe in a server):
figures are plain ``matplotlib.figure.Figure`` objects rendered with ``figure_render``.
"""

from __future__ import annotations

import functools
import importlib
import io
from collections.abc import Callable

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

from explanations.ml.explainers import EXPLAINER_VARIANTS, explainer_variant
from explanations.ml.explainers.base import BaseExplainer, ExplanationResult, FeatureSpace
from explanations.ml.plots.anchor import anchor_plot
from explanations.ml.plots.lime import lime_plot
from explanations.ml.plots.metrics import confusion_matrix_plot
from explanations.ml.plots.shap import importance_bar_plot, shap_summary_plot, shap_waterfall_plot
from explanations.ml.plots.style import PLAIN_TEXT_RC, alt_opening

__all__ = [
    "PLOTTERS",
    "anchor_plot",
    "confusion_matrix_plot",
    "drawing",
    "explanation_alt",
    "explanation_alt_text",
    "explanation_figure",
    "figure_render",
    "variant_plotters",
    "importance_bar_plot",
    "lime_plot",
    "shap_summary_plot",
    "shap_waterfall_plot",
]

PNG_DPI = 150


def figure_render(fig: Figure) -> tuple[bytes, bytes]:
    """PNG (150 dpi) and SVG (text kept as text, so it stays searchable and sharp); the figure is cleared after.

    Every text is drawn as typed (no mathtext, no LaTeX), whatever the process's rcParams say: see ``PLAIN_TEXT_RC``.
    """
    FigureCanvasAgg(fig)
    png, svg = io.BytesIO(), io.BytesIO()
    try:
        for text in fig.findobj(Text):
            text.set_parse_math(False)
            text.set_usetex(False)
        with matplotlib.rc_context(PLAIN_TEXT_RC):
            fig.savefig(png, format="png", dpi=PNG_DPI, facecolor="white")
        # The layout is in figure fractions and text sizes in points, so the PNG's layout holds for the SVG:
        # keeping it skips a second constrained-layout pass (about a third of the SVG's time).
        fig.set_layout_engine("none")
        with matplotlib.rc_context({**PLAIN_TEXT_RC, "svg.fonttype": "none", "svg.hashsalt": "explainer"}):
            fig.savefig(svg, format="svg", facecolor="white")
    finally:
        fig.clear()
    return png.getvalue(), svg.getvalue()


def drawing(path: str) -> Callable:
    """The function an explainer names as ``"module:function"`` (``plot_function``, ``alt_text_function``)."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def explanation_figure(explainer: type[BaseExplainer], explanation: ExplanationResult, space: FeatureSpace, *, title: str,
                       subtitle: str = "", trust: dict | None = None) -> Figure:
    """The explainer's own picture of one explanation, with what its trust scores add (e.g. error bars)."""
    return drawing(explainer.plot_function)(explanation, space, title=title, subtitle=subtitle,
                                            **explainer.plot_options(trust))


def explanation_alt(explainer: type[BaseExplainer], explanation: ExplanationResult, space: FeatureSpace) -> str:
    """One or two sentences for the image's alt text, from the explainer's own ``alt_text_function``."""
    return drawing(explainer.alt_text_function)(explanation, space)


def explanation_alt_text(explanation: ExplanationResult, space: FeatureSpace) -> str:
    """The alt text of a table's explanation: the prediction and its strongest reasons, in words."""
    explainer = explainer_variant(explanation.method, "tabular")
    if explainer is None or not explainer.alt_text_function:
        return alt_opening(explanation, space)[1]
    return explanation_alt(explainer, explanation, space)


def variant_plotters(modality: str) -> dict[str, Callable[..., Figure]]:
    """Each explainer's plot function on this kind of data, by key, with its fixed options (no trust scores)."""
    classes = {key: entry.load() for key, entry in EXPLAINER_VARIANTS.get(modality, {}).items()}
    return {key: functools.partial(drawing(explainer.plot_function), **explainer.plot_options(None))
            for key, explainer in classes.items()}


def __getattr__(name: str):
    if name == "PLOTTERS":  # the tables' plotters, as before the registry named them
        return variant_plotters("tabular")
    raise AttributeError(name)
