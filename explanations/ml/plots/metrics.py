"""How well a classifier did on the test rows, drawn as a confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from explanations.ml.plots.style import FONT_SIZE, figure_with_header, wrap


def confusion_matrix_plot(matrix: np.ndarray, class_names: Sequence[str], *, title: str, subtitle: str = "") -> Figure:
    """Counts in every cell; shading by the share of each true class, so small classes are as visible as big ones."""
    matrix = np.asarray(matrix, dtype=float)
    n = len(class_names)
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    size = min(7.5, max(3.4, 0.55 * n + 2.4))
    fig, body = figure_with_header(title, subtitle, size * 0.85, width=max(size, 4.6))
    ax = body.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1, aspect="auto")  # "equal" defeats the layout engine in subfigures
    labels = [wrap(name, 14) for name in class_names]
    ax.set_xticks(range(n), labels, rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    ax.tick_params(length=0, labelsize=FONT_SIZE)
    for spine in ax.spines.values():
        spine.set_visible(False)
    cell_font = FONT_SIZE if n <= 8 else FONT_SIZE - 2
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize=cell_font,
                    color="white" if shares[i, j] > 0.55 else "#222222")
    colourbar = body.colorbar(image, ax=ax, fraction=0.046, pad=0.03, format=lambda value, _: f"{value:.0%}")
    colourbar.set_label("Share of the true class", fontsize=FONT_SIZE - 0.5)
    colourbar.outline.set_visible(False)
    return fig
