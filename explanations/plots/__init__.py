"""Pictures of explanations and results: each function takes what it draws and returns a ``Figure``.

Nothing here computes explanations, and nothing uses pyplot (its global state is not safe in a server):
figures are plain ``matplotlib.figure.Figure`` objects rendered with ``figure_render``.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

from explanations.explainers.base import Explanation, TabularSpace
from explanations.plots.anchor import anchor_plot
from explanations.plots.lime import lime_plot
from explanations.plots.metrics import confusion_matrix_plot
from explanations.plots.shap import importance_bar_plot, shap_summary_plot, shap_waterfall_plot
from explanations.plots.style import PLAIN_TEXT_RC, percent

__all__ = [
    "PLOTTERS",
    "anchor_plot",
    "confusion_matrix_plot",
    "explanation_alt_text",
    "figure_render",
    "importance_bar_plot",
    "lime_plot",
    "shap_summary_plot",
    "shap_waterfall_plot",
]

PNG_DPI = 150

PLOTTERS: dict[str, Callable[..., Figure]] = {
    "lime": lime_plot,
    "anchor": anchor_plot,
    "shap": shap_waterfall_plot,
}


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


def _direction(value: float) -> str:
    return "towards" if value > 0 else "away from"


def explanation_alt_text(explanation: Explanation, space: TabularSpace, *, top: int = 3) -> str:
    """One or two sentences for the image's alt text: the prediction and its strongest reasons, in words."""
    data = explanation.data
    class_name = space.class_names[data.get("label", explanation.predicted)]
    probability = explanation.probabilities[explanation.predicted]
    opening = f"Predicted {class_name} ({percent(probability)})."
    if explanation.method == "anchor":
        rule = " and ".join(data["rule"]) or "any row"
        return (
            f"{opening} Anchor rule: if {rule}, then {class_name}; precision {percent(data['precision'])}, "
            f"applies to {percent(data['coverage'])} of rows."
            + (f" No rule reached the {percent(data['threshold'])} precision asked for; this is the most precise one found."
               if data.get("meets_threshold") is False else "")
        )
    if explanation.method == "lime":
        pairs = [(condition, float(weight)) for condition, weight in data["weights"][:top]]
    elif explanation.method == "shap":
        ranked = sorted(data["values"].items(), key=lambda item: -abs(item[1]))[:top]
        pairs = [(f"{name} = {data['feature_values'].get(name, '')}", float(value)) for name, value in ranked]
    else:
        return opening
    if not pairs:
        return f"{opening} No feature stood out."
    reasons = "; ".join(f"{condition} ({_direction(value)} {class_name}, {value:+.3g})" for condition, value in pairs)
    return f"{opening} Strongest features ({explanation.method.upper()}): {reasons}."
