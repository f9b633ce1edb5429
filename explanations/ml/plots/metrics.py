"""How well a classifier did on the test rows, drawn as a confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from explanations.ml.plots.style import (
    FONT_SIZE,
    LINE,
    figure_with_header,
    lines_of,
    number_text,
    row_pitch,
    text_inches,
    wrap,
)

MANY_CLASSES = 6  # from here on the columns' names stand upright
COLUMN_CHARS = 24


def shorten(name: str, chars: int) -> str:
    return name if len(name) <= chars else name[: chars - 1].rstrip() + "…"


def confusion_matrix_plot(matrix: np.ndarray, class_names: Sequence[str], *, title: str, subtitle: str = "") -> Figure:
    """Counts in every cell; shading by the share of each true class, so small classes are as visible as big ones."""
    matrix = np.asarray(matrix, dtype=float)
    n = len(class_names)
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    many = n > MANY_CLASSES
    # Few classes: names wrapped under their columns. Many: the columns' names turned upright on one line each
    # (cut with "…" past COLUMN_CHARS; the rows, in the same order, carry every name in full).
    column_labels = [shorten(name, COLUMN_CHARS) if many else wrap(name, 14) for name in class_names]
    row_labels = [wrap(name, 28 if many else 18) for name in class_names]
    size = min(7.5, max(3.4, 0.55 * n + 2.4))
    columns_height = (max(text_inches(label, size=FONT_SIZE) for label in column_labels) if many
                      else LINE * lines_of(column_labels))  # upright names are as tall as they are wide
    rows_height = row_pitch(row_labels, 0.0) * n + columns_height + 0.9
    width = min(9.0, max(size, 4.6, 2.8 + 0.3 * n))  # cells wide enough for three-digit counts
    fig, body = figure_with_header(title, subtitle, max(size * 0.85, rows_height), width=width)
    ax = body.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1, aspect="auto")  # "equal" defeats the layout engine in subfigures
    ax.set_xticks(range(n), column_labels, rotation=90 if many else 0, ha="center")
    ax.set_yticks(range(n), row_labels)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    ax.tick_params(length=0, labelsize=FONT_SIZE)
    for spine in ax.spines.values():
        spine.set_visible(False)
    cell_font = FONT_SIZE if n <= 8 else FONT_SIZE - 2
    for i in range(n):
        for j in range(n):
            ax.text(j, i, number_text(matrix[i, j]), ha="center", va="center", fontsize=cell_font,
                    color="white" if shares[i, j] > 0.55 else "#222222")
    colourbar = body.colorbar(image, ax=ax, fraction=0.046, pad=0.03, format=lambda value, _: f"{value:.0%}")
    colourbar.set_label("Share of the true class", fontsize=FONT_SIZE - 0.5)
    colourbar.outline.set_visible(False)
    return fig
