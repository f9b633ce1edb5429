"""LIME on an image as its tutorials draw it, beside the heat map: the top regions shown with the rest greyed out,
and the strongest regions marked for (blue) and against (orange) the class, with their outlines.

It reads what ``LimeImageExplainer`` saved: the superpixels, one weight map per explained class, and the
number of regions asked for (``num_features``). Figure API only.
"""

from __future__ import annotations

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from explanations.ml.explainers.base import ExplanationResult, FeatureSpace
from explanations.ml.plots.image import (
    PANEL,
    PANEL_CHARS,
    attribution_show,
    image_alt_opening,
    image_grey,
    image_show,
    panel_title,
)
from explanations.ml.plots.style import AWAY, FONT_SIZE, LINE, TOWARDS, figure_with_header, lines_of, percent, wrap

GREY = 0.5  # what a hidden region shows: mid grey, so dark and light strokes both read as "not this"


def region_weights(explanation: ExplanationResult) -> tuple[int, np.ndarray, dict[int, float]]:
    """The explained class, its weight map (h, w) and each superpixel's weight."""
    data = explanation.data
    explained = data.get("target", data["label"])
    classes = list(data["attribution_classes"])
    maps = np.asarray(explanation.attribution, dtype=np.float64)
    value_map = maps[classes.index(explained)] if explained in classes else maps[0]
    segments = np.asarray(explanation.segments)
    weights = {int(r): float(value_map[segments == r].mean()) for r in np.unique(segments)}
    return explained, value_map, weights


def top_count(explanation: ExplanationResult) -> int:
    return int(explanation.meta.get("num_features", 5))


def lime_image_plot(explanation: ExplanationResult, space: FeatureSpace, *, title: str, subtitle: str = "") -> Figure:
    """The image | the weights as a heat map | the top regions alone | the strongest regions for and against."""
    explained, value_map, weights = region_weights(explanation)
    segments = np.asarray(explanation.segments)
    k = top_count(explanation)
    name = space.class_names[explained]
    positive = [r for r, w in sorted(weights.items(), key=lambda rw: -rw[1]) if w > 0][:k]
    strongest = [r for r, w in sorted(weights.items(), key=lambda rw: -abs(rw[1])) if w != 0][:k]
    titles = ["The image", f"Weights for {name} ({percent(explanation.probabilities[explained])})",
              f"Top {len(positive)} region{'s' if len(positive) != 1 else ''} for {name}, the rest greyed out",
              f"Strongest {len(strongest)}: for {name} (blue) and against (orange)"]
    titles = [wrap(t, PANEL_CHARS - 6) for t in titles]
    fig, body = figure_with_header(title, subtitle, PANEL * 0.78 + 0.75 + LINE * (lines_of(titles) - 1))
    axes = body.subplots(1, 4)
    image = np.asarray(explanation.image, dtype=np.float64)
    image_show(axes[0], image)
    vmax = float(np.abs(value_map).max()) or 1.0
    attribution_show(axes[1], image, value_map, vmax, segments)

    kept = np.isin(segments, positive)
    image_show(axes[2], np.where(kept[..., None], image, GREY))
    if kept.any():
        axes[2].contour(kept.astype(float), levels=[0.5], colors=TOWARDS, linewidths=1.2)

    signs = np.zeros(segments.shape)
    for region in strongest:
        signs[segments == region] = 1.0 if weights[region] > 0 else -1.0
    axes[3].imshow(image_grey(image), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes[3].imshow(np.ma.masked_where(signs == 0, signs), cmap=ListedColormap([AWAY, TOWARDS]), vmin=-1, vmax=1,
                   alpha=0.55, interpolation="nearest")
    for sign, colour in ((1.0, TOWARDS), (-1.0, AWAY)):
        if (signs == sign).any():
            axes[3].contour((signs == sign).astype(float), levels=[0.5], colors=colour, linewidths=1.2)
    axes[3].set_xticks([])
    axes[3].set_yticks([])
    for ax, text in zip(axes, titles):
        panel_title(ax, text)
        ax.title.set_fontsize(FONT_SIZE - 1)
    # Wrapped: a long class name must stay inside the figure (tests/explanations/test_plot_layout.py).
    body.legend(handles=[Patch(color=TOWARDS, label=wrap(f"towards {name}", 34)),
                         Patch(color=AWAY, label=wrap(f"away from {name}", 34))],
                loc="lower center", ncols=2, fontsize=FONT_SIZE - 1, frameon=False)
    return fig


def lime_image_alt_text(explanation: ExplanationResult, space: FeatureSpace) -> str:
    explained, _, weights = region_weights(explanation)
    _, opening = image_alt_opening(explanation, space)
    name = space.class_names[explained]
    k = top_count(explanation)
    positive = sum(1 for w in sorted(weights.values(), reverse=True)[:k] if w > 0)
    against = sum(1 for w in weights.values() if w < 0)
    regions = explanation.data.get("top_regions", [])[:2]
    where = "; ".join(f"rows {r['box'][0]}–{r['box'][2]}, columns {r['box'][1]}–{r['box'][3]} "
                      f"({'towards' if r['value'] > 0 else 'away from'} {name})" for r in regions)
    return (f"{opening} LIME weights {len(weights)} regions for {name}; strongest: {where or 'none'}. "
            f"A second view shows only the top {positive} regions for {name} with the rest greyed out, "
            f"a third marks the strongest regions for it in blue and the {against} against it in orange.")
