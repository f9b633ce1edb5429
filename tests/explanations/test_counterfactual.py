"""Counterfactuals: the known answer on a one-feature model, Adult's rows, fixed features and bounds, the
parameters, and the batched search against DiCE's own random method on the same model and rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.counterfactual import dice_counterfactuals, sets_quality
from explanations.ml import trust
from explanations.ml.classifiers import classifier_fit, predictor_build
from explanations.ml.explainers import explainer_for
from explanations.ml.explainers.base import (
    ExplainerError,
    FeatureSpace,
    Param,
    Predictor,
    params_clean,
)
from explanations.ml.explainers.counterfactual import CounterfactualExplainer, change_sentence
from explanations.ml.params import protected_features
from explanations.ml.tabular import frame_encode, labels_encode, space_build
from tests.explanations.conftest import DATASETS

ADULT_CATEGORICAL = ["workclass", "education", "marital-status", "occupation", "relationship", "race", "sex", "native-country"]
ADULT_FIXED = ["age", "marital-status", "race", "sex", "native-country"]


@pytest.fixture(scope="module")
def adult():
    """4,000 rows of UCI Adult (no ``fnlwgt``), 3,000 to train a small forest of the app's, the rest to explain."""
    frame = pd.read_csv(DATASETS / "adult.csv", skipinitialspace=True, na_values="?", nrows=4000)
    features = [c for c in frame.columns if c not in {"income", "fnlwgt"}]
    space = space_build(frame, features=features, categorical=ADULT_CATEGORICAL, class_names=["<=50K", ">50K"])
    X, y = frame_encode(space, frame[features]), labels_encode(frame["income"], ["<=50K", ">50K"])
    model = classifier_fit("random_forest", {"n_estimators": 50}, space, X[:3000], y[:3000], seed=0)
    return space, X[:3000], X[3000:], predictor_build("random_forest", model, space)


def one_feature_model() -> tuple[FeatureSpace, np.ndarray, Predictor]:
    """A logistic regression set by hand: P(yes) = sigmoid(8 * score); ``noise_a``/``noise_b`` weigh nothing."""
    X = np.random.default_rng(0).normal(size=(600, 3))

    def predict_proba(rows: np.ndarray) -> np.ndarray:
        yes = 1.0 / (1.0 + np.exp(-8.0 * rows[:, 0]))
        return np.stack([1.0 - yes, yes], axis=1)

    return FeatureSpace(["score", "noise_a", "noise_b"], [], {}, ["no", "yes"]), X, Predictor(predict_proba, key="logistic")


def test_known_answer_one_decisive_feature_is_moved_across_the_boundary() -> None:
    space, X, predictor = one_feature_model()
    explainer = CounterfactualExplainer(num_counterfactuals=3).fit(X[:400], predictor, space, seed=0)
    rows = X[400:410]
    for x, explanation in zip(rows, explainer.explain(rows, list(range(400, 410)))):
        data = explanation.data
        assert data["desired"] == 1 - explanation.predicted and len(data["counterfactuals"]) == 3
        for cf in data["counterfactuals"]:  # only the score moves, and across 0; the noise is given back
            assert [c["feature"] for c in cf["changes"]] == ["score"]
            assert np.sign(cf["values"][0]) != np.sign(x[0]) and cf["values"][1:] == list(x[1:])
        attribution = CounterfactualExplainer.attributions(data, space.feature_names)
        np.testing.assert_array_equal(attribution, [1.0, 0.0, 0.0])
        scores = trust.explanation_trust(method=CounterfactualExplainer, data=data, x=x, predictor=predictor, space=space,
                                         background=X[:10], pool=X[410:])
        assert scores["counterfactual_validity"] == 1.0 and scores["counterfactual_sparsity"] == 1.0
        assert scores["counterfactual_proximity"] > 0 and scores["counterfactual_diversity"] > 0
        assert scores["counterfactual_plausibility"] is not None


def test_adult_rows_flip_and_never_change_a_fixed_feature(adult) -> None:
    space, X_train, X_test, predictor = adult
    explainer = CounterfactualExplainer().fit(X_train, predictor, space, seed=1)
    assert explainer.fixed_ == ADULT_FIXED  # the defaults: columns that look like personal attributes
    X = X_test[:24]
    explanations = explainer.explain(X, list(range(24)))
    reached, total = 0, 0
    fixed = [space.feature_names.index(name) for name in ADULT_FIXED]
    low, high = X_train.min(axis=0), X_train.max(axis=0)
    for x, explanation in zip(X, explanations):
        values = np.array([cf["values"] for cf in explanation.data["counterfactuals"]])
        assert len(values) == 4
        reached += int((np.argmax(predictor.predict_proba(values), axis=1) == explanation.data["desired"]).sum())
        total += len(values)
        np.testing.assert_array_equal(values[:, fixed], np.repeat(x[None, fixed], len(values), axis=0))
        for j in range(len(x)):
            changed = values[:, j] != x[j]
            if j in space.categories:
                assert set(values[changed, j]) <= set(X_train[:, j])  # only categories seen in the data
            else:
                assert ((values[changed, j] >= low[j]) & (values[changed, j] <= high[j])).all()
        assert len({tuple(v) for v in values}) == len(values)  # distinct
    assert reached / total >= 0.95


def test_fixed_features_bounds_and_desired_class_are_obeyed(adult) -> None:
    space, X_train, X_test, predictor = adult
    hours = space.feature_names.index("hours-per-week")
    explainer = CounterfactualExplainer(fixed_features=["education", "occupation"], bounds={"hours-per-week": [35, 45]},
                                        desired_class="<=50K", num_counterfactuals=3).fit(X_train, predictor, space)
    assert explainer.fixed_ == ["education", "occupation"]
    labels = np.argmax(predictor.predict_proba(X_test[:200]), axis=1)
    rich = X_test[:200][labels == 1][:5]
    for x, explanation in zip(rich, explainer.explain(rich, list(range(len(rich))))):
        data = explanation.data
        assert data["desired_name"] == "<=50K" and not data["note"]
        for cf in data["counterfactuals"]:
            assert not {"education", "occupation"} & {c["feature"] for c in cf["changes"]}
            if cf["values"][hours] != x[hours]:
                assert 35 <= cf["values"][hours] <= 45
    poor = X_test[:200][labels == 0][:1]
    note = explainer.explain(poor, [0])[0].data
    assert note["desired_name"] == ">50K" and "already predicts <=50K" in note["note"]


def test_sentences_read_as_people_write_numbers(adult) -> None:
    space, X_train, X_test, predictor = adult
    explanation = CounterfactualExplainer(num_counterfactuals=4).fit(X_train, predictor, space).explain(X_test[:1], [0])[0]
    cf = {"changes": [{"feature": "credit_amount", "from": "9,000", "to": "4,000"},
                      {"feature": "duration", "from": "48", "to": "24"}], "predicted_name": "good", "probability": 0.81}
    assert change_sentence(cf) == "change `credit_amount` from 9,000 to 4,000 and `duration` from 48 to 24 → predicted good (81%)"
    text = CounterfactualExplainer.summary_text(explanation.data)
    assert text.count("→ predicted") == len(explanation.data["counterfactuals"]) and "e+" not in text
    rows = CounterfactualExplainer.detail_rows(explanation.data)
    assert len(rows) == sum(len(cf["changes"]) for cf in explanation.data["counterfactuals"])
    assert {"counterfactual", "feature", "from", "to", "predicted", "probability"} == set(rows[0])


def test_protected_columns_are_found_by_word() -> None:
    names = ["age", "Sex", "gender_code", "race", "ethnicity", "marital-status", "nationality", "native-country",
             "MaritalStatus", "page", "mileage", "average", "credit_amount", "racecar"]
    assert protected_features(names) == ["age", "Sex", "gender_code", "race", "ethnicity", "marital-status",
                                         "nationality", "native-country", "MaritalStatus"]


def test_parameters_are_checked_against_the_dataset(adult) -> None:
    space, X_train, _, predictor = adult
    spec = explainer_for("counterfactual", "tabular").params
    names = space.feature_names
    clean = params_clean(spec, {}, features=names)
    assert clean["fixed_features"] == ADULT_FIXED and clean["bounds"] == {} and clean["num_counterfactuals"] == 4
    assert params_clean(spec, {"fixed_features": []}, features=names)["fixed_features"] == []  # all unticked
    assert params_clean(spec, {"bounds": "hours-per-week: 20, \nage: , 60"}, features=names)["bounds"] == {
        "hours-per-week": [20.0, None], "age": [None, 60.0]}
    for bad, message in [({"fixed_features": ["salary"]}, "'salary' is not a feature"),
                         ({"bounds": {"salary": [1, 2]}}, "'salary' is not a feature"),
                         ({"bounds": {"age": [60, 20]}}, "low bound of 'age' is above"),
                         ({"bounds": "age 20 60"}, "one feature per line"),
                         ({"bounds": {"age": ["x", 3]}}, "must be numbers"),
                         ({"fixed_features": 7}, "list of feature names")]:
        with pytest.raises(ValueError, match=message):
            params_clean(spec, bad, features=names)
    with pytest.raises(ExplainerError, match="workclass is categorical"):
        CounterfactualExplainer(bounds={"workclass": [0, 1]}).fit(X_train, predictor, space)
    with pytest.raises(ExplainerError, match="not a class of this dataset"):
        CounterfactualExplainer(desired_class="rich").fit(X_train, predictor, space).explain(X_train[:1], [0])
    assert Param("t", "Text", "", kind="text").clean("  good ") == "good"


def test_a_rows_counterfactuals_do_not_depend_on_its_batch(adult) -> None:
    space, X_train, X_test, predictor = adult
    explainer = CounterfactualExplainer(num_samples=300).fit(X_train, predictor, space, seed=2)
    together = explainer.explain(X_test[:3], [10, 11, 12])
    alone = explainer.explain(X_test[2:3], [12])
    assert together[2].data == alone[0].data


def test_batched_search_is_at_least_as_valid_close_and_sparse_as_dices_random_method(adult) -> None:
    """DiCE's model-agnostic random method on the same model, rows, fixed features and desired class."""
    space, X_train, X_test, predictor = adult
    explainer = CounterfactualExplainer(num_counterfactuals=4).fit(X_train, predictor, space, seed=0)
    X = X_test[:12]
    ours = explainer.explain(X, list(range(12)))
    theirs = dice_counterfactuals(space, X_train, predictor, X, fixed=explainer.fixed_, k=4)
    desired = [e.data["desired"] for e in ours]
    mine = sets_quality(explainer, predictor, X, [np.array([cf["values"] for cf in e.data["counterfactuals"]])
                                                  for e in ours], desired, X_test[100:400])
    dice = sets_quality(explainer, predictor, X, theirs, desired, X_test[100:400])
    assert mine["validity"] == 1.0 and mine["validity"] >= dice["validity"]
    assert mine["proximity"] <= dice["proximity"]
    assert mine["sparsity"] <= dice["sparsity"]
