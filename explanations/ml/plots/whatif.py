"""What-if curves: the probability of one class as one feature sweeps its range, one line per classifier."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from explanations.ml.plots.style import FONT_SIZE, INK, MUTED, axes_tidy, figure_with_header, wrap

# Okabe-Ito, colour-blind safe; markers and dashes differ too, so colour is never the only signal.
LINE_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
LINE_STYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def whatif_plot(grid: Sequence[float], labels: Sequence[str], curves: Mapping[str, Sequence[float]], *, feature: str,
                class_name: str, title: str, subtitle: str = "", current: float | None = None,
                categorical: bool = False) -> Figure:
    """``curves`` maps a classifier's label to P(class_name) at each grid point; ``current`` marks the row's own value."""
    fig, body = figure_with_header(title, subtitle, 3.4)
    ax = body.add_subplot()
    axes_tidy(ax, grid_axis="y")
    positions = np.arange(len(grid), dtype=float) if categorical else np.asarray(grid, dtype=float)
    for i, (name, values) in enumerate(curves.items()):
        ax.plot(positions, values, color=LINE_COLOURS[i % len(LINE_COLOURS)], linestyle=LINE_STYLES[i % len(LINE_STYLES)],
                marker=MARKERS[i % len(MARKERS)], markersize=3.5 if len(grid) > 12 else 5, linewidth=1.8,
                label=name)
    if current is not None:
        where = float(np.argmin(np.abs(np.asarray(grid, dtype=float) - current))) if categorical else current
        ax.axvline(where, color=MUTED, linestyle=":", linewidth=1.2)
        ax.annotate("this row", (where, 1.0), xytext=(3, -2), textcoords="offset points", fontsize=FONT_SIZE - 0.5,
                    color=INK, va="top")
    if categorical:
        ax.set_xticks(positions, [wrap(label, 12) for label in labels], rotation=30 if len(labels) > 4 else 0,
                      ha="right" if len(labels) > 4 else "center")
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel(wrap(f"Probability of {class_name}", 30))
    ax.set_xlabel(feature)
    ax.yaxis.set_major_formatter(lambda value, _: f"{value:.0%}")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=min(3, max(len(curves), 1)), frameon=False,
              fontsize=FONT_SIZE - 0.5)
    return fig
