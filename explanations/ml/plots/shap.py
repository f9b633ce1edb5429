"""SHAP pictures drawn with the Figure API (shap.plots uses pyplot, which a server must not):
a waterfall for one row, a beeswarm summary over many rows, and a plain importance bar chart."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from explanations.ml.explainers.base import ExplanationResult, FeatureSpace
from explanations.ml.plots.style import (
    AWAY,
    FONT_SIZE,
    INK,
    MUTED,
    SOFT_INK,
    TOWARDS,
    WIDTH,
    axes_tidy,
    condition_pretty,
    features_alt_text,
    figure_with_header,
    legend_above,
    number_axis,
    number_text,
    round_significant,
    row_pitch,
    signed,
    value_condition,
    wrap,
)

VALUE_CMAP = "cividis"  # feature value low -> high; readable with colour-vision deficiencies


def output_label(output: str, class_name: str) -> str:
    return f"Probability of {class_name}" if output == "probability" else f"Model score for {class_name} (log-odds)"


def shap_alt_text(explanation: ExplanationResult, space: FeatureSpace, *, top: int = 3) -> str:
    data = explanation.data
    ranked = sorted(data["values"].items(), key=lambda item: -abs(item[1]))[:top]
    return features_alt_text(explanation, space, [(_condition(space, data, name), float(value)) for name, value in ranked])


def _condition(space: FeatureSpace, data: dict, name: str) -> str:
    """``fnlwgt = 129,200``: the row's value as stored, a number (even one stored as ``1.292e+05``) made readable."""
    categorical = name in space.feature_names and space.feature_names.index(name) in space.categories
    return value_condition(name, str(data["feature_values"].get(name, "")), categorical=categorical)


def shap_waterfall_plot(
    explanation: ExplanationResult, space: FeatureSpace, *, title: str, subtitle: str = "", max_display: int = 10
) -> Figure:
    """From the average prediction (bottom) up to this row's (top), one step per feature, strongest at the top."""
    data = explanation.data
    class_name = space.class_names[data["label"]]
    ranked = sorted(data["values"].items(), key=lambda item: -abs(item[1]))
    shown = ranked if len(ranked) <= max_display else ranked[: max_display - 1]
    steps = [(condition_pretty(_condition(space, data, name), 36), value) for name, value in shown]
    rest = ranked[len(shown):]
    if rest:
        steps.append((f"{len(rest)} other features", float(sum(value for _, value in rest))))
    steps = steps[::-1]  # drawn bottom-up: the weakest first, the strongest last (top)

    base = float(data["base_value"])
    fig, body = figure_with_header(title, subtitle, max(2.6, row_pitch([label for label, _ in steps]) * len(steps) + 1.9))
    ax = body.add_subplot()
    axes_tidy(ax)
    start = base
    lefts = []
    for y, (_, value) in enumerate(steps):
        lefts.append(start)
        ax.barh(y, value, left=start, color=TOWARDS if value > 0 else AWAY, height=0.65)
        start += value
    final = start
    ends = [left + value for left, (_, value) in zip(lefts, steps)]
    low, high = min(lefts + ends + [base]), max(lefts + ends + [base])
    span = (high - low) or 1.0
    for y, (left, (_, value)) in enumerate(zip(lefts, steps)):
        edge = max(left, left + value)
        ax.text(edge + span * 0.015, y, signed(value), va="center", ha="left", fontsize=FONT_SIZE - 0.5, color=INK)
    ax.axvline(base, color=MUTED, linestyle="--", linewidth=0.9)
    ax.axvline(final, color=SOFT_INK, linestyle=":", linewidth=0.9)
    ax.set_xlim(low - span * 0.05, high + span * 0.25)
    ax.set_ylim(-0.8, len(steps) - 0.2)
    ax.set_yticks(range(len(steps)), [label for label, _ in steps])
    number_axis(ax.xaxis, bins=4)
    # The numbers get a line of their own, so wrapping a long class name never splits them.
    ax.set_xlabel(f"{wrap(output_label(data['output'], class_name), 44)}\n"
                  f"average {number_text(round_significant(base, 3))} → this row {number_text(round_significant(final, 3))}")
    legend_above(ax, [Patch(color=TOWARDS, label=f"towards {class_name}"), Patch(color=AWAY, label="away from it")],
                       width=WIDTH * 0.55)
    return fig


def _swarm_offsets(values: np.ndarray, width: float = 0.38, bins: int = 60) -> np.ndarray:
    """Spread points that share an x-bin up and down, alternately, so dense regions look dense."""
    offsets = np.zeros(len(values))
    if len(values) == 0:
        return offsets
    low, high = float(values.min()), float(values.max())
    positions = np.floor((values - low) / ((high - low) or 1.0) * bins).astype(int)
    for position in np.unique(positions):
        members = np.flatnonzero(positions == position)
        rank = np.arange(len(members))
        offsets[members] = np.where(rank % 2 == 0, 1, -1) * ((rank + 1) // 2)
    most = float(np.abs(offsets).max()) or 1.0
    return offsets * min(0.05, width / most)  # tight for a few points, never wider than the row


def shap_summary_plot(
    values: np.ndarray,
    X: np.ndarray,
    space: FeatureSpace,
    *,
    title: str,
    subtitle: str = "",
    max_features: int = 15,
    class_name: str = "",
) -> Figure:
    """Beeswarm: one dot per row and feature, x = its SHAP value, colour = the feature's value (categories grey).

    ``class_name`` is the class every row's values push towards (one class for all rows, so signs compare).
    """
    values = np.asarray(values, dtype=float)
    X = np.asarray(X, dtype=float)
    order = np.argsort(-np.abs(values).mean(axis=0))[:max_features] if values.size else np.array([], dtype=int)
    labels = [wrap(space.feature_names[j], 28) for j in order]
    fig, body = figure_with_header(title, subtitle, max(2.6, row_pitch(labels) * len(order) + 1.6))
    ax = body.add_subplot()
    axes_tidy(ax)
    cmap = colormaps[VALUE_CMAP]
    for y, feature in zip(range(len(order) - 1, -1, -1), order):
        column, feature_values = values[:, feature], X[:, feature]
        if feature in space.categories:
            colours = MUTED
        else:
            low, high = np.nanpercentile(feature_values, [5, 95])
            colours = cmap(Normalize(low, high if high > low else low + 1, clip=True)(feature_values))
        ax.scatter(column, y + _swarm_offsets(column), s=9, c=colours, linewidths=0, alpha=0.85, rasterized=False)
    ax.axvline(0, color="#777777", linewidth=0.8)
    ax.set_yticks(range(len(order) - 1, -1, -1), labels)
    ax.set_ylim(-0.7, len(order) - 0.3)
    number_axis(ax.xaxis, bins=5)
    target = class_name or "the predicted class"
    ax.set_xlabel(wrap(f"SHAP value: push towards (+) or away from (−) {target}", 60))
    colourbar = body.colorbar(ScalarMappable(Normalize(0, 1), cmap=cmap), ax=ax, ticks=[0, 1], aspect=30, pad=0.02)
    colourbar.ax.set_yticklabels(["low", "high"], fontsize=FONT_SIZE - 0.5)
    colourbar.set_label("Feature value (categories in grey)", fontsize=FONT_SIZE - 0.5, color=INK)
    colourbar.outline.set_visible(False)
    return fig


def importance_bar_plot(
    names: Sequence[str],
    importances: Sequence[float],
    *,
    title: str,
    subtitle: str = "",
    xlabel: str = "Mean |SHAP value|",
    max_features: int = 20,
) -> Figure:
    """Global importances, largest at the top; features at exactly 0 (LIME never picked them) are counted in
    the subtitle instead of drawn as a column of empty bars."""
    importances = np.asarray(importances, dtype=float)
    order = [j for j in np.argsort(-np.abs(importances), kind="stable") if importances[j] != 0] or [0]
    unused = int(np.count_nonzero(importances == 0)) if importances.size else 0
    order = order[:max_features]
    if unused and importances[order[0]] != 0:
        note = f"{unused} feature{'s' if unused != 1 else ''} at 0 not shown"
        subtitle = f"{subtitle} · {note}" if subtitle else note
    labels = [wrap(str(names[j]), 32) for j in order]
    fig, body = figure_with_header(title, subtitle, max(2.2, row_pitch(labels, 0.3) * len(order) + 1.1))
    ax = body.add_subplot()
    axes_tidy(ax)
    y = np.arange(len(order))[::-1]
    ax.barh(y, importances[order], color=TOWARDS, height=0.65)
    span = float(np.abs(importances).max()) if importances.size else 1.0
    for yy, value in zip(y, importances[order]):
        ax.text(value + span * 0.015, yy, number_text(round_significant(value, 3)), va="center",
                fontsize=FONT_SIZE - 0.5, color=INK)
    ax.set_yticks(y, labels)
    ax.set_ylim(-0.6, len(order) - 0.4)
    ax.set_xlim(0, (span or 1.0) * 1.3)
    number_axis(ax.xaxis, bins=4)
    ax.set_xlabel(wrap(xlabel, 50))
    return fig
