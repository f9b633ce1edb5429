"""LIME's weights as horizontal bars, with the class probabilities beside them (as in the LIME paper)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from explanations.ml.explainers.base import ExplanationResult, FeatureSpace
from explanations.ml.plots.style import (
    AWAY,
    FONT_SIZE,
    INK,
    MUTED,
    TOWARDS,
    axes_tidy,
    condition_pretty,
    features_alt_text,
    figure_with_header,
    percent,
    wrap,
)

MAX_CLASSES_SHOWN = 5


def probabilities_panel(ax: Axes, probabilities: list[float], predicted: int, class_names: list[str]) -> None:
    """The most likely classes (always including the predicted one), the predicted one highlighted."""
    order = [int(i) for i in np.argsort(probabilities)[::-1][:MAX_CLASSES_SHOWN]]
    if predicted not in order:
        order[-1] = predicted
    y = np.arange(len(order))[::-1]
    values = [probabilities[i] for i in order]
    ax.barh(y, values, color=[TOWARDS if i == predicted else MUTED for i in order], height=0.6)
    for yy, value in zip(y, values):
        ax.text(min(value, 1.0) + 0.03, yy, percent(value), va="center", fontsize=FONT_SIZE - 0.5, color=INK)
    ax.set_yticks(y, [wrap(class_names[i], 14) for i in order])
    ax.set_xlim(0, 1.35)
    ax.set_xticks([])
    ax.spines["bottom"].set_visible(False)
    ax.set_title("Prediction probabilities", fontsize=FONT_SIZE, loc="left", color=INK)


def lime_plot(explanation: ExplanationResult, space: FeatureSpace, *, title: str, subtitle: str = "",
              errors: Sequence[float] | None = None) -> Figure:
    """``errors``: optional spread (one standard deviation over reruns with other seeds) per weight, drawn as error bars."""
    weights = explanation.data["weights"]
    predicted_name = space.class_names[explanation.data["label"]]
    body_height = max(2.4, 0.42 * len(weights) + 1.3)
    fig, body = figure_with_header(title, subtitle, body_height)
    grid = body.add_gridspec(1, 2, width_ratios=[1.0, 2.5])
    probabilities_ax = body.add_subplot(grid[0, 0])
    axes_tidy(probabilities_ax, grid_axis=None)
    probabilities_panel(probabilities_ax, explanation.probabilities, explanation.predicted, space.class_names)

    ax = body.add_subplot(grid[0, 1])
    axes_tidy(ax)
    if not weights:
        ax.text(0.5, 0.5, "No feature weights", ha="center", va="center", transform=ax.transAxes)
        return fig
    values = np.array([w for _, w in weights], dtype=float)
    y = np.arange(len(weights))[::-1]  # strongest at the top
    spread = np.zeros(len(values)) if errors is None or len(errors) != len(values) else np.asarray(errors, dtype=float)
    ax.barh(y, values, color=[TOWARDS if v > 0 else AWAY for v in values], height=0.65,
            xerr=spread if spread.any() else None, error_kw={"ecolor": INK, "elinewidth": 1.0, "capsize": 3})
    ax.axvline(0, color="#777777", linewidth=0.8)
    span = float((np.abs(values) + spread).max()) or 1.0
    for yy, value, error in zip(y, values, spread):
        ax.text(value + np.sign(value or 1) * (span * 0.03 + error), yy, f"{value:+.2f}", va="center",
                ha="left" if value >= 0 else "right", fontsize=FONT_SIZE - 0.5, color=INK)
    ax.set_xlim(min(0.0, (values - spread).min()) - span * 0.45, max(0.0, (values + spread).max()) + span * 0.45)
    ax.set_yticks(y, [condition_pretty(condition, 30) for condition, _ in weights])
    ax.set_xlabel(wrap(f"Weight: change in the probability of {predicted_name}", 38))
    handles = [Patch(color=TOWARDS, label=f"towards {predicted_name}"), Patch(color=AWAY, label="away from it")]
    if spread.any():
        handles.append(Line2D([], [], color=INK, marker="|", markersize=8, linewidth=1.0, label="± spread over reruns"))
    ax.legend(
        handles=handles,
        loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=2, frameon=False, fontsize=FONT_SIZE - 0.5,
    )
    return fig


def lime_alt_text(explanation: ExplanationResult, space: FeatureSpace, *, top: int = 3) -> str:
    return features_alt_text(explanation, space, [(condition, float(weight))
                                                  for condition, weight in explanation.data["weights"][:top]])
