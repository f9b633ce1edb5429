"""Issue 18, "any class": an image map of every class is drawn as the grid "why this class, why not each other
class", one small map per class on one colour scale, the explained class starred."""

from __future__ import annotations

import numpy as np
from matplotlib.image import AxesImage

from explanations.ml.explainers.base import FeatureSpace
from explanations.ml.explainers.image import ImageExplanation
from explanations.ml.plots import figure_render
from explanations.ml.plots.image import image_attribution_plot

DIGITS = [f"digit {k}" for k in range(10)]
SPACE = FeatureSpace(feature_names=[f"px{i}" for i in range(64)], categorical=[], categories={}, class_names=DIGITS)


def explanation(classes: list[int], *, target: int) -> ImageExplanation:
    """Class k's map is k in the pixel (k // 8, k % 8) and 0 elsewhere: every class's evidence in its own place."""
    maps = np.zeros((len(classes), 8, 8))
    for i, k in enumerate(classes):
        maps[i, k // 8, k % 8] = float(k)
    probabilities = np.full(10, 0.02)
    probabilities[target] = 0.82
    return ImageExplanation(method="saliency", row=0, predicted=target, probabilities=probabilities.tolist(),
                            data={"label": target, "runner_up": (target + 1) % 10, "attribution_classes": classes,
                                  "output": "logit"},
                            image=np.random.default_rng(0).random((8, 8, 1)), attribution=maps)


def grid_axes(figure) -> list:
    """The grid's small maps: axes whose title names one digit (the panels above say "For digit ...")."""
    return [ax for ax in figure.get_axes() if ax.get_title().startswith("digit ")]


def test_every_class_gets_its_own_map_on_one_scale_and_the_explained_one_is_starred() -> None:
    figure = image_attribution_plot(explanation(list(range(10)), target=4), SPACE, title="Why image 0 is a 4")
    axes = grid_axes(figure)
    assert [ax.get_title().rsplit(" ", 1)[0].removesuffix(" ★") for ax in axes] == DIGITS
    assert [ax.get_title() for ax in axes if "★" in ax.get_title()] == ["digit 4 ★ 82%"]
    for k, ax in enumerate(axes):
        shown = [im for im in ax.get_images() if isinstance(im, AxesImage)][-1]  # the map over the faint image
        values = np.asarray(shown.get_array())
        assert values[k // 8, k % 8] == k and np.count_nonzero(values) == (k != 0)
        assert shown.get_clim() == (-9.0, 9.0)  # one colour scale: the largest |value| of any class
    _, svg = figure_render(figure)
    assert "Why this class, why not each other class" in svg.decode()


def test_two_classes_draw_no_grid() -> None:
    figure = image_attribution_plot(explanation([4, 5], target=4), SPACE, title="Why image 0 is a 4")
    assert grid_axes(figure) == []
    _, svg = figure_render(figure)
    assert "why not each other class" not in svg.decode()
