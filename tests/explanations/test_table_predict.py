"""The compiled predict path (``explanations.ml.engine.table_predict``) answers what scikit-learn answers, to the bit."""

from __future__ import annotations

import numpy as np
import pytest

from explanations.ml.classifiers import CLASSIFIERS, classifier_fit, predict_proba_full, predictor_build
from explanations.ml.engine.table_predict import ForestPredict, TablePrep, table_predictor

TABLE_KEYS = [k for k, s in CLASSIFIERS.items() if "tabular" in s.modalities and k != "mlp"]


def hostile_rows(table, rng: np.random.Generator) -> np.ndarray:
    """Test rows, then the same rows with what explainers' samples and bad data can hold: NaN anywhere, codes
    that are not categories (-1, one past the last, 2.5), negative zero, numbers far outside training."""
    X = table.X_test.copy()
    odd = X.copy()
    odd[rng.random(odd.shape) < 0.2] = np.nan
    for j, names in table.space.categories.items():
        odd[::4, j] = -1.0
        odd[1::4, j] = len(names)
        odd[2::7, j] = 2.5
    numeric = [j for j in range(X.shape[1]) if j not in table.space.categories]
    odd[3::5, numeric] = rng.normal(scale=1e6, size=(len(odd[3::5]), len(numeric)))
    odd[5::9, numeric] = -0.0
    return np.vstack([X, odd])


@pytest.mark.parametrize("table_name", ["heart_table", "zoo_table"])
@pytest.mark.parametrize("classifier_key", TABLE_KEYS)
def test_predictor_answers_as_scikit_learn(classifier_key: str, table_name: str, request) -> None:
    table = request.getfixturevalue(table_name)
    model = classifier_fit(classifier_key, {}, table.space, table.X_train, table.y_train, seed=0)
    predictor = predictor_build(classifier_key, model, table.space)
    X = hostile_rows(table, np.random.default_rng(0))
    n_classes = len(table.space.class_names)
    np.testing.assert_array_equal(predictor.predict_proba(X), predict_proba_full(model, X, n_classes))
    np.testing.assert_array_equal(predictor.transform(X), model.named_steps["prep"].transform(X))
    np.testing.assert_array_equal(predictor.predict_proba(X[:1]), predict_proba_full(model, X[:1], n_classes))


@pytest.mark.parametrize("classifier_key", ["random_forest", "decision_tree"])
def test_trees_are_walked_by_the_compiled_loop(classifier_key: str, heart_table, monkeypatch) -> None:
    """The covered pipelines really take the fast path (a silent fallback would pass the test above); a big call
    split over two threads answers the same bits."""
    monkeypatch.setenv("EXPLAINER_ENGINE_THREADS", "2")
    model = classifier_fit(classifier_key, {}, heart_table.space, heart_table.X_train, heart_table.y_train, seed=0)
    assert TablePrep.covers(model.named_steps["prep"])
    assert ForestPredict.covers(model.named_steps["model"])
    predict = table_predictor(model).predict_proba
    X = hostile_rows(heart_table, np.random.default_rng(1))
    np.testing.assert_array_equal(predict(X), model.predict_proba(X))
    # many rows: more than one compiled chunk
    many = np.repeat(X, 4096 // len(X) + 2, axis=0)
    np.testing.assert_array_equal(predict(many), model.predict_proba(many))


@pytest.mark.parametrize("table_name", ["heart_table", "zoo_table"])
def test_forest_classes_are_argmax_of_its_probabilities_and_stop_early(table_name: str, request, monkeypatch) -> None:
    """The forest's ``labels`` (a row stops walking trees once its vote is decided) answer argmax of scikit-learn's
    probabilities on every hostile row, in one call, in a call split over threads and for a model whose training
    rows lack a class; and it does walk fewer trees than there are (rows, trees) pairs."""
    monkeypatch.setenv("EXPLAINER_ENGINE_THREADS", "2")
    table = request.getfixturevalue(table_name)
    n_classes = len(table.space.class_names)
    missing = int(np.bincount(table.y_train).argmin()) if table_name == "zoo_table" else -1
    keep = table.y_train != missing  # Zoo: the rarest class is left out, so classes_ skips a code
    model = classifier_fit("random_forest", {}, table.space, table.X_train[keep], table.y_train[keep], seed=0)
    predictor = predictor_build("random_forest", model, table.space)
    labels = predictor.predict_proba.labels
    X = hostile_rows(table, np.random.default_rng(4))
    many = np.repeat(X, 4096 // len(X) + 2, axis=0)
    for rows in (X, X[:1], many):
        expected = np.argmax(predict_proba_full(model, rows, n_classes), axis=1)
        np.testing.assert_array_equal(labels(rows), expected)
    forest = ForestPredict(model.named_steps["model"])
    prepared = TablePrep(model.named_steps["prep"])(X)
    np.testing.assert_array_equal(forest.labels(prepared), np.argmax(forest(prepared), axis=1))
    assert forest.walks_ < len(X) * forest.n_trees


def test_a_near_tie_is_summed_over_every_tree() -> None:
    """Rows whose vote stays close walk all the trees (no early answer), and get argmax of the full average."""
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(5)
    X = rng.normal(size=(400, 3))
    y = rng.integers(0, 2, 400)  # labels unrelated to X: votes near 50/50
    forest = RandomForestClassifier(n_estimators=40, max_depth=2, random_state=0).fit(X, y)
    fast = ForestPredict(forest)
    probe = rng.normal(size=(300, 3))
    np.testing.assert_array_equal(fast.labels(probe), forest.predict_proba(probe).argmax(axis=1))
    close = np.abs(forest.predict_proba(probe)[:, 0] - 0.5) < 0.05
    assert close.any()
    fast.labels(probe[close])
    assert fast.walks_ == close.sum() * 40


def test_missing_values_follow_the_trees_own_direction(heart_table) -> None:
    """A tree fitted on NaN (no imputer before it) sends missing values where scikit-learn's splits learnt to."""
    from sklearn.ensemble import RandomForestClassifier

    X, y = heart_table.X_train.copy(), heart_table.y_train
    X[np.random.default_rng(2).random(X.shape) < 0.3] = np.nan
    forest = RandomForestClassifier(n_estimators=15, random_state=0).fit(X, y)
    assert (~np.concatenate([t.tree_.missing_go_to_left for t in forest.estimators_])).any()
    probe = heart_table.X_test.copy()
    probe[np.random.default_rng(3).random(probe.shape) < 0.4] = np.nan
    np.testing.assert_array_equal(ForestPredict(forest)(probe), forest.predict_proba(probe))


@pytest.mark.parametrize("classifier_key", ["random_forest", "logistic_regression"])
def test_bad_input_is_refused_as_scikit_learn_refuses_it(classifier_key: str, heart_table) -> None:
    model = classifier_fit(classifier_key, {}, heart_table.space, heart_table.X_train, heart_table.y_train, seed=0)
    predictor = predictor_build(classifier_key, model, heart_table.space)
    numeric = next(j for j in range(heart_table.X_test.shape[1]) if j not in heart_table.space.categories)
    infinite = heart_table.X_test[:3].copy()
    infinite[1, numeric] = np.inf
    for X in (infinite, heart_table.X_test[:3, :-1]):
        with pytest.raises(ValueError):
            model.predict_proba(X)
        with pytest.raises(ValueError):
            predictor.predict_proba(X)


def test_anchors_ask_the_forest_for_classes_and_find_the_same_rules(heart_table) -> None:
    """Anchors needs only the class of each sample: it asks the forest's ``labels``, and its rules are the ones it
    finds from argmax of the probabilities."""
    from dataclasses import replace

    from explanations.ml.explainers.anchors import AnchorExplainer
    from explanations.ml.explainers.base import ClassProbabilities

    model = classifier_fit("random_forest", {"n_estimators": 30}, heart_table.space, heart_table.X_train,
                           heart_table.y_train, seed=0)
    predictor = predictor_build("random_forest", model, heart_table.space)
    assert isinstance(predictor.predict_proba, ClassProbabilities)
    asked: list[int] = []

    def labels(X: np.ndarray) -> np.ndarray:
        asked.append(len(X))
        return predictor.predict_proba.labels(X)

    counting = replace(predictor, predict_proba=ClassProbabilities(predictor.predict_proba.proba, labels))
    plain = replace(predictor, predict_proba=predictor.predict_proba.proba)
    rows = [0, 1, 2]
    rules = [[e.data for e in AnchorExplainer().fit(heart_table.X_train, model_, heart_table.space, seed=0)
              .explain(heart_table.X_test[rows], rows)] for model_ in (counting, plain)]
    assert rules[0] == rules[1]
    assert sum(asked) > len(heart_table.X_train)  # the training rows' classes, then the samples'
