"""LIME's weights as horizontal bars, under the class probabilities (the LIME paper's two panels, stacked)."""

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
    WIDTH,
    axes_tidy,
    condition_pretty,
    condition_text,
    features_alt_text,
    figure_with_header,
    legend_above,
    number_axis,
    percent,
    row_pitch,
    signed,
    wrap,
)

MAX_CLASSES_SHOWN = 5
CLASS_CHARS = 36  # a class name's line beside its probability bar
CONDITION_CHARS = 36  # a condition's line beside its weight


def probabilities_panel(ax: Axes, probabilities: list[float], predicted: int, class_names: list[str]) -> None:
    """The most likely classes (always including the predicted one), the predicted one highlighted."""
    order = probabilities_shown(probabilities, predicted)
    y = np.arange(len(order))[::-1]
    values = [probabilities[i] for i in order]
    ax.barh(y, values, color=[TOWARDS if i == predicted else MUTED for i in order], height=0.6)
    for yy, value in zip(y, values):
        ax.text(min(value, 1.0) + 0.02, yy, percent(value), va="center", fontsize=FONT_SIZE - 0.5, color=INK)
    ax.set_yticks(y, [wrap(class_names[i], CLASS_CHARS) for i in order])
    ax.set_ylim(-0.6, len(order) - 0.4)
    ax.set_xlim(0, 1.15)
    ax.set_xticks([])
    ax.spines["bottom"].set_visible(False)
    ax.set_title("Prediction probabilities", fontsize=FONT_SIZE, loc="left", color=INK)


def probabilities_shown(probabilities: list[float], predicted: int) -> list[int]:
    order = [int(i) for i in np.argsort(probabilities)[::-1][:MAX_CLASSES_SHOWN]]
    if predicted not in order:
        order[-1] = predicted
    return order


def probabilities_height(probabilities: list[float], predicted: int, class_names: list[str]) -> float:
    """Inches the panel needs: a row per class shown, as tall as its wrapped name."""
    labels = [wrap(class_names[i], CLASS_CHARS) for i in probabilities_shown(probabilities, predicted)]
    return row_pitch(labels, 0.26) * len(labels) + 0.5  # and its title


def weight_bars(ax: Axes, pairs: Sequence[tuple[str, float]], *, class_name: str, xlabel: str,
                errors: Sequence[float] | None = None) -> None:
    """Signed weights as horizontal bars, strongest at the top, each labelled with its value; ``pairs`` hold
    (wrapped label, weight). Rows are as far apart as the longest label needs."""
    axes_tidy(ax)
    if not pairs:
        ax.text(0.5, 0.5, "No feature weights", ha="center", va="center", transform=ax.transAxes)
        return
    values = np.array([w for _, w in pairs], dtype=float)
    y = np.arange(len(pairs))[::-1]  # strongest at the top
    spread = np.zeros(len(values)) if errors is None or len(errors) != len(values) else np.asarray(errors, dtype=float)
    ax.barh(y, values, color=[TOWARDS if v > 0 else AWAY for v in values], height=0.65,
            xerr=spread if spread.any() else None, error_kw={"ecolor": INK, "elinewidth": 1.0, "capsize": 3})
    ax.axvline(0, color="#777777", linewidth=0.8)
    span = float((np.abs(values) + spread).max()) or 1.0
    for yy, value, error in zip(y, values, spread):
        ax.text(value + np.sign(value or 1) * (span * 0.03 + error), yy, signed(value, 2), va="center",
                ha="left" if value >= 0 else "right", fontsize=FONT_SIZE - 0.5, color=INK)
    low, high = min(0.0, (values - spread).min()), max(0.0, (values + spread).max())
    ax.set_xlim(low - span * (0.35 if low < 0 else 0.05), high + span * (0.35 if high > 0 else 0.05))
    ax.set_ylim(-0.6, len(pairs) - 0.4)
    ax.set_yticks(y, [label for label, _ in pairs])
    number_axis(ax.xaxis, bins=4)
    ax.set_xlabel(wrap(xlabel, 44))
    handles = [Patch(color=TOWARDS, label=f"towards {class_name}"), Patch(color=AWAY, label="away from it")]
    if spread.any():
        handles.append(Line2D([], [], color=INK, marker="|", markersize=8, linewidth=1.0, label="± spread over reruns"))
    legend_above(ax, handles, width=WIDTH * 0.55)


def lime_plot(explanation: ExplanationResult, space: FeatureSpace, *, title: str, subtitle: str = "",
              errors: Sequence[float] | None = None, xlabel: str = "Weight: change in the probability of {class_name}"
              ) -> Figure:
    """``errors``: optional spread (one standard deviation over reruns with other seeds) per weight, drawn as error bars;
    ``xlabel``: what the weights are (``{class_name}`` is filled in), for the explainers that borrow these bars.

    The class probabilities sit above the weights, so long conditions and class names get the full width.
    """
    weights = explanation.data["weights"]
    predicted_name = space.class_names[explanation.data["label"]]
    pairs = [(condition_pretty(condition, CONDITION_CHARS), float(weight)) for condition, weight in weights]
    top = probabilities_height(explanation.probabilities, explanation.predicted, space.class_names)
    bars = max(1.6, row_pitch([label for label, _ in pairs]) * len(pairs) + 1.4)
    fig, body = figure_with_header(title, subtitle, top + bars)
    grid = body.add_gridspec(2, 1, height_ratios=[top, bars])
    probabilities_ax = body.add_subplot(grid[0])
    axes_tidy(probabilities_ax, grid_axis=None)
    probabilities_panel(probabilities_ax, explanation.probabilities, explanation.predicted, space.class_names)
    weight_bars(body.add_subplot(grid[1]), pairs, class_name=predicted_name,
                xlabel=xlabel.format(class_name=predicted_name), errors=errors)
    return fig


def lime_alt_text(explanation: ExplanationResult, space: FeatureSpace, *, top: int = 3) -> str:
    return features_alt_text(explanation, space, [(condition_text(condition), float(weight))
                                                  for condition, weight in explanation.data["weights"][:top]])
