"""What-if curves: the probability of one class as one feature sweeps its range, one line per classifier.

A number's values are ordered, so they are joined by lines; a category's are not, so each classifier is a dot per
category (a dot plot, categories down the side where long names read well) and nothing suggests a trend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from explanations.ml.plots.style import (
    FONT_SIZE,
    INK,
    MUTED,
    WIDTH,
    axes_tidy,
    figure_with_header,
    legend_above,
    number_axis,
    percent,
    row_pitch,
    wrap,
)

# Okabe-Ito, colour-blind safe; markers and dashes differ too, so colour is never the only signal.
LINE_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
LINE_STYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
CATEGORY_CHARS = 30
THIS_ROW = "(this row)"


def whatif_plot(grid: Sequence[float], labels: Sequence[str], curves: Mapping[str, Sequence[float]], *, feature: str,
                class_name: str, title: str, subtitle: str = "", current: float | None = None,
                categorical: bool = False) -> Figure:
    """``curves`` maps a classifier's label to P(class_name) at each grid point; ``current`` marks the row's own value."""
    if categorical:
        return _categories_dots(grid, labels, curves, feature=feature, class_name=class_name, title=title,
                                subtitle=subtitle, current=current)
    fig, body = figure_with_header(title, subtitle, 3.6)
    ax = body.add_subplot()
    axes_tidy(ax, grid_axis="y")
    positions = np.asarray(grid, dtype=float)
    for i, (name, values) in enumerate(curves.items()):
        ax.plot(positions, values, color=LINE_COLOURS[i % len(LINE_COLOURS)], linestyle=LINE_STYLES[i % len(LINE_STYLES)],
                marker=MARKERS[i % len(MARKERS)], markersize=3.5 if len(grid) > 12 else 5, linewidth=1.8,
                label=name)
    if current is not None:
        ax.axvline(current, color=MUTED, linestyle=":", linewidth=1.2)
        ax.annotate("this row", (current, 1.0), xytext=(3, -2), textcoords="offset points", fontsize=FONT_SIZE - 0.5,
                    color=INK, va="top")
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel(wrap(f"Probability of {class_name}", 26))
    ax.set_xlabel(wrap(feature, 70))
    number_axis(ax.xaxis, bins=5)
    number_axis(ax.yaxis, bins=5, percent_values=True)
    _legend(ax, curves)
    return fig


def _categories_dots(grid: Sequence[float], labels: Sequence[str], curves: Mapping[str, Sequence[float]], *,
                     feature: str, class_name: str, title: str, subtitle: str, current: float | None) -> Figure:
    """One row per category (in the data's order), one dot per classifier, the row's own category marked."""
    codes = np.asarray(grid, dtype=float)
    mine = int(np.argmin(np.abs(codes - current))) if current is not None and len(codes) else None
    texts = [wrap(label, CATEGORY_CHARS) + (f"\n{THIS_ROW}" if k == mine else "") for k, label in enumerate(labels)]
    pitch = row_pitch(texts, 0.3)
    fig, body = figure_with_header(title, subtitle, max(2.4, pitch * len(texts) + 1.7))
    ax = body.add_subplot()
    axes_tidy(ax, grid_axis="y")
    y = np.arange(len(texts))[::-1]  # the first category at the top
    count = max(len(curves), 1)
    dodge = min(0.6 / count, 0.16)  # classifiers side by side within a category's row, never on top of each other
    for i, (name, values) in enumerate(curves.items()):
        ax.plot(values, y + (i - (count - 1) / 2) * dodge, linestyle="none", marker=MARKERS[i % len(MARKERS)],
                markersize=5, color=LINE_COLOURS[i % len(LINE_COLOURS)], label=name)
    if mine is not None:
        ax.axhspan(y[mine] - 0.5, y[mine] + 0.5, color="#EFEFEF", zorder=0)
    ax.set_yticks(y, texts)
    if mine is not None:
        ax.get_yticklabels()[mine].set_fontweight("bold")
    ax.set_ylim(-0.6, len(texts) - 0.4)
    ax.set_xlim(-0.02, 1.02)
    number_axis(ax.xaxis, bins=5, percent_values=True)
    ax.set_xlabel(wrap(f"Probability of {class_name}", 40))
    ax.set_ylabel(wrap(feature, max(12, int(pitch * len(texts) / 0.08))))
    _legend(ax, curves)
    return fig


def _legend(ax: Axes, curves: Mapping[str, Sequence[float]]) -> None:
    handles = [Line2D([], [], color=line.get_color(), linestyle=line.get_linestyle(), marker=line.get_marker(),
                      label=line.get_label()) for line in ax.get_lines()[:len(curves)]]
    legend_above(ax, handles, width=WIDTH * 0.75)


def whatif_alt_text(*, feature: str, class_name: str, labels: Sequence[str], lines: Mapping[str, Sequence[float]],
                    row: int | None, categorical: bool = False) -> str:
    """In words: a number's curve from its first value to its last; a category's highest and lowest value, since
    categories have no order to go "from" and "to"."""
    where = f"row {row}" if row is not None else "the test rows on average"
    if categorical:
        parts = [f"{name} {percent(max(values))} whatever the value" if percent(max(values)) == percent(min(values))
                 else f"{name} highest at {labels[int(np.argmax(values))]} ({percent(max(values))}), "
                      f"lowest at {labels[int(np.argmin(values))]} ({percent(min(values))})" for name, values in lines.items()]
        return (f"Probability of {class_name} for {where} with each value of {feature}: " + "; ".join(parts) + ".")
    parts = [f"{name} goes from {percent(values[0])} at {labels[0]} to {percent(values[-1])} at {labels[-1]} "
             f"(lowest {percent(min(values))}, highest {percent(max(values))})" for name, values in lines.items()]
    return f"Probability of {class_name} for {where} as {feature} changes: " + "; ".join(parts) + "."
