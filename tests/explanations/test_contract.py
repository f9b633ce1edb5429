"""One contract test over every registered classifier x every registered explainer (STYLE.md, rule 3)."""

from __future__ import annotations

import io
import re

import joblib
import numpy as np
import pytest
from matplotlib.figure import Figure

from explanations.classifiers import CLASSIFIERS, classifier_fit, predictor_build
from explanations.explainers import EXPLAINER_VARIANTS, EXPLAINERS
from explanations.explainers.base import Explanation, Predictor, TabularSpace
from explanations.plots import PLOTTERS, explanation_alt_text, figure_render

# Small enough for the whole grid to run in well under a minute on two cores.
FAST_PARAMS = {
    "lime": {"num_samples": 300},
    "anchor": {"threshold": 0.9, "batch_size": 100, "beam_size": 2, "max_anchor_size": 2},
    "shap": {"background_size": 20, "nsamples": 100},
}
EXPLAINED_ROWS = 2
# Texts and images have their own contract tests (tests/explanations/test_text.py, test_image.py).
TABULAR_CLASSIFIERS = [key for key, spec in CLASSIFIERS.items() if "tabular" in spec.modalities]
TABULAR_EXPLAINERS = list(EXPLAINER_VARIANTS["tabular"])
_fitted: dict[str, object] = {}


def fitted(key: str, table) -> object:
    """Each classifier is trained once per session and shared by the explainer cases."""
    if key not in _fitted:
        _fitted[key] = classifier_fit(key, {}, table.space, table.X_train, table.y_train, seed=0)
    return _fitted[key]


def model_output(predictor: Predictor, x: np.ndarray, explanation: Explanation) -> float:
    """What the SHAP values should add up to, in the explanation's own output space."""
    label = explanation.predicted
    if explanation.data["output"] == "probability":
        return explanation.probabilities[label]
    model = predictor.tree_model if predictor.tree_model is not None else predictor.linear_model
    scores = model.decision_function(predictor.transform(x[None, :]))
    classes = list(model.classes_)
    if scores.ndim == 1:  # one log-odds for the second class; the first class's is its negation
        return float(scores[0] if label == classes[1] else -scores[0])
    return float(scores[0, classes.index(label)])


def check_lime(explanation: Explanation, space: TabularSpace) -> None:
    data = explanation.data
    weights = [w for _, w in data["weights"]]
    assert weights and len(weights) <= FAST_PARAMS["lime"].get("num_features", 5)
    assert [abs(w) for w in weights] == sorted((abs(w) for w in weights), reverse=True)
    assert len(data["feature_of"]) == len(weights)
    for (condition, _), feature in zip(data["weights"], data["feature_of"]):
        j = space.feature_names.index(feature)
        if j in space.categories:
            name, _, value = condition.partition(" = ")
            assert name == feature and value in space.categories[j], condition
        else:
            assert feature in condition and re.search(r"<=|<|>| = ", condition), condition
        assert not re.search(r"\bx\d+_\d+\b", condition)  # never encoder column names


def check_anchor(explanation: Explanation, space: TabularSpace) -> None:
    data = explanation.data
    assert 0.0 <= data["precision"] <= 1.0 and 0.0 <= data["coverage"] <= 1.0
    assert data["meets_threshold"] in (True, False) and 0.5 <= data["threshold"] <= 1.0
    assert data["precision"] >= data["threshold"] or not data["meets_threshold"]
    for condition in data["rule"]:
        assert any(name in condition for name in space.feature_names), condition
        assert re.search(r" = |<=|<|>", condition), condition
        if " = " in condition:
            feature, _, value = condition.partition(" = ")
            assert value in space.categories[space.feature_names.index(feature)], condition


def check_shap(explanation: Explanation, space: TabularSpace, predictor: Predictor, x: np.ndarray) -> None:
    data = explanation.data
    assert list(data["values"]) == space.feature_names
    assert set(data["feature_values"]) == set(space.feature_names)
    assert data["algorithm"] in {"tree", "linear", "kernel", "permutation"}
    assert data["output"] in {"probability", "log-odds"}
    total = sum(data["values"].values()) + data["base_value"]
    tolerance = 1e-2 if data["algorithm"] == "kernel" else 1e-3
    assert total == pytest.approx(model_output(predictor, x, explanation), abs=tolerance)


@pytest.mark.parametrize("explainer_key", TABULAR_EXPLAINERS)
@pytest.mark.parametrize("classifier_key", TABULAR_CLASSIFIERS)
def test_classifier_explainer_contract(classifier_key: str, explainer_key: str, heart_table) -> None:
    space = heart_table.space
    model = fitted(classifier_key, heart_table)
    predictor = predictor_build(classifier_key, model, space)
    X, rows = heart_table.X_test[:EXPLAINED_ROWS], [7, 11]

    explainer = EXPLAINERS[explainer_key](**FAST_PARAMS[explainer_key])
    assert explainer.fit(heart_table.X_train, predictor, space, seed=3) is explainer
    explanations = explainer.explain(X, rows)

    assert [e.row for e in explanations] == rows
    for x, explanation in zip(X, explanations):
        probabilities = np.array(explanation.probabilities)
        assert explanation.method == explainer_key
        assert len(probabilities) == len(space.class_names)
        assert probabilities.sum() == pytest.approx(1.0, abs=1e-6)
        assert explanation.predicted == int(np.argmax(probabilities)) == explanation.data["label"]
        assert explanation.meta["seed"] == 3
        assert {p.name for p in explainer.params} <= set(explanation.meta)
        {"lime": check_lime, "anchor": check_anchor}.get(explainer_key, lambda e, s: None)(explanation, space)
        if explainer_key == "shap":
            check_shap(explanation, space, predictor, x)

    explanation = explanations[0]
    title = f"Why row {explanation.row} is predicted {space.class_names[explanation.predicted]}"
    figure = PLOTTERS[explainer_key](explanation, space, title=title, subtitle="contract test")
    assert isinstance(figure, Figure)
    png, svg = figure_render(figure)
    assert png.startswith(b"\x89PNG")
    assert b"<svg" in svg and title.encode() in svg
    alt = explanation_alt_text(explanation, space)
    assert space.class_names[explanation.predicted] in alt


@pytest.mark.parametrize("classifier_key", TABULAR_CLASSIFIERS)
def test_classifier_survives_joblib_round_trip(classifier_key: str, heart_table) -> None:
    model = fitted(classifier_key, heart_table)
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    before = predictor_build(classifier_key, model, heart_table.space).predict_proba(heart_table.X_test)
    after = predictor_build(classifier_key, loaded, heart_table.space).predict_proba(heart_table.X_test)
    np.testing.assert_array_equal(before, after)
