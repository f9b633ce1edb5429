"""What-if math and its plot on known answers: a step model, a flat feature, categories and small integer columns."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from explanations.ml import whatif
from explanations.ml.explainers.base import FeatureSpace
from explanations.ml.plots import figure_render
from explanations.ml.plots.whatif import whatif_plot

SPACE = FeatureSpace(feature_names=["age", "legs", "colour"], categorical=[2], categories={2: ["red", "blue", "(missing)"]},
                     class_names=["no", "yes"], medians={0: 50.0, 1: 4.0})


def step_model(X: np.ndarray) -> np.ndarray:
    """P(yes) = 0.9 when age > 50, else 0.2; nothing else matters."""
    p = np.where(np.asarray(X)[:, 0] > 50, 0.9, 0.2)
    return np.column_stack([1 - p, p])


def test_grid_is_every_category_distinct_small_values_or_spread_percentiles():
    rng = np.random.default_rng(0)
    ages = rng.uniform(20, 80, size=500)
    grid = whatif.feature_grid(SPACE, 0, ages, points=11)
    assert len(grid) == 11 and np.all(np.diff(grid) > 0)
    assert grid[0] == pytest.approx(np.percentile(ages, 1)) and grid[-1] == pytest.approx(np.percentile(ages, 99))
    assert list(whatif.feature_grid(SPACE, 1, np.array([0, 2, 4, 4, 6, 8.0]))) == [0, 2, 4, 6, 8]
    assert whatif.grid_labels(SPACE, 2, np.array([0.0, 1.0])) == ["red", "blue"]


def test_missing_is_a_category_of_the_grid_only_when_the_data_had_missing_values():
    """Issue 17 item 7: no phantom "(missing)" point for a column without missing values."""
    assert list(whatif.feature_grid(SPACE, 2, np.array([0.0, 1.0, 1.0]))) == [0, 1]
    assert list(whatif.feature_grid(SPACE, 2, np.array([0.0, 2.0]))) == [0, 1, 2]  # code 2 is "(missing)"
    assert list(whatif.feature_grid(SPACE, 2, np.array([0.0, 1.0]), current=2.0)) == [0, 1, 2]  # the row's own value
    assert "(missing)" not in whatif.grid_labels(SPACE, 2, whatif.feature_grid(SPACE, 2, np.array([1.0, 0.0])))


def test_alt_text_of_categories_claims_no_trend():
    """Unordered categories are not "from" one "to" another: the alt text names the highest and the lowest."""
    from explanations.ml.plots.whatif import whatif_alt_text

    lines = {"Random forest": [0.35, 0.57]}
    categorical = whatif_alt_text(feature="sex", class_name="Survived", labels=["female", "male"], lines=lines, row=3,
                                  categorical=True)
    assert "goes from" not in categorical and " to " not in categorical
    assert "highest at male (57%)" in categorical and "lowest at female (35%)" in categorical
    flat = whatif_alt_text(feature="sex", class_name="Survived", labels=["female", "male"],
                           lines={"Random forest": [0.001, 0.002]}, row=3, categorical=True)
    assert "Random forest <1% whatever the value" in flat  # not "highest at female, lowest at female"
    numeric = whatif_alt_text(feature="age", class_name="Survived", labels=["20", "60"], lines=lines, row=None)
    assert "goes from 35% at 20 to 57% at 60" in numeric


def test_ice_curve_follows_the_step_and_ignores_the_unused_feature():
    x = np.array([30.0, 4.0, 1.0])
    grid = np.array([20.0, 40.0, 60.0, 80.0])
    curve = whatif.ice_curve(step_model, x, 0, grid)
    assert curve[:, 1].tolist() == pytest.approx([0.2, 0.2, 0.9, 0.9])
    assert np.allclose(curve.sum(axis=1), 1)
    flat = whatif.ice_curve(step_model, x, 1, np.array([0.0, 2.0, 8.0]))
    assert np.allclose(flat[:, 1], 0.2)
    assert x.tolist() == [30.0, 4.0, 1.0]  # the row itself is untouched


def test_partial_dependence_is_the_mean_of_the_ice_curves():
    rng = np.random.default_rng(1)
    X = np.column_stack([rng.uniform(20, 80, 40), rng.integers(0, 8, 40), rng.integers(0, 2, 40)]).astype(float)
    grid = np.array([0.0, 2.0, 8.0])
    pd_curve = whatif.partial_dependence(step_model, X, 1, grid)
    ice = np.mean([whatif.ice_curve(step_model, x, 1, grid) for x in X], axis=0)
    assert np.allclose(pd_curve, ice)
    assert np.allclose(pd_curve[:, 1], np.mean(np.where(X[:, 0] > 50, 0.9, 0.2)))  # flat: legs does not matter
    sampled = whatif.partial_dependence(step_model, X, 0, np.array([10.0, 90.0]), max_rows=5)
    assert sampled[:, 1].tolist() == pytest.approx([0.2, 0.9])
    assert whatif.curves_by_class(pd_curve, SPACE.class_names)["yes"] == [round(float(v), 6) for v in pd_curve[:, 1]]


@pytest.mark.parametrize("categorical", [False, True])
def test_overlay_plot_draws_one_line_per_classifier(categorical):
    grid = [0.0, 1.0, 2.0] if categorical else [20.0, 40.0, 60.0]
    labels = ["red", "blue", "(missing)"] if categorical else ["20", "40", "60"]
    figure = whatif_plot(grid, labels, {"Random forest": [0.1, 0.5, 0.9], "Support vector machine": [0.2, 0.3, 0.4]},
                         feature="colour" if categorical else "age", class_name="yes", title="What if", current=1.0 if categorical else 45.0,
                         categorical=categorical)
    assert isinstance(figure, Figure)
    lines = figure.axes[0].get_lines()
    if categorical:  # categories have no order: one dot per category and classifier, nothing joins them
        assert len(lines) == 2 and all(line.get_linestyle() == "None" for line in lines)
        assert [t.get_text() for t in figure.axes[0].get_yticklabels()] == ["red", "blue\n(this row)", "(missing)"]
    else:
        assert len(lines) == 3  # two classifiers and the row's marker
        assert all(line.get_linestyle() != "None" for line in lines[:2])
    png, svg = figure_render(figure)
    assert png.startswith(b"\x89PNG") and b"Random forest" in svg
