"""Multi-class tables with tiny classes, classes missing from training, and reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from explanations.ml.classifiers import CLASSIFIERS, classifier_fit, predictor_build
from explanations.ml.explainers import explainer_for
from explanations.ml.explainers.shap import shap_values_matrix
from explanations.ml.plots import figure_render, shap_summary_plot


@pytest.fixture(scope="module")
def zoo_without_reptiles(zoo_table):
    """Zoo training rows with every reptile (class 2 of 7) removed, as a small split can do."""
    keep = zoo_table.y_train != 2
    return zoo_table.X_train[keep], zoo_table.y_train[keep]


@pytest.mark.parametrize("classifier_key", [k for k, s in CLASSIFIERS.items() if "tabular" in s.modalities])
def test_absent_class_gets_a_zero_column(classifier_key: str, zoo_table, zoo_without_reptiles) -> None:
    X_train, y_train = zoo_without_reptiles
    model = classifier_fit(classifier_key, {"epochs": 20} if classifier_key == "mlp" else {}, zoo_table.space, X_train, y_train, seed=0)
    proba = predictor_build(classifier_key, model, zoo_table.space).predict_proba(zoo_table.X_test)
    assert proba.shape == (len(zoo_table.X_test), 7)
    np.testing.assert_array_equal(proba[:, 2], 0.0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("classifier_key", ["random_forest", "gradient_boosting", "logistic_regression"])
def test_shap_model_specific_paths_with_absent_class(classifier_key: str, zoo_table, zoo_without_reptiles) -> None:
    """Tree/linear SHAP index model outputs by the classes seen in training, not by class code."""
    X_train, y_train = zoo_without_reptiles
    model = classifier_fit(classifier_key, {}, zoo_table.space, X_train, y_train, seed=0)
    predictor = predictor_build(classifier_key, model, zoo_table.space)
    explainer = explainer_for("shap", "tabular")().fit(X_train, predictor, zoo_table.space, seed=0)
    rows = list(range(12))
    explanations = explainer.explain(zoo_table.X_test[:12], rows)
    algorithm = explanations[0].data["algorithm"]
    assert algorithm == {"random_forest": "tree", "gradient_boosting": "permutation", "logistic_regression": "linear"}[classifier_key]
    for explanation in explanations:
        if explanation.data["output"] == "probability":
            total = sum(explanation.data["values"].values()) + explanation.data["base_value"]
            assert total == pytest.approx(explanation.probabilities[explanation.predicted], abs=1e-3)
    for explanation in explanations:  # the stored per-class values agree with the predicted-class ones
        own = explanation.data["class_values"][explanation.predicted]
        assert own == pytest.approx(list(explanation.data["values"].values()), abs=1e-6)
    values = shap_values_matrix([e.data for e in explanations], 0)
    assert values.shape == (12, len(zoo_table.space.feature_names))
    png, svg = figure_render(shap_summary_plot(values, zoo_table.X_test[:12], zoo_table.space, title="Summary"))
    assert png.startswith(b"\x89PNG") and b"Summary" in svg


@pytest.mark.parametrize(
    ("explainer_key", "params"),
    [("lime", {"num_samples": 300}), ("anchor", {"threshold": 0.9, "max_anchor_size": 3}),
     ("shap", {"algorithm": "kernel", "background_size": 15, "nsamples": 100}),
     ("shap", {"algorithm": "permutation", "background_size": 15, "nsamples": 100})],
)
def test_explanations_repeat_for_a_seed_whatever_the_batch(explainer_key: str, params: dict, heart_table) -> None:
    model = classifier_fit("logistic_regression", {}, heart_table.space, heart_table.X_train, heart_table.y_train, seed=0)
    predictor = predictor_build("logistic_regression", model, heart_table.space)

    def run(X, rows):
        explainer = explainer_for(explainer_key, "tabular")(**params).fit(heart_table.X_train, predictor, heart_table.space, seed=5)
        return [e.data for e in explainer.explain(X, rows)]

    state = np.random.get_state()
    batch = run(heart_table.X_test[:2], [40, 41])
    assert run(heart_table.X_test[1:2], [41]) == batch[1:]
    assert np.random.get_state()[1].tolist() == state[1].tolist()  # the caller's global RNG is left alone
    if explainer_key == "shap":
        assert batch[0]["algorithm"] == params["algorithm"]
