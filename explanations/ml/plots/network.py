"""Inside the network, drawn: a grid of feature visualisations, an image's neuron groups as coloured regions each
beside the picture its channels respond to, and an adversarial example beside the original.

Every region is numbered as well as coloured, so colour is never the only signal; attribution maps use the blue
(towards) / orange (away) of every other plot.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from explanations.ml.plots.image import attribution_show, image_grey, image_show
from explanations.ml.plots.style import FONT_SIZE, INK, figure_with_header, number_text, percent, wrap

# Okabe-Ito, then two more that stay apart from them: ten groups at most.
GROUP_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
                 "#8C564B", "#7F7F7F")
COLUMNS = 4
CELL = 1.3  # inches per small image


def stretched(image: np.ndarray) -> np.ndarray:
    """A feature visualisation with its own contrast: the pattern matters, not its absolute brightness."""
    image = np.asarray(image, dtype=np.float64)
    low, high = float(image.min()), float(image.max())
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def feature_grid_plot(images: Sequence[np.ndarray], captions: Sequence[str], *, title: str, subtitle: str = "") -> Figure:
    """One picture per channel, in rows of four, each captioned with its channel and how much it grew."""
    rows = -(-len(images) // COLUMNS)
    columns = min(COLUMNS, len(images))
    fig, body = figure_with_header(title, subtitle, rows * (CELL + 0.35), width=max(4.0, columns * CELL + 0.6))
    axes = body.subplots(rows, columns, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, image, caption in zip(axes.ravel(), images, captions):
        ax.set_axis_on()
        image_show(ax, stretched(image))
        ax.set_title(wrap(caption, 18), fontsize=FONT_SIZE - 1, color=INK)
    return fig


def feature_grid_alt(*, layer_label: str, channels: Sequence[int], start: Sequence[float], end: Sequence[float]) -> str:
    listed = ", ".join(str(c) for c in channels)
    gains = [f"channel {c}: {number_text(float(s))} → {number_text(float(e))}" for c, s, e in zip(channels, start, end)]
    return (f"{len(channels)} image{'s' if len(channels) != 1 else ''} grown from noise so that channel"
            f"{'s' if len(channels) != 1 else ''} {listed} of {layer_label} respond as strongly as they can; "
            f"each channel's mean response from the noise to the final image: {'; '.join(gains[:16])}.")


def groups_overlay(image: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """An RGB picture: each pixel tinted with the colour of the group that fires most there, as strongly as it fires."""
    grey = image_grey(image)[..., None] * np.ones(3)
    strongest = groups.argmax(axis=0)
    strength = groups.max(axis=0) / (float(groups.max()) or 1.0)
    colours = np.array([to_rgb(GROUP_COLOURS[i % len(GROUP_COLOURS)]) for i in range(len(groups))])
    tint = colours[strongest]
    alpha = (0.75 * strength)[..., None]
    faint = 0.35 + 0.5 * grey  # the strokes stay visible under the colours
    return np.clip(faint * (1 - alpha) + tint * alpha, 0, 1)


def group_centres(groups: np.ndarray) -> list[tuple[float, float] | None]:
    """Where to write each group's number: the strongest point of the region it wins."""
    strongest = groups.argmax(axis=0)
    out: list[tuple[float, float] | None] = []
    for g in range(len(groups)):
        won = np.where(strongest == g, groups[g], 0.0)
        if not won.any():
            out.append(None)
            continue
        y, x = np.unravel_index(int(won.argmax()), won.shape)
        out.append((float(x), float(y)))
    return out


def neuron_groups_plot(image: np.ndarray, groups: np.ndarray, pictures: Sequence[np.ndarray], shares: Sequence[float],
                       *, title: str, subtitle: str = "", caption: str = "") -> Figure:
    """The image, the groups over it (coloured and numbered), then per group: where it fires | what it looks for.

    ``groups`` are ``(n, h, w)`` at the image's size; ``pictures`` each group's feature visualisation."""
    n = len(groups)
    per_row = min(n, 5)
    rows = -(-n // per_row)
    fig, body = figure_with_header(title, subtitle, 2.1 + rows * 2 * (CELL * 0.8 + 0.3))
    top, bottom = body.subfigures(2, 1, height_ratios=[2.1, rows * 2 * (CELL * 0.8 + 0.3)])
    axes = top.subplots(1, 2)
    image_show(axes[0], image)
    axes[0].set_title(wrap(caption or "The image", 26), fontsize=FONT_SIZE, color=INK)
    axes[1].imshow(groups_overlay(image, groups), interpolation="nearest")
    axes[1].set_xticks([])
    axes[1].set_yticks([])
    for g, centre in enumerate(group_centres(groups)):
        if centre is not None:
            axes[1].text(*centre, str(g + 1), ha="center", va="center", fontsize=FONT_SIZE, fontweight="bold",
                         color="white", bbox={"boxstyle": "circle,pad=0.15", "fc": GROUP_COLOURS[g % 10], "ec": "white"})
    axes[1].set_title("Neuron groups over the image (numbered)", fontsize=FONT_SIZE, color=INK)
    cells = bottom.subplots(rows * 2, per_row, squeeze=False)
    for ax in cells.ravel():
        ax.set_axis_off()
    for g in range(n):
        r, c = 2 * (g // per_row), g % per_row
        where, what = cells[r, c], cells[r + 1, c]
        where.set_axis_on()
        what.set_axis_on()
        colour = np.array(to_rgb(GROUP_COLOURS[g % 10]))
        strength = groups[g] / (float(groups[g].max()) or 1.0)
        where.imshow(np.clip(1 - strength[..., None] * (1 - colour), 0, 1), interpolation="nearest")
        where.set_xticks([])
        where.set_yticks([])
        where.set_title(f"Group {g + 1} · {percent(shares[g])}", fontsize=FONT_SIZE - 1, color=INK)
        image_show(what, stretched(pictures[g]))
        what.set_title("looks for", fontsize=FONT_SIZE - 1.5, color=INK)
    return fig


def neuron_groups_alt(*, layer_label: str, shares: Sequence[float], places: Sequence[str], subject: str) -> str:
    parts = [f"group {g + 1} ({percent(s)}) {place}" for g, (s, place) in enumerate(zip(shares, places))]
    return (f"{subject}, with {len(shares)} neuron groups of {layer_label} drawn over it as numbered coloured regions: "
            f"{'; '.join(parts)}. Beside each group, the image its channels respond to most.")


def place_of(region: np.ndarray) -> str:
    """Where a region lies, in words: "mostly top left", "in the centre"."""
    height, width = region.shape
    total = float(region.sum()) or 1.0
    y = float((region.sum(axis=1) * np.arange(height)).sum() / total) / max(height - 1, 1)
    x = float((region.sum(axis=0) * np.arange(width)).sum() / total) / max(width - 1, 1)
    vertical = "top" if y < 0.38 else "bottom" if y > 0.62 else ""
    horizontal = "left" if x < 0.38 else "right" if x > 0.62 else ""
    where = " ".join(w for w in (vertical, horizontal) if w)
    return f"mostly {where}" if where else "in the centre"


def adversarial_plot(original: np.ndarray, adversarial: np.ndarray, maps: Sequence[np.ndarray], labels: Sequence[str],
                     *, epsilon: float, summary: str, title: str, subtitle: str = "") -> Figure:
    """Two rows, the original and the adversarial image: the image | its attribution map towards its prediction;
    beside the adversarial, the change itself (on a ±ε scale)."""
    fig, body = figure_with_header(title, subtitle, 2 * (CELL + 0.75) + 0.3)
    axes = body.subplots(2, 3, squeeze=False)
    vmax = max(float(np.abs(m).max()) for m in maps) or 1.0
    for i, (image, value_map, label) in enumerate(zip((original, adversarial), maps, labels)):
        image_show(axes[i, 0], image)
        axes[i, 0].set_title(wrap(label, 24), fontsize=FONT_SIZE - 0.5, color=INK)
        attribution_show(axes[i, 1], image, value_map, vmax)
        axes[i, 1].set_title("why (blue towards, orange away)", fontsize=FONT_SIZE - 1, color=INK)
    axes[0, 2].set_axis_off()
    axes[0, 2].text(0.0, 0.5, wrap(summary, 26), fontsize=FONT_SIZE - 0.5, color=INK, va="center", ha="left",
                    transform=axes[0, 2].transAxes)
    change = image_grey(adversarial) - image_grey(original)
    shown = axes[1, 2].imshow(change, cmap="PuOr", vmin=-epsilon, vmax=epsilon, interpolation="nearest")
    axes[1, 2].set_xticks([])
    axes[1, 2].set_yticks([])
    axes[1, 2].set_title("the change (±ε)", fontsize=FONT_SIZE - 1, color=INK)
    bar = body.colorbar(shown, ax=axes[1, 2], orientation="horizontal", fraction=0.08, pad=0.04)
    bar.ax.tick_params(labelsize=FONT_SIZE - 2)
    return fig


def adversarial_alt(*, before: str, after: str, target: str, reached: bool, steps: int, linf: float, epsilon: float) -> str:
    outcome = (f"after {steps} step{'s' if steps != 1 else ''} the network predicts {after}, the chosen target"
               if reached else f"after {steps} steps the network still predicts {after}, not the target {target}")
    return (f"The original image, predicted {before}, and the adversarial image, changed by at most "
            f"{number_text(linf)} per pixel (ε = {number_text(epsilon)}): {outcome}. Beside each, its attribution map; "
            "below right, the change itself.")
