"""Every plot fits and reads: long names, many categories and long class names stay inside the figure, tick labels
never overlap, and no number is drawn in scientific notation (issue 17, item 8).

Each plot is laid out and drawn with the Agg renderer exactly as ``figure_render`` draws its PNG; then every visible
text artist's window extent is compared with the figure's, and the tick labels of each axis with one another.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import combinations
from unittest import mock

import matplotlib
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from explanations.ml.explainers import EXPLAINER_VARIANTS, explainer_for
from explanations.ml.explainers.base import ExplanationResult, FeatureSpace
from explanations.ml.explainers.image import ImageExplanation
from explanations.ml.plots import (
    PNG_DPI,
    confusion_matrix_plot,
    explanation_figure,
    importance_bar_plot,
    shap_summary_plot,
)
from explanations.ml.plots.image import image_comparison_plot
from explanations.ml.plots.style import PLAIN_TEXT_RC
from explanations.ml.plots.whatif import whatif_plot

HOURS = "number of hours worked per week, as the respondent reported it"
WEIGHT = "final sampling weight given by the census bureau (fnlwgt)"
OCCUPATION = "occupation group as coded by the census interviewer on the form"
NUMERIC = [HOURS, WEIGHT] + [f"survey answer number {k} about the household finances" for k in range(1, 10)]
CATEGORIES = [f"{word}-and-related-occupations" for word in (
    "Adm-clerical", "Armed-Forces", "Craft-repair", "Exec-managerial", "Farming-fishing", "Handlers-cleaners",
    "Machine-op-inspct", "Other-service", "Priv-house-serv", "Prof-specialty", "Protective-serv", "Sales",
    "Tech-support", "Transport-moving", "Teaching", "Nursing", "Engineering", "Legal", "Media", "Research")]
FEATURES = NUMERIC + [OCCUPATION]
CLASSES = ["Earns more than fifty thousand dollars a year", "Earns at most fifty thousand dollars a year"]
MANY_CLASSES = [f"{name} (a long class name, number {k})" for k, name in enumerate(
    ["Mammal", "Bird", "Reptile", "Fish", "Amphibian", "Insect", "Invertebrate", "Mollusc", "Crustacean", "Arachnid",
     "Marsupial", "Rodent", "Primate", "Cetacean", "Raptor", "Songbird", "Lizard", "Shark", "Frog", "Beetle"])]
SPACE = FeatureSpace(feature_names=FEATURES, categorical=[len(FEATURES) - 1],
                     categories={len(FEATURES) - 1: CATEGORIES + ["(missing)"]}, class_names=CLASSES,
                     medians={j: 40.0 for j in range(len(NUMERIC))})
MANY_SPACE = FeatureSpace(feature_names=FEATURES, categorical=[], categories={}, class_names=MANY_CLASSES)
TITLE = ("Why row 12,345 (a person with a rather long description of who they are) is predicted "
         f"{CLASSES[0]} — gradient boosting, SHAP")
SHOUTED = "WHY ROW 244 (WOMBAT, MAMMOTH OR WALRUS) IS PREDICTED MAMMAL — MULTI-LAYER PERCEPTRON, SHAP"  # wide letters
SUBTITLE = "tree algorithm · probability output · 200 background rows · seed 0 · stability over 5 reruns"
SCIENTIFIC = re.compile(r"\d[eE][+-]?\d")
SLACK = 1.0  # pixels: anti-aliasing may reach a pixel over an edge
TICK_GAP = 3.0  # pixels (at 150 dpi) at least between two tick labels of one axis, so they read as two


def _tabular(method: str) -> ExplanationResult:
    probabilities = [0.62, 0.38]
    # The MLP's gradient methods store LIME's shape ([[condition, weight], ...]) and draw with LIME's plot.
    if method == "lime" or explainer_for(method, "tabular").plot_function.endswith(":lime_plot"):
        data = {"label": 0, "weights": [
            [f"{HOURS} > 45.00", 0.21], [f"129243.50 < {WEIGHT} <= 200000.00", -0.12],
            [f"{OCCUPATION} = {CATEGORIES[6]}", 0.09], *[[f"{name} <= 0.00", -0.01 * k] for k, name in
                                                        enumerate(NUMERIC[2:9], start=1)]],
            "feature_of": FEATURES[:10]}
    elif method == "anchor":
        data = {"label": 0, "rule": [f"{HOURS} > 45.00", f"{OCCUPATION} = {CATEGORIES[6]}",
                                     f"129243.50 < {WEIGHT} <= 200000.00"],
                "precision": 0.971, "coverage": 0.003, "threshold": 0.95, "meets_threshold": True}
    else:  # shap, as a job stored it before numbers were tidied: "1.292e+05"
        values = {name: 0.3 / (k + 1) * (-1) ** k for k, name in enumerate(FEATURES)}
        feature_values = {name: "40" for name in NUMERIC} | {WEIGHT: "1.292e+05", OCCUPATION: CATEGORIES[6]}
        data = {"label": 0, "values": values, "base_value": -2.466, "feature_values": feature_values,
                "algorithm": "tree", "output": "log-odds"}
    return ExplanationResult(method, 12345, 0, probabilities, data)


MESSAGE = ("Congratulations!!! You have been selected to receive a guaranteed prize of 1000000 pounds; call "
           "08001234567890 now or reply WINNERWINNERWINNERWINNERWINNERWINNERWINNER to claim before midnight " * 3)


def _text(method: str) -> ExplanationResult:
    words = [["WINNERWINNERWINNERWINNERWINNERWINNERWINNER", 0.31], ["08001234567890", 0.2], ["guaranteed", 0.11],
             ["Congratulations", -0.05], ["midnight", -0.02]]
    data: dict = {"label": 0, "text": MESSAGE, "words": words}
    if method == "anchor":
        data = {"label": 0, "text": MESSAGE, "rule": ["WINNERWINNERWINNERWINNERWINNERWINNERWINNER", "guaranteed"],
                "precision": 0.93, "coverage": 0.04}
    elif method == "shap":
        data["tokens"] = [[token, 0.1 if "WINNER" in token else 0.0] for token in re.findall(r"\S+\s*", MESSAGE)]
    return ExplanationResult(method, 7, 0, [0.9, 0.1], data)


def _image(method: str) -> ImageExplanation:
    rng = np.random.default_rng(0)
    data = {"label": 0, "runner_up": 1, "attribution_classes": [0, 1], "output": "logit",
            "top_regions": [{"box": [2, 2, 10, 10], "value": 0.4, "pixels": 64}], "n_regions": 30}
    attribution = rng.normal(size=(2, 28, 28)) * 1e-4  # gradients are often tiny: no "1e-4" on the scale
    if method == "anchor":
        data |= {"rule": [1, 2, 3], "precision": 0.95, "coverage": 0.12}
        attribution = (rng.random((1, 28, 28)) > 0.7).astype(float)
    return ImageExplanation(method=method, row=3, predicted=0, probabilities=[0.55, 0.45], data=data,
                            image=rng.random((28, 28, 1)), attribution=attribution,
                            segments=np.arange(28 * 28).reshape(28, 28) // 28)


EXAMPLES = {"tabular": (_tabular, SPACE), "text": (_text, FeatureSpace(["message"], [], {}, CLASSES)),
            "image": (_image, FeatureSpace([f"pixel{k}" for k in range(784)], [], {}, CLASSES))}
TRUST = {"weight_spread": [0.05] * 10}  # LIME's error bars, so its legend has its third entry


def _variant_plots() -> dict[str, Callable[[], Figure]]:
    plots = {}
    for modality, variants in EXPLAINER_VARIANTS.items():
        build, space = EXAMPLES[modality]
        for key in variants:
            explainer = explainer_for(key, modality)
            plots[f"{modality}-{key}"] = (lambda explainer=explainer, build=build, key=key, space=space: explanation_figure(
                explainer, build(key), space, title=TITLE, subtitle=SUBTITLE, trust=TRUST))
    return plots


def _whatif(categorical: bool, *, row: bool) -> Figure:
    if categorical:
        grid = list(np.arange(len(CATEGORIES), dtype=float))
        labels = list(CATEGORIES)
    else:
        grid = list(np.linspace(12_285.0, 1_484_705.0, 20))
        labels = [f"{value:.4g}" for value in grid]
    rng = np.random.default_rng(1)
    curves = {name: list(rng.random(len(grid))) for name in ("Random forest", "Support vector machine (RBF kernel)",
                                                           "Gradient boosting", "Neural network (PyTorch MLP)")}
    return whatif_plot(grid, labels, curves, feature=OCCUPATION if categorical else WEIGHT, class_name=CLASSES[0],
                       title=TITLE, subtitle=SUBTITLE, current=(6.0 if categorical else 129_243.0) if row else None,
                       categorical=categorical)


OTHER_PLOTS: dict[str, Callable[[], Figure]] = {
    "confusion_matrix": lambda: confusion_matrix_plot(np.random.default_rng(0).integers(0, 200, size=(20, 20)),
                                                      MANY_CLASSES, title=TITLE, subtitle=SUBTITLE),
    "confusion_matrix_binary": lambda: confusion_matrix_plot(np.array([[5210, 412], [803, 1722]]), CLASSES,
                                                             title=SHOUTED, subtitle=SUBTITLE.upper()),
    "shap_summary": lambda: shap_summary_plot(np.random.default_rng(0).normal(size=(60, len(FEATURES))),
                                              np.random.default_rng(1).random((60, len(FEATURES))) * 1e5, SPACE,
                                              title=f"SHAP summary — {TITLE}", subtitle=SUBTITLE,
                                              class_name=CLASSES[0]),
    "shap_importance": lambda: importance_bar_plot(FEATURES, np.linspace(0.0001, 0.0123, len(FEATURES)), title=TITLE,
                                                   subtitle=SUBTITLE, xlabel="mean |SHAP value|"),
    "lime_importance_large": lambda: importance_bar_plot(FEATURES, np.linspace(1, 123456, len(FEATURES)), title=TITLE,
                                                         subtitle=SUBTITLE, xlabel="mean |LIME weight|"),
    "whatif_categorical": lambda: _whatif(True, row=True),
    "whatif_numeric": lambda: _whatif(False, row=True),
    "partial_dependence_categorical": lambda: _whatif(True, row=False),
    "partial_dependence_numeric": lambda: _whatif(False, row=False),
    "image_comparison": lambda: image_comparison_plot(
        [np.zeros((28, 28, 1))] * 2, [f"row 3 ({MANY_CLASSES[0]})", f"row 4 ({MANY_CLASSES[1]})"],
        {name: [np.ones((28, 28)), None] for name in ("LIME", "SHAP", "gradient_shap", "integrated_gradients")},
        title=TITLE, subtitle=SUBTITLE),
}
PLOTS = {**_variant_plots(), **OTHER_PLOTS}


def drawn_texts(figure: Figure) -> tuple[list[Text], object]:
    """Lay out and draw the figure as ``figure_render`` draws its PNG; the texts actually drawn, and the renderer.

    Recording ``Text.draw`` leaves out what is never drawn: ticks outside the view, axes switched off, empty strings.
    """
    canvas = FigureCanvasAgg(figure)
    for text in figure.findobj(Text):
        text.set_parse_math(False)
    seen: list[Text] = []
    draw = Text.draw

    def recording_draw(self: Text, renderer) -> None:
        if self.get_visible() and self.get_text().strip():
            seen.append(self)
        draw(self, renderer)

    with matplotlib.rc_context(PLAIN_TEXT_RC), mock.patch.object(Text, "draw", recording_draw):
        figure.set_dpi(PNG_DPI)
        canvas.draw()
    return list(dict.fromkeys(seen)), canvas.get_renderer()


def _inside(box: Bbox, outer: Bbox) -> bool:
    return (box.x0 >= outer.x0 - SLACK and box.y0 >= outer.y0 - SLACK and box.x1 <= outer.x1 + SLACK
            and box.y1 <= outer.y1 + SLACK)


def _apart(a: Bbox, b: Bbox, gap: float = -1.5) -> bool:
    """True when at least ``gap`` pixels separate the boxes one way or the other (a negative gap lets them touch)."""
    return a.x1 + gap <= b.x0 or b.x1 + gap <= a.x0 or a.y1 + gap <= b.y0 or b.y1 + gap <= a.y0


def _ticks_of_one_axis(a: Text, b: Text) -> bool:
    return any(a in labels and b in labels for ax in a.figure.get_axes()
               for labels in (ax.xaxis.get_ticklabels(), ax.yaxis.get_ticklabels()))


def layout_problems(figure: Figure) -> list[str]:
    texts, renderer = drawn_texts(figure)
    outer = figure.bbox
    problems = []
    for text in texts:
        box = text.get_window_extent(renderer)
        if not _inside(box, outer):
            problems.append(f"outside the figure: {text.get_text()!r} at {box.bounds} (figure {outer.bounds})")
        if SCIENTIFIC.search(text.get_text()):
            problems.append(f"scientific notation: {text.get_text()!r}")
    boxes = [text.get_window_extent(renderer) for text in texts]
    for (a, box_a), (b, box_b) in combinations(zip(texts, boxes), 2):
        if _apart(box_a, box_b) or _ticks_of_one_axis(a, b):  # tick labels are checked below, axis by axis
            continue
        problems.append(f"texts overlap: {a.get_text()!r} and {b.get_text()!r}")
    for ax in figure.get_axes():
        for axis in (ax.xaxis, ax.yaxis):
            labels = [t for t in axis.get_ticklabels() if any(t is drawn for drawn in texts)]
            boxes = [t.get_window_extent(renderer) for t in labels]
            for (a, box_a), (b, box_b) in combinations(zip(labels, boxes), 2):
                if not _apart(box_a, box_b, TICK_GAP):
                    problems.append(f"tick labels overlap: {a.get_text()!r} and {b.get_text()!r}")
    return problems


@pytest.mark.parametrize("plot", PLOTS)
def test_every_text_fits_inside_the_figure_and_nothing_overlaps(plot: str) -> None:
    problems = layout_problems(PLOTS[plot]())
    assert not problems, f"{plot}: " + "; ".join(problems[:6]) + (f" (+{len(problems) - 6} more)" if len(problems) > 6 else "")


def test_every_registered_explainer_plot_is_checked() -> None:
    """A new explainer or modality joins the layout check without anyone listing it."""
    assert {f"{m}-{k}" for m, variants in EXPLAINER_VARIANTS.items() for k in variants} <= set(PLOTS)


def test_the_check_sees_a_label_outside_the_figure_and_overlapping_ticks() -> None:
    """The checker itself can fail: a text past the right edge, two labels on one tick position, a value written
    over another text, a number in scientific notation."""
    figure = Figure(figsize=(3, 2))
    ax = figure.add_subplot()
    ax.set_xticks([0.5, 0.5001], ["overlapping", "overlapping"])
    figure.text(0.9, 0.5, "this runs off the right edge of the figure")
    ax.text(0.1, 0.5, "a label")
    ax.text(0.12, 0.5, "1.292e+05")
    problems = layout_problems(figure)
    assert any("outside the figure" in p for p in problems)
    assert any("tick labels overlap" in p for p in problems)
    assert any(p.startswith("texts overlap: 'a label'") for p in problems)
    assert any("scientific notation: '1.292e+05'" in p for p in problems)


def test_the_waterfall_axis_keeps_its_numbers_on_one_line() -> None:
    """Not "average -2.466 → th / row 0.911": a long class name wraps, the numbers stay together."""
    figure = PLOTS["tabular-shap"]()
    drawn_texts(figure)
    label = figure.axes[0].get_xlabel()
    assert "average -2.47 → this row -2.27" in label.split("\n")


def test_numbers_read_as_people_write_them() -> None:
    from explanations.ml.plots.style import condition_pretty, number_pretty, number_text

    assert [number_text(v) for v in (129243, 129243.5, 0.0012345, 2010, -12345.678, 37.25, 0.0, 1e20)] == [
        "129,243", "129,244", "0.001234", "2010", "-12,346", "37.25", "0", "100,000,000,000,000,000,000"]
    assert number_pretty("1.292e+05") == "129,200" and number_pretty("Private") == "Private"
    assert condition_pretty("129243.50 < fnlwgt <= 2e+05", 99) == "129,244 < fnlwgt ≤ 200,000"
    assert condition_pretty("year = 2010", 99) == "year = 2010"  # after "=" comes a category, drawn as typed
    assert condition_pretty("pixel12 <= 0.50", 99) == "pixel12 ≤ 0.5"


def test_alt_texts_write_numbers_as_the_plots_do() -> None:
    from explanations.ml.plots import explanation_alt

    texts = {key: explanation_alt(explainer_for(key, "tabular"), _tabular(key), SPACE) for key in ("lime", "anchor", "shap")}
    assert f"129,244 < {WEIGHT} ≤ 200,000" in texts["lime"] and f"{HOURS} > 45" in texts["anchor"]
    assert f"{WEIGHT} = 129,200" in texts["shap"]
    assert not any(SCIENTIFIC.search(text) for text in texts.values())


def test_importance_bars_leave_out_features_at_zero_and_count_them() -> None:
    """LIME picks a handful of features a row: a mean over three rows is 0 for the rest, which once filled half
    the plot with empty bars labelled 0."""
    names = ["age", "hours", "education", "sex", "race"]
    fig = importance_bar_plot(names, [0.2, 0.0, 0.1, 0.0, 0.0], title=TITLE, subtitle="3 explained rows")
    texts = [t.get_text() for t in fig.findobj(match=lambda a: hasattr(a, "get_text"))]
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks == ["age", "education"]  # largest first, drawn at the top
    assert any("3 features at 0 not shown" in t for t in texts)
    every_zero = importance_bar_plot(names, [0.0] * 5, title=TITLE)
    assert len(every_zero.axes[0].get_yticklabels()) == 1  # nothing to rank: one empty bar, no claim about the rest
