"""Names are text, never markup: a `$` in a column or class name is drawn as typed by every plot (issue 15, item 6).

Matplotlib would read ``price_$^$`` as mathtext and fail the whole job with a ParseSyntaxException.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from matplotlib.figure import Figure

from explanations.ml.explainers.base import ExplanationResult, FeatureSpace
from explanations.ml.explainers.image import ImageExplanation
from explanations.ml.plots import (
    anchor_plot,
    confusion_matrix_plot,
    figure_render,
    importance_bar_plot,
    lime_plot,
    shap_summary_plot,
    shap_waterfall_plot,
)
from explanations.ml.plots.image import image_anchor_plot, image_attribution_plot, image_comparison_plot
from explanations.ml.plots.text import text_anchor_plot, text_weights_plot
from explanations.ml.plots.whatif import whatif_plot

COLUMN = "price_$^$"
CLASS = "$\\x$"  # backslash-x between dollars: an unknown mathtext symbol
CATEGORY = "$5^2$ deal"
SPACE = FeatureSpace(feature_names=[COLUMN, "size"], categorical=[1], categories={1: [CATEGORY, "small"]},
                     class_names=[CLASS, "cheap"])
TITLE = "Why row 1 is predicted"  # the names come from the data, not from the title


def _image(method: str, data: dict) -> ImageExplanation:
    rng = np.random.default_rng(0)
    return ImageExplanation(method=method, row=0, predicted=0, probabilities=[0.7, 0.3],
                            data={"label": 0, "runner_up": 1, "attribution_classes": [0, 1], **data},
                            image=rng.random((8, 8, 1)), attribution=rng.normal(size=(2, 8, 8)),
                            segments=np.arange(64).reshape(8, 8) // 16)


PLOTS: dict[str, tuple[Callable[[], Figure], list[str]]] = {
    "lime": (lambda: lime_plot(ExplanationResult("lime", 0, 0, [0.7, 0.3], {
        "label": 0, "weights": [[f"{COLUMN} <= 3", 0.4], [f"size = {CATEGORY}", -0.2]]}), SPACE, title=TITLE),
        [COLUMN, CLASS, CATEGORY]),
    "anchor": (lambda: anchor_plot(ExplanationResult("anchor", 0, 0, [0.7, 0.3], {
        "label": 0, "rule": [f"{COLUMN} > 2", f"size = {CATEGORY}"], "precision": 0.97, "coverage": 0.26}),
        SPACE, title=TITLE), [COLUMN, CLASS, CATEGORY]),
    "shap_waterfall": (lambda: shap_waterfall_plot(ExplanationResult("shap", 0, 0, [0.7, 0.3], {
        "label": 0, "values": {COLUMN: 0.3, "size": -0.1}, "base_value": 0.5,
        "feature_values": {COLUMN: "4", "size": CATEGORY}, "algorithm": "tree", "output": "probability"}),
        SPACE, title=TITLE), [COLUMN, CLASS, CATEGORY]),
    "shap_summary": (lambda: shap_summary_plot(np.random.default_rng(0).normal(size=(20, 2)),
                                               np.random.default_rng(1).integers(0, 2, size=(20, 2)).astype(float),
                                               SPACE, title=TITLE, class_name=CLASS), [COLUMN, CLASS]),
    "importance_bar": (lambda: importance_bar_plot([COLUMN, "size"], [0.3, 0.1], title=TITLE,
                                                   xlabel=f"mean |SHAP| for {CLASS}"), [COLUMN, CLASS]),
    "confusion_matrix": (lambda: confusion_matrix_plot(np.array([[3, 1], [0, 4]]), [CLASS, COLUMN], title=TITLE),
                         [COLUMN, CLASS]),
    "text_weights": (lambda: text_weights_plot(ExplanationResult("lime", 0, 0, [0.7, 0.3], {
        "label": 0, "text": f"buy {COLUMN} now", "words": [[COLUMN, 0.5], ["now", -0.1]]}), SPACE, title=TITLE),
        [COLUMN, CLASS]),
    "text_anchor": (lambda: text_anchor_plot(ExplanationResult("anchor", 0, 0, [0.7, 0.3], {
        "label": 0, "text": f"buy {COLUMN}", "rule": [COLUMN], "precision": 0.9, "coverage": 0.1}), SPACE,
        title=TITLE), [COLUMN, CLASS]),
    "image_attribution": (lambda: image_attribution_plot(_image("lime", {"output": "probability"}), SPACE, title=TITLE),
                          [CLASS]),
    "image_anchor": (lambda: image_anchor_plot(_image("anchor", {"rule": [0], "precision": 0.9, "coverage": 0.2}),
                                               SPACE, title=TITLE), [CLASS]),
    "image_comparison": (lambda: image_comparison_plot([np.zeros((8, 8, 1))], [CLASS], {COLUMN: [np.ones((8, 8))]},
                                                       title=TITLE), [COLUMN, CLASS]),
    "whatif": (lambda: whatif_plot([0.0, 1.0], [CATEGORY, "small"], {COLUMN: [0.2, 0.8]}, feature=COLUMN,
                                   class_name=CLASS, title=TITLE, current=0.0, categorical=True),
               [COLUMN, CLASS, CATEGORY]),
}


@pytest.mark.parametrize("plot", PLOTS)
def test_names_with_dollars_are_drawn_as_typed(plot: str) -> None:
    build, names = PLOTS[plot]
    png, svg = figure_render(build())
    assert png.startswith(b"\x89PNG")
    text = svg.decode()
    for name in names:
        assert name in text, f"{name!r} is not in the {plot} SVG as typed"


def test_titles_with_dollars_are_drawn_as_typed() -> None:
    figure = importance_bar_plot(["a"], [1.0], title=f"Why {COLUMN} is {CLASS}", subtitle=f"{CATEGORY} $$")
    _, svg = figure_render(figure)
    assert f"Why {COLUMN} is {CLASS}" in svg.decode()
    assert f"{CATEGORY} $$" in svg.decode()


def test_every_plot_function_is_covered() -> None:
    """A new plot function must join PLOTS above, so that its names are checked too."""
    import inspect

    from explanations.ml import plots
    from explanations.ml.plots import anchor, image, lime, metrics, shap, text, whatif

    functions = {name for module in (anchor, image, lime, metrics, shap, text, whatif)
                 for name, value in vars(module).items()
                 if name.endswith("_plot") and inspect.isfunction(value) and value.__module__ == module.__name__}
    covered = {build.__code__.co_names for build, _ in PLOTS.values()}
    assert functions <= {name for names in covered for name in names}
    assert plots.PLOTTERS  # the registry the job runner uses draws with the same functions
