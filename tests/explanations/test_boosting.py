"""XGBoost and LightGBM: their own TreeSHAP contributions agree with shap's TreeExplainer on real tables."""

from __future__ import annotations

import numpy as np
import pytest

from explanations.ml.classifiers import classifier_fit, predictor_build
from explanations.ml.explainers.shap import ShapExplainer
from explanations.ml.tabular import frame_encode, labels_encode, space_build
from explanations.ml.trust import model_output
from tests.explanations.conftest import DATASETS

FAST = {"n_estimators": 30, "max_depth": 3}


@pytest.fixture(scope="module")
def adult_rows():
    """600 rows of Adult, as the web side hands them over (spaces stripped): encoded rows and income codes."""
    import pandas as pd

    frame = pd.read_csv(DATASETS / "adult.csv", nrows=600, skipinitialspace=True)
    features = [c for c in frame.columns if c != "income"]
    categorical = [c for c in features if frame[c].dtype == object]
    space = space_build(frame, features=features, categorical=categorical, class_names=["<=50K", ">50K"])
    return space, frame_encode(space, frame), labels_encode(frame["income"], ["<=50K", ">50K"])


def _shap_reference(key: str, model, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """shap's TreeExplainer on the library's own model: values (n, d, outputs), base (outputs,)."""
    import shap

    estimator = model.named_steps["model"].estimator_
    explainer = shap.TreeExplainer(estimator if key == "xgboost" else estimator.booster_)
    values = np.asarray(explainer.shap_values(X))
    values = values[:, :, None] if values.ndim == 2 else values
    return values, np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))


@pytest.mark.parametrize("key", ["xgboost", "lightgbm"])
@pytest.mark.parametrize("table", ["heart_table", "zoo_table"])
def test_native_contributions_equal_shaps_tree_explainer(key, table, request):
    """Heart (5 classes, some rare) and Zoo (7 classes): the same values and base values to 1e-6."""
    data = request.getfixturevalue(table)
    model = classifier_fit(key, FAST, data.space, data.X_train, data.y_train, seed=0)
    transformed = model.named_steps["prep"].transform(data.X_test[:15])
    values, base = model.named_steps["model"].tree_contributions(transformed)
    expected_values, expected_base = _shap_reference(key, model, transformed)
    assert values.shape == expected_values.shape
    np.testing.assert_allclose(values, expected_values, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(base, expected_base, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("key", ["xgboost", "lightgbm"])
def test_shap_explainer_uses_the_native_path_and_adds_up_to_the_margin(key, adult_rows):
    """Adult (two classes): ``auto`` picks the tree path; values + base = the model's log-odds of the row's class."""
    space, X, y = adult_rows
    model = classifier_fit(key, FAST, space, X[:500], y[:500], seed=0)
    predictor = predictor_build(key, model, space)
    explainer = ShapExplainer(background_size=20).fit(X[:500], predictor, space, seed=0)
    results = explainer.explain(X[500:505], [500, 501, 502, 503, 504])
    transformed = model.named_steps["prep"].transform(X[500:505])
    values, base = _shap_reference(key, model, transformed)
    assert values.shape[2] == 1  # one output, towards ">50K"
    for i, (x, result) in enumerate(zip(X[500:505], results)):
        assert result.data["algorithm"] == "tree" and result.data["output"] == "log-odds"
        total = sum(result.data["values"].values()) + result.data["base_value"]
        assert total == pytest.approx(model_output(predictor, x, result.predicted, "log-odds"), abs=1e-4)
        sign = 1 if result.predicted == 1 else -1
        assert total == pytest.approx(sign * (values[i, :, 0].sum() + base[0]), abs=1e-5)


def test_a_class_missing_from_training_gets_probability_zero(heart_table):
    """XGBoost wants codes 0..k-1; trained without class 4 the wrapper still answers for all five classes."""
    keep = heart_table.y_train != 4
    model = classifier_fit("xgboost", FAST, heart_table.space, heart_table.X_train[keep], heart_table.y_train[keep], seed=0)
    proba = predictor_build("xgboost", model, heart_table.space).predict_proba(heart_table.X_test[:10])
    assert proba.shape == (10, 5)
    assert np.all(proba[:, 4] == 0) and np.allclose(proba.sum(axis=1), 1.0)
