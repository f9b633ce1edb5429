"""An anchor as a rule card: IF conditions THEN class, with how precise the rule is and how much it covers."""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from explanations.ml.explainers.base import ExplanationResult, FeatureSpace
from explanations.ml.plots.style import (
    FONT_SIZE,
    INK,
    MUTED,
    SOFT_INK,
    TOWARDS,
    alt_opening,
    condition_pretty,
    condition_text,
    figure_with_header,
    percent,
    wrap,
)

LINE = 0.3  # inches per rule line


def _meter(ax: Axes, value: float, caption: str) -> None:
    """A 0-100% bar with its caption above, so the number reads without the colour."""
    ax.barh([0], [1.0], color="#EEEEEE", height=0.55)
    ax.barh([0], [max(0.0, min(1.0, value))], color=TOWARDS, height=0.55)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.5, 0.5)
    ax.set_axis_off()
    ax.set_title(wrap(caption, 80), loc="left", fontsize=FONT_SIZE, color=INK, pad=3)


def anchor_plot(explanation: ExplanationResult, space: FeatureSpace, *, title: str, subtitle: str = "") -> Figure:
    data = explanation.data
    rule = [condition_pretty(condition, 48) for condition in data["rule"]]
    predicted_name = space.class_names[data["label"]]
    lines = sum(condition.count("\n") + 1 for condition in rule) or 1
    rule_height = LINE * (lines + 1.6)
    fig, body = figure_with_header(title, subtitle, rule_height + 1.3)
    grid = body.add_gridspec(3, 1, height_ratios=[rule_height, 0.6, 0.6])

    card = body.add_subplot(grid[0])
    card.set_axis_off()
    step = 1.0 / (lines + 1.6)
    y = 1.0 - step * 0.5
    if not rule:
        card.text(0.0, y, "For any row (no condition needed)", va="center", fontsize=FONT_SIZE + 1, color=INK)
        y -= step
    for i, condition in enumerate(rule):
        card.text(0.0, y, "IF" if i == 0 else "AND", va="top", fontsize=FONT_SIZE + 1, fontweight="bold", color=SOFT_INK)
        card.text(0.1, y, condition, va="top", fontsize=FONT_SIZE + 1, color=INK)
        y -= step * (condition.count("\n") + 1)
    card.text(0.0, y - step * 0.2, "THEN", va="top", fontsize=FONT_SIZE + 1, fontweight="bold", color=SOFT_INK)
    card.text(0.1, y - step * 0.2, f"predict {predicted_name}", va="top", fontsize=FONT_SIZE + 1,
              fontweight="bold", color=TOWARDS)
    card.set_xlim(0, 1)
    card.set_ylim(0, 1)

    precision, coverage = float(data["precision"]), float(data["coverage"])
    caption = f"Precision {percent(precision)}: when the rule holds, the model says {predicted_name} {percent(precision)} of the time"
    if data.get("meets_threshold") is False:
        caption += f". No rule reached the {percent(data['threshold'])} asked for; this is the most precise one found"
    _meter(body.add_subplot(grid[1]), precision, caption)
    _meter(body.add_subplot(grid[2]), coverage, f"Coverage {percent(coverage)}: the rule applies to {percent(coverage)} of rows")
    card.axhline(0.0, color=MUTED, linewidth=0.6)
    return fig


def anchor_alt_text(explanation: ExplanationResult, space: FeatureSpace) -> str:
    data = explanation.data
    class_name, opening = alt_opening(explanation, space)
    rule = " and ".join(condition_text(condition) for condition in data["rule"]) or "any row"
    return (
        f"{opening} Anchor rule: if {rule}, then {class_name}; precision {percent(data['precision'])}, "
        f"applies to {percent(data['coverage'])} of rows."
        + (f" No rule reached the {percent(data['threshold'])} precision asked for; this is the most precise one found."
           if data.get("meets_threshold") is False else "")
    )
