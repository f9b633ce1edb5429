"""Text explanations drawn: the message with its words shaded by weight, the weights as bars, anchors as a rule card."""

from __future__ import annotations

import re
from dataclasses import replace

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from explanations.ml.explainers import explainer_for
from explanations.ml.explainers.base import ExplanationResult, FeatureSpace
from explanations.ml.plots.anchor import anchor_plot
from explanations.ml.plots.lime import probabilities_height, probabilities_panel, weight_bars
from explanations.ml.plots.style import (
    AWAY,
    FONT_SIZE,
    INK,
    TOWARDS,
    WIDTH,
    alt_opening,
    axes_tidy,
    figure_with_header,
    percent,
    row_pitch,
    signed,
    wrap,
)

CHARS_PER_LINE = 64
MAX_LINES = 10
LINE_HEIGHT = 0.2  # inches per line of the message
PIECES = re.compile(r"\w+|\W+")
MONO_CHAR = 0.602 * FONT_SIZE / 72  # inches per character of DejaVu Sans Mono


def message_pieces(explanation: ExplanationResult) -> list[tuple[str, float]]:
    """The message as (piece, weight) in reading order; separators and unweighted words weigh 0."""
    data = explanation.data
    if "tokens" in data:  # SHAP: every token carries its own value; split off the separator it ends with
        pieces = []
        for token, value in data["tokens"]:
            for part in PIECES.findall(token):
                pieces.append((part, float(value) if re.match(r"\w", part) else 0.0))
        return pieces
    if "words" in data:  # LIME: the weighted words
        weights = {word: float(weight) for word, weight in data["words"]}
    else:  # a rule: its words, all alike
        weights = dict.fromkeys(data.get("rule", []), 1.0)
    return [(part, weights.get(part, 0.0)) for part in PIECES.findall(data.get("text", ""))]


def message_panel(ax: Axes, pieces: list[tuple[str, float]]) -> None:
    """Monospaced, wrapped at word boundaries; weighted words on a shaded box, darker for larger weights."""
    ax.set_axis_off()
    span = max((abs(w) for _, w in pieces), default=0.0) or 1.0
    column, line = 0, 0
    for piece, weight in pieces:
        if "\n" in piece or (column + len(piece.rstrip()) > CHARS_PER_LINE and column > 0):
            column, line = 0, line + 1
            piece = piece.lstrip() if not re.match(r"\w", piece) else piece
        if line >= MAX_LINES:
            ax.text(0, line, "…", va="top", fontsize=FONT_SIZE, family="monospace", color=INK)
            break
        text = piece.replace("\n", " ")
        if text.strip():
            box = None
            if weight:
                box = {"facecolor": TOWARDS if weight > 0 else AWAY, "alpha": 0.2 + 0.6 * abs(weight) / span,
                       "edgecolor": "none", "pad": 1.2}
            ax.text(column, line, text, va="top", ha="left", fontsize=FONT_SIZE, family="monospace", color=INK,
                    fontweight="bold" if weight else "normal", bbox=box)
        column += len(text)
    ax.set_xlim(-0.5, (WIDTH - 0.2) / MONO_CHAR)  # one unit per character: the subfigure spans the figure's width
    ax.set_ylim(min(line, MAX_LINES) + 1, -0.2)


def message_lines(pieces: list[tuple[str, float]]) -> int:
    return min(MAX_LINES, 1 + sum(len(p) for p, _ in pieces) // CHARS_PER_LINE + sum(p.count("\n") for p, _ in pieces))


def word_bars(ax: Axes, pairs: list[list], class_name: str, xlabel: str) -> None:
    """The strongest words as signed bars: the tables' weight bars, with words for conditions."""
    if not pairs:
        axes_tidy(ax)
        ax.text(0.5, 0.5, "No word stood out", ha="center", va="center", transform=ax.transAxes)
        return
    weight_bars(ax, [(f"“{wrap(str(word), 24)}”", float(weight)) for word, weight in pairs], class_name=class_name,
                xlabel=xlabel)


def text_weights_plot(explanation: ExplanationResult, space: FeatureSpace, *, title: str, subtitle: str = "",
                      value_name: str = "Weight") -> Figure:
    """LIME or SHAP on a message: the message with its words shaded, then the strongest words as bars.

    ``value_name`` says what the bars measure (the explainer's ``plot_options`` give it, e.g. "SHAP value").
    """
    class_name = space.class_names[explanation.data["label"]]
    pieces = message_pieces(explanation)
    pairs = explanation.data.get("words", [])
    message_height = LINE_HEIGHT * message_lines(pieces) + 0.35
    top = probabilities_height(explanation.probabilities, explanation.predicted, space.class_names)
    labels = [wrap(str(word), 24) for word, _ in pairs]
    bars_height = max(1.6, row_pitch(labels) * len(pairs) + 1.4)
    fig, body = figure_with_header(title, subtitle, message_height + top + bars_height)
    # The message in a subfigure of its own: aligned with the bars' axes, it would lose the width of their labels
    # and its monospaced columns would run into each other.
    message_figure, charts = body.subfigures(2, 1, height_ratios=[message_height, top + bars_height])
    message_panel(message_figure.add_subplot(), pieces)
    grid = charts.add_gridspec(2, 1, height_ratios=[top, bars_height])
    probabilities_ax = charts.add_subplot(grid[0])
    axes_tidy(probabilities_ax, grid_axis=None)
    probabilities_panel(probabilities_ax, explanation.probabilities, explanation.predicted, space.class_names)
    word_bars(charts.add_subplot(grid[1]), pairs, class_name, f"{value_name}: change in the probability of {class_name}")
    return fig


def rule_conditions(rule: list[str]) -> list[str]:
    return [f"the message contains “{word}”" for word in rule]


def text_anchor_plot(explanation: ExplanationResult, space: FeatureSpace, *, title: str, subtitle: str = "") -> Figure:
    """The anchor's words as an IF ... THEN rule card (the tabular card, with words for conditions)."""
    data = {**explanation.data, "rule": rule_conditions(explanation.data.get("rule", []))}
    return anchor_plot(replace(explanation, data=data), space, title=title, subtitle=subtitle)


def text_anchor_alt_text(explanation: ExplanationResult, space: FeatureSpace) -> str:
    data = explanation.data
    class_name, opening = alt_opening(explanation, space)
    rule = " and ".join(rule_conditions(data["rule"])) or "always"
    return (f"{opening} Anchor rule: if {rule}, then {class_name}; precision {percent(data['precision'])}, "
            f"applies to {percent(data['coverage'])} of training messages.")


def text_weights_alt_text(explanation: ExplanationResult, space: FeatureSpace, *, top: int = 3) -> str:
    class_name, opening = alt_opening(explanation, space)
    words = explanation.data.get("words", [])[:top]
    if not words:
        return f"{opening} No word stood out."
    reasons = "; ".join(f"“{w}” ({'towards' if v > 0 else 'away from'} {class_name}, {signed(v)})" for w, v in words)
    return f"{opening} Strongest words ({explanation.method.upper()}): {reasons}."


def text_alt_text(explanation: ExplanationResult, space: FeatureSpace) -> str:
    """The alt text of a message's explanation, from its explainer's own ``alt_text_function``."""
    from explanations.ml.plots import explanation_alt

    return explanation_alt(explainer_for(explanation.method, "text"), explanation, space)


def __getattr__(name: str):
    if name == "TEXT_PLOTTERS":  # each text explainer's plot function with its options, by key, from the registry
        from explanations.ml.plots import variant_plotters

        return variant_plotters("text")
    raise AttributeError(name)
