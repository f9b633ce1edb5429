"""Image explanations drawn: the image, then what pushed it towards the predicted class and towards the runner-up.

Blue marks pixels or superpixels that push towards the class named above the panel, orange those that
push away (the colours of every other plot); the scale bar gives the numbers, so colour is not the only signal.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from skimage.segmentation import find_boundaries

from explanations.ml.explainers import explainer_for
from explanations.ml.explainers.base import ExplanationResult, FeatureSpace
from explanations.ml.plots.style import (
    AWAY,
    FONT_SIZE,
    INK,
    LINE,
    TOWARDS,
    figure_with_header,
    lines_of,
    number_axis,
    percent,
    wrap,
)

ATTRIBUTION_CMAP = LinearSegmentedColormap.from_list("away_towards", [AWAY, "#FFFFFF", TOWARDS])
PANEL = 1.9  # inches per image panel
PANEL_CHARS = 26  # a panel title's line


def image_grey(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=np.float64)
    return image[..., 0] if image.shape[-1] == 1 else image.mean(axis=-1)


def image_show(ax: Axes, image: np.ndarray, *, dim: float = 1.0) -> None:
    image = np.asarray(image, dtype=np.float64)
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0] * dim, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(np.clip(image[..., :3] * dim, 0, 1), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def attribution_show(ax: Axes, image: np.ndarray, value_map: np.ndarray, vmax: float,
                     segments: np.ndarray | None = None):
    """The map over a faint copy of the image, so the strokes stay visible under the colours."""
    ax.imshow(image_grey(image), cmap="gray_r", vmin=0, vmax=1, alpha=0.35, interpolation="nearest")
    shown = ax.imshow(value_map, cmap=ATTRIBUTION_CMAP, vmin=-vmax, vmax=vmax, alpha=0.85, interpolation="nearest")
    if segments is not None:
        edges = np.ma.masked_where(~find_boundaries(segments, mode="inner"), np.ones(segments.shape))
        ax.imshow(edges, cmap="Greys", vmin=0, vmax=1.5, alpha=0.35, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    return shown


def class_maps(explanation: ExplanationResult) -> list[tuple[int, np.ndarray]]:
    return attribution_class_maps(explanation.attribution, explanation.data)


def attribution_class_maps(attribution: np.ndarray, data: dict) -> list[tuple[int, np.ndarray]]:
    """(class, (h, w) map) for the explained class (the chosen one, else the predicted) and the runner-up, channels summed."""
    attribution = np.asarray(attribution, dtype=np.float64)
    if attribution.ndim == 4:
        attribution = attribution.sum(axis=-1)
    classes = list(data["attribution_classes"])
    wanted = list(dict.fromkeys([data.get("target", data["label"]), data.get("runner_up", data["label"])]))
    return [(c, attribution[classes.index(c)]) for c in wanted if c in classes]


def class_role(cls: int, data: dict) -> str:
    """What a map's class is to this image: the predicted class, the class a person chose, or the runner-up."""
    if cls == data["label"]:
        return "predicted"
    return "chosen class" if cls == data.get("target") else "runner-up"


# Maps per class in the "why this class, why not the others" grid (the job's classes beyond these are left out).
CLASS_GRID_MAX = 20
GRID_COLUMNS = 5


def class_grid_draw(body, explanation: ExplanationResult, space: FeatureSpace) -> None:
    """One small map per class on one colour scale: where the evidence for each class lies on this image."""
    attribution = np.asarray(explanation.attribution, dtype=np.float64)
    maps = attribution.sum(axis=-1) if attribution.ndim == 4 else attribution
    classes = list(explanation.data["attribution_classes"])[:CLASS_GRID_MAX]
    rows = -(-len(classes) // GRID_COLUMNS)
    axes = body.subplots(rows, GRID_COLUMNS, squeeze=False)
    vmax = float(np.abs(maps[: len(classes)]).max()) or 1.0
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, (i, cls) in zip(axes.ravel(), enumerate(classes)):
        ax.set_axis_on()
        attribution_show(ax, explanation.image, maps[i], vmax)
        mark = " ★" if cls == explanation.data.get("target", explanation.data["label"]) else ""
        ax.set_title(wrap(f"{space.class_names[cls]}{mark} {percent(explanation.probabilities[cls])}", 16),
                     fontsize=FONT_SIZE - 1, color=INK)
    body.suptitle("Why this class, why not each other class (★ the class explained above; one colour scale)",
                  fontsize=FONT_SIZE, color=INK)


def has_class_grid(explanation: ExplanationResult) -> bool:
    return explanation.attribution is not None and len(explanation.data.get("attribution_classes", [])) > 2


def panel_title(ax: Axes, text: str) -> None:
    ax.set_title(wrap(text, PANEL_CHARS), fontsize=FONT_SIZE, color=INK, loc="center")


def image_attribution_plot(explanation: ExplanationResult, space: FeatureSpace, *, title: str, subtitle: str = "") -> Figure:
    """Input | towards the explained class | towards the runner-up ("why 4, and why not 9"); below, when the method
    mapped every class, a small map per class."""
    maps = class_maps(explanation)
    titles = [wrap(f"For {space.class_names[cls]} ({class_role(cls, explanation.data)}, "
                   f"{percent(explanation.probabilities[cls])})", PANEL_CHARS) for cls, _ in maps]
    top_height = PANEL + 0.9 + LINE * (lines_of(titles) - 1)
    grid_rows = -(-min(len(explanation.data.get("attribution_classes", [])), CLASS_GRID_MAX) // GRID_COLUMNS)
    grid_height = grid_rows * 1.35 + 0.35 if has_class_grid(explanation) else 0.0
    fig, outer = figure_with_header(title, subtitle, top_height + grid_height)
    body = outer
    if grid_height:
        body, grid_body = outer.subfigures(2, 1, height_ratios=[top_height, grid_height])
        class_grid_draw(grid_body, explanation, space)
    axes = body.subplots(1, len(maps) + 1, squeeze=False)[0]
    image_show(axes[0], explanation.image)
    panel_title(axes[0], "The image")
    vmax = max(float(np.abs(m).max()) for _, m in maps) or 1.0
    segments = explanation.segments
    shown = None
    for ax, (_, value_map), text in zip(axes[1:], maps, titles):
        shown = attribution_show(ax, explanation.image, value_map, vmax, segments)
        panel_title(ax, text)
    if shown is not None:
        unit = {"logit": "attribution to the score (logit)", "probability": "weight on the probability"}
        bar = body.colorbar(shown, ax=list(axes[1:]), orientation="horizontal", fraction=0.08, pad=0.04, aspect=30)
        bar.set_label(f"{unit.get(explanation.data.get('output'), 'attribution')}: blue towards, orange away",
                      fontsize=FONT_SIZE - 0.5)
        bar.ax.tick_params(labelsize=FONT_SIZE - 1)
        number_axis(bar.ax.xaxis, bins=4)
    return fig


def image_anchor_plot(explanation: ExplanationResult, space: FeatureSpace, *, title: str, subtitle: str = "") -> Figure:
    """Input | only the anchor's superpixels, the rest dimmed: keep these and the prediction holds."""
    data = explanation.data
    class_name = space.class_names[data["label"]]
    fig, body = figure_with_header(title, subtitle, PANEL + 0.8)
    axes = body.subplots(1, 2)
    image_show(axes[0], explanation.image)
    panel_title(axes[0], "The image")
    kept = np.asarray(explanation.attribution, dtype=np.float64)[0] > 0
    image_show(axes[1], explanation.image, dim=0.25)
    axes[1].imshow(np.ma.masked_where(~kept, image_grey(explanation.image)), cmap="gray", vmin=0, vmax=1,
                   interpolation="nearest")
    if kept.any():
        axes[1].contour(kept.astype(float), levels=[0.5], colors=TOWARDS, linewidths=1.6)
    n = len(data.get("rule", []))
    panel_title(axes[1], f"Keep {'these ' + str(n) + ' regions' if n != 1 else 'this region'} (outlined) → {class_name}")
    axes[1].set_xlabel(wrap(f"Precision {percent(data['precision'])}; the regions are kept in "
                            f"{percent(data['coverage'])} of perturbed images", 44), fontsize=FONT_SIZE - 0.5, color=INK)
    return fig


def image_alt_opening(explanation: ExplanationResult, space: FeatureSpace) -> tuple[str, str]:
    class_name = space.class_names[explanation.data["label"]]
    return class_name, f"Predicted {class_name} ({percent(explanation.probabilities[explanation.predicted])})."


def image_anchor_alt_text(explanation: ExplanationResult, space: FeatureSpace) -> str:
    data = explanation.data
    _, opening = image_alt_opening(explanation, space)
    return (f"{opening} Anchor: keeping {len(data.get('rule', []))} of {data.get('n_regions', '?')} regions keeps the "
            f"prediction with precision {percent(data['precision'])}.")


def image_attribution_alt_text(explanation: ExplanationResult, space: FeatureSpace) -> str:
    data = explanation.data
    _, opening = image_alt_opening(explanation, space)
    class_name = space.class_names[data.get("target", data["label"])]
    regions = data.get("top_regions", [])[:2]
    where = "; ".join(f"rows {r['box'][0]}–{r['box'][2]}, columns {r['box'][1]}–{r['box'][3]} "
                      f"({'towards' if r['value'] > 0 else 'away from'} {class_name})" for r in regions)
    runner_up = space.class_names[data.get("runner_up", data["label"])]
    target = data.get("target", data["label"])
    chosen = f" It maps the evidence for {space.class_names[target]}, the class chosen." if target != data["label"] else ""
    grid = (f" Below, one map per class ({len(data['attribution_classes'])} classes) shows why this class and not another."
            if len(data.get("attribution_classes", [])) > 2 else "")
    return (f"{opening}{chosen} {explanation.method.replace('_', ' ')} map; strongest regions: {where or 'none'}. "
            f"A second map shows the evidence for the runner-up, {runner_up}.{grid}")


def image_comparison_plot(images: Sequence[np.ndarray], rows: Sequence[str], maps: dict[str, Sequence[np.ndarray | None]],
                          *, title: str, subtitle: str = "") -> Figure:
    """Every explainer on the same images: one row per image, one column per explainer (predicted class)."""
    methods = list(maps)
    fig, body = figure_with_header(title, subtitle, 1.25 * len(images) + 0.4, width=max(6.0, 1.25 * (len(methods) + 1)))
    axes = body.subplots(len(images), len(methods) + 1, squeeze=False)
    for i, (image, label) in enumerate(zip(images, rows)):
        image_show(axes[i, 0], image)
        axes[i, 0].set_ylabel(wrap(label, 14), fontsize=FONT_SIZE - 1, color=INK)
        for j, method in enumerate(methods, start=1):
            value_map = maps[method][i]
            if value_map is None:
                axes[i, j].set_axis_off()
                continue
            vmax = float(np.abs(value_map).max()) or 1.0
            attribution_show(axes[i, j], image, value_map, vmax)
    axes[0, 0].set_title("image", fontsize=FONT_SIZE, color=INK)
    for j, method in enumerate(methods, start=1):
        axes[0, j].set_title(wrap(method, 14), fontsize=FONT_SIZE, color=INK)
    return fig


def image_alt_text(explanation: ExplanationResult, space: FeatureSpace) -> str:
    """The alt text of an image's explanation, from its explainer's own ``alt_text_function``."""
    from explanations.ml.plots import explanation_alt

    return explanation_alt(explainer_for(explanation.method, "image"), explanation, space)


def __getattr__(name: str):
    if name == "IMAGE_PLOTTERS":  # each image explainer's plot function, by key, from the registry
        from explanations.ml.plots import variant_plotters

        return variant_plotters("image")
    raise AttributeError(name)
