"""Counterfactuals as a table of changes: this row's values beside each counterfactual's, changes highlighted.

One line per feature that any counterfactual changes (the most often changed first), one column for the row and
one per counterfactual; under each counterfactual, the class it reaches and how sure the model is.
"""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from explanations.ml.explainers.base import ExplanationResult, FeatureSpace
from explanations.ml.explainers.counterfactual import change_sentence
from explanations.ml.plots.style import (
    FONT_SIZE,
    INK,
    MUTED,
    SOFT_INK,
    TOWARDS,
    WIDTH,
    alt_opening,
    figure_with_header,
    percent,
    wrap,
)

NAME_CHARS = 18
NAME_WIDTH = 1.4  # inches for the feature names
CHAR_WIDTH = 0.08  # inches per character of bold FONT_SIZE text, about
COLUMN_MIN = 0.95  # inches: a wider figure past five columns
LINE = 0.17  # inches per text line in a cell
CHANGED_FILL = "#DCEBF5"  # a light TOWARDS


def changed_features(data: dict) -> list[str]:
    """Every feature some counterfactual changes, the most often changed first (ties in the order first met)."""
    counts: dict[str, int] = {}
    for cf in data.get("counterfactuals", []):
        for change in cf["changes"]:
            counts[change["feature"]] = counts.get(change["feature"], 0) + 1
    return sorted(counts, key=lambda name: -counts[name])


def counterfactual_plot(explanation: ExplanationResult, space: FeatureSpace, *, title: str, subtitle: str = "") -> Figure:
    data = explanation.data
    counterfactuals = data.get("counterfactuals", [])
    features = changed_features(data)
    own = {c["feature"]: c["from"] for cf in counterfactuals for c in cf["changes"]}
    columns = ["This row"] + [f"#{i}" for i in range(1, len(counterfactuals) + 1)]
    width = max(WIDTH, NAME_WIDTH + COLUMN_MIN * len(columns))
    column_width = (width - NAME_WIDTH) / len(columns)
    chars = max(6, int((column_width - 0.15) / CHAR_WIDTH))
    cells = [[wrap(own[name], chars)] + [wrap(next((c["to"] for c in cf["changes"] if c["feature"] == name), "·"),
                                                   chars) for cf in counterfactuals] for name in features]
    footer = [wrap(f"{space.class_names[explanation.predicted]} ({percent(explanation.probabilities[explanation.predicted])})",
                   chars)] + [wrap(f"{cf['predicted_name']} ({percent(cf['probability'])})", chars)
                                   for cf in counterfactuals]
    heights = [max(label.count("\n") + 1 for label in [wrap(name, NAME_CHARS), *row]) for name, row in zip(features, cells)]
    footer_lines = max(label.count("\n") + 1 for label in footer)
    body_height = LINE * (sum(heights) + footer_lines + 2 + len(features) * 0.6) + 0.5
    fig, body = figure_with_header(title, subtitle, max(body_height, 1.2), width=width)
    ax = body.add_subplot()
    ax.set_axis_off()
    total = sum(heights) + footer_lines + 2 + len(features) * 0.6
    ax.set_xlim(0, width)
    ax.set_ylim(total, 0)
    if not counterfactuals:
        ax.text(0, 1, f"No counterfactual found that the model predicts as {data.get('desired_name', 'another class')}.",
                fontsize=FONT_SIZE + 1, color=INK, va="top")
        return fig
    x_of = [NAME_WIDTH + column_width * i for i in range(len(columns))]
    for x, label in zip(x_of, columns):
        ax.text(x + 0.05, 0.2, wrap(label, chars), fontsize=FONT_SIZE, fontweight="bold", color=SOFT_INK, va="top")
    y = 1.6
    for name, row, height in zip(features, cells, heights):
        ax.text(0, y, wrap(name, NAME_CHARS), fontsize=FONT_SIZE, color=INK, va="top")
        for i, (x, value) in enumerate(zip(x_of, row)):
            changed = i > 0 and value != "·"
            if changed:
                ax.add_patch(Rectangle((x, y - 0.15), column_width - 0.08, height + 0.45, color=CHANGED_FILL, linewidth=0))
            ax.text(x + 0.05, y, value, fontsize=FONT_SIZE, va="top", color=TOWARDS if changed else (INK if i == 0 else MUTED),
                    fontweight="bold" if changed else "normal")
        y += height + 0.6
    ax.axhline(y - 0.3, color=MUTED, linewidth=0.6)
    ax.text(0, y, "Predicted", fontsize=FONT_SIZE, color=SOFT_INK, va="top")
    for x, label in zip(x_of, footer):
        ax.text(x + 0.05, y, label, fontsize=FONT_SIZE, color=INK, va="top", fontweight="bold")
    return fig


def counterfactual_alt_text(explanation: ExplanationResult, space: FeatureSpace, *, shown: int = 2) -> str:
    data = explanation.data
    _, opening = alt_opening(explanation, space)
    counterfactuals = data.get("counterfactuals", [])
    if not counterfactuals:
        return f"{opening} No counterfactual found that the model predicts as {data.get('desired_name', 'another class')}."
    listed = "; ".join(change_sentence(cf) for cf in counterfactuals[:shown])
    more = f" ({len(counterfactuals) - shown} more in the table)" if len(counterfactuals) > shown else ""
    return f"{opening} What would have to change to be predicted {data['desired_name']}: {listed}{more}."
