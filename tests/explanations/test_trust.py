"""Trust metrics on cases with known answers: a model that looks at one feature only, and hand-made explanations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from explanations.ml import trust
from explanations.ml.classifiers import classifier_fit, predictor_build
from explanations.ml.explainers import explainer_for
from explanations.ml.explainers.base import FeatureSpace
from explanations.ml.representative_rows import representative_rows_pick

USED = 2  # the one feature the model looks at


@pytest.fixture(scope="module")
def one_feature():
    """y = (x2 > 0): a decision tree splits once on x2 and never looks at anything else."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    X[:, 4] = rng.integers(0, 3, size=400)  # a categorical feature with codes 0..2
    y = (X[:, USED] > 0).astype(int)
    space = FeatureSpace(feature_names=["age", "age_group", "chol", "noise", "colour"], categorical=[4],
                         categories={4: ["red", "green", "blue"]}, class_names=["low", "high"],
                         medians={0: 0.0, 1: 0.0, 2: 0.0, 3: 0.0})
    model = classifier_fit("decision_tree", {}, space, X[:300], y[:300], seed=0)
    predictor = predictor_build("decision_tree", model, space)
    return space, predictor, X[:300], X[300:]


def shap_of(one_feature, seed: int = 0, rows=(300, 301)):
    space, predictor, X_train, X_test = one_feature
    explainer = explainer_for("shap", "tabular")(algorithm="tree").fit(X_train, predictor, space, seed=seed)
    X = np.vstack([X_train, X_test])
    return explainer.explain(X[list(rows)], list(rows)), X


def test_tree_shap_names_the_only_feature_and_has_the_best_deletion_and_insertion(one_feature):
    space, predictor, X_train, _ = one_feature
    (explanation, _), X = shap_of(one_feature)
    attribution = trust.attributions("shap", explanation.data, space.feature_names)
    assert trust.top_features(attribution) == [USED]
    x, label, background = X[300], explanation.data["label"], X_train[:20]
    shap_order = trust.ranking(attribution)
    deletion = trust.curve_auc(trust.deletion_curve(predictor.predict_proba, x, shap_order, background, label))
    insertion = trust.curve_auc(trust.insertion_curve(predictor.predict_proba, x, shap_order, background, label))
    for other in range(len(space.feature_names)):
        if other == USED:
            continue
        order = [other, USED] + [j for j in range(5) if j not in (other, USED)]
        assert deletion < trust.curve_auc(trust.deletion_curve(predictor.predict_proba, x, order, background, label))
        assert insertion > trust.curve_auc(trust.insertion_curve(predictor.predict_proba, x, order, background, label))
    curve = trust.deletion_curve(predictor.predict_proba, x, shap_order, background, label)
    assert curve[0] == pytest.approx(1.0) and curve[1] == pytest.approx(curve[-1])  # all the change in the first step


def test_the_best_order_wins_among_every_order(one_feature):
    """Exhaustively: the minimum deletion AUC over all orders is reached exactly by the orders starting with x2."""
    _, predictor, X_train, X_test = one_feature
    x, background = X_test[0], X_train[:10]
    label = int(predictor.predict_proba(x[None, :]).argmax())
    aucs = {order: trust.curve_auc(trust.deletion_curve(predictor.predict_proba, x, order, background, label))
            for order in itertools.permutations(range(5))}
    best = min(aucs.values())
    assert {order[0] for order, auc in aucs.items() if auc == pytest.approx(best)} == {USED}


def test_tree_shap_is_perfectly_stable_faithful_and_additive(one_feature):
    space, predictor, X_train, X_test = one_feature
    runs = [shap_of(one_feature, seed=seed)[0][0] for seed in (0, 1, 2)]
    (explanation, _), X = shap_of(one_feature)
    result = trust.explanation_trust(method="shap", data=explanation.data, x=X[300], predictor=predictor, space=space,
                                     background=X_train[:20], pool=X_test, reruns=[r.data for r in runs[1:]], seed=0)
    assert result["stability_jaccard"] == 1.0 and result["stability_rank_corr"] == 1.0
    assert result["faithfulness"] == pytest.approx(1.0)
    assert result["additivity_error"] < 1e-6
    assert result["precision_fresh"] is None and result["coverage_fresh"] is None
    assert result["top_features"][0][0] == "chol" and set(trust.TRUST_KEYS) <= set(result)


def test_seed_free_tree_shap_reruns_explain_once_with_the_answers_of_separate_fits(one_feature, monkeypatch):
    """One fitted TreeSHAP stands for every rerun seed: the same data as explainers fitted with each seed, one call."""
    space, predictor, X_train, X_test = one_feature
    shap_cls = explainer_for("shap", "tabular")
    fits = [shap_cls(algorithm="tree").fit(X_train, predictor, space, seed=seed) for seed in (1, 2, 3)]
    assert all(e.seed_free() for e in fits)
    kernel = shap_cls(algorithm="kernel").fit(X_train, predictor, space, seed=1)
    assert not kernel.seed_free()
    lime = explainer_for("lime", "tabular")().fit(X_train, predictor, space, seed=1)
    assert not lime.seed_free()
    calls = []
    explain = shap_cls.explain
    monkeypatch.setattr(shap_cls, "explain", lambda self, X, rows: calls.append(id(self)) or explain(self, X, rows))
    X = X_test[:2]
    shared = shap_cls.reruns_explain([fits[0]] * 3, X, [300, 301])
    separate = shap_cls.reruns_explain(fits, X, [300, 301])
    assert calls == [id(fits[0]), *map(id, fits)]
    assert [[r.data for r in run] for run in shared] == [[r.data for r in run] for run in separate]


def test_a_misleading_explanation_scores_worse(one_feature):
    space, predictor, X_train, X_test = one_feature
    (explanation, _), X = shap_of(one_feature)
    honest = trust.explanation_trust(method="shap", data=explanation.data, x=X[300], predictor=predictor, space=space,
                                     background=X_train[:20], pool=X_test)
    wrong = dict(explanation.data, values={"age": 0.4, "noise": -0.2, "chol": 0.0, "age_group": 0.0, "colour": 0.0})
    misleading = trust.explanation_trust(method="shap", data=wrong, x=X[300], predictor=predictor, space=space,
                                         background=X_train[:20], pool=X_test)
    assert honest["deletion_auc"] < misleading["deletion_auc"]
    assert honest["insertion_auc"] > misleading["insertion_auc"]
    assert misleading["faithfulness"] < 0.5 < honest["faithfulness"]  # its attributions do not follow the output
    assert misleading["additivity_error"] > 0.1


def test_linear_shap_adds_up_in_log_odds(one_feature):
    space, _, X_train, X_test = one_feature
    y = (X_train[:, USED] > 0).astype(int)
    model = classifier_fit("logistic_regression", {}, space, X_train, y, seed=0)
    predictor = predictor_build("logistic_regression", model, space)
    explanation = explainer_for("shap", "tabular")(algorithm="linear").fit(X_train, predictor, space).explain(X_test[:1], [0])[0]
    assert explanation.data["output"] == "log-odds"
    output = trust.model_output(predictor, X_test[0], explanation.data["label"], "log-odds")
    assert trust.additivity_error(explanation.data, output) < 1e-6


def test_anchor_precision_and_coverage_on_fresh_rows(one_feature):
    space, predictor, _, X_test = one_feature
    x = X_test[np.argmax(X_test[:, USED])]  # clearly "high"
    label = 1
    precision, coverage = trust.anchor_fresh(predictor.predict_proba, x, ["chol > 0.5"], space, X_test, label, seed=0)
    assert precision == 1.0 and coverage == pytest.approx(np.mean(X_test[:, USED] > 0.5))
    precision, coverage = trust.anchor_fresh(predictor.predict_proba, x, ["age > 0"], space, X_test, label, seed=0)
    assert 0.3 < precision < 0.7  # a rule on a feature the model ignores is a coin toss
    precision, coverage = trust.anchor_fresh(predictor.predict_proba, x, ["-1 < chol <= 0", "colour = red"], space,
                                             X_test, 0, seed=0)
    assert precision == 1.0
    assert coverage == pytest.approx(np.mean((X_test[:, USED] > -1) & (X_test[:, USED] <= 0) & (X_test[:, 4] == 0)))
    assert trust.anchor_fresh(predictor.predict_proba, x, ["mystery >= 3"], space, X_test, label) == (None, None)


def test_anchor_attributions_follow_the_rule_and_longest_names_win():
    names = ["age", "age_group", "sex"]
    data = {"label": 0, "rule": ["age_group = young", "28 < age <= 37"], "precision": 1.0, "coverage": 0.1}
    attribution = trust.attributions("anchor", data, names)
    assert list(attribution) == [1.0, 2.0, 0.0]
    assert trust.top_features(attribution) == [1, 0]


def test_lime_on_the_one_feature_model_points_at_it_and_reports_its_spread(one_feature):
    space, predictor, X_train, X_test = one_feature
    explainers = [explainer_for("lime", "tabular")(num_samples=400).fit(X_train, predictor, space, seed=seed) for seed in (0, 1, 2)]
    first, *reruns = [e.explain(X_test[:1], [7])[0] for e in explainers]
    result = trust.explanation_trust(method="lime", data=first.data, x=X_test[0], predictor=predictor, space=space,
                                     background=X_train[:20], pool=X_test, reruns=[r.data for r in reruns], seed=0)
    assert result["top_features"][0][0] == "chol"
    assert len(result["weight_spread"]) == len(first.data["weights"])
    assert 0 <= result["stability_jaccard"] <= 1 and -1 <= result["stability_rank_corr"] <= 1
    same = trust.explanation_trust(method="lime", data=first.data, x=X_test[0], predictor=predictor, space=space,
                                   background=X_train[:20], pool=X_test, reruns=[first.data, first.data], seed=0)
    assert same["stability_jaccard"] == 1.0 and same["stability_rank_corr"] == 1.0
    assert not any(same["weight_spread"])


def test_stability_and_agreement_arithmetic():
    a = np.array([3.0, -2.0, 1.0, 0.0, 0.0])
    b = np.array([0.0, 2.0, 3.0, 1.0, 0.0])
    assert trust.jaccard({0, 1, 2}, {1, 2, 3}) == 0.5
    assert trust.top_k_overlap(a, b, k=2) == 0.5  # {0, 1} vs {2, 1}
    assert trust.top_k_overlap(a, np.zeros(5)) is None
    jaccard, correlation = trust.stability([a, a, a], k=3)
    assert jaccard == 1.0 and correlation == 1.0
    jaccard, _ = trust.stability([a, b], k=3)
    assert jaccard == pytest.approx(2 / 4)
    assert trust.stability([a]) == (None, None)


def test_trust_params_defaults_and_bounds():
    assert trust.trust_params_clean(None) == {"stability_runs": 5, "background_rows": 20}
    assert trust.trust_params_clean(None, image=True) == {"stability_runs": 5, "background_rows": 20,  # + images' own
                                                          "sanity_images": 3, "roar_images": 200, "roar_epochs": 10}
    with pytest.raises(ValueError, match="Unknown parameter"):
        trust.trust_params_clean({"roar_images": 10})  # a table has no ROAR
    assert trust.trust_params_clean({"stability_runs": 0})["stability_runs"] == 0
    with pytest.raises(ValueError, match="between"):
        trust.trust_params_clean({"stability_runs": 500})


def test_submodular_pick_covers_the_features_with_few_rows():
    weights = np.array([
        [1.0, 1.0, 0.0, 0.0],  # covers 0 and 1
        [1.0, 0.9, 0.0, 0.0],  # the same features again: adds nothing after row 0
        [0.0, 0.0, 0.5, 0.5],  # covers the rest
        [0.0, 0.0, 0.4, 0.0],
    ])
    assert representative_rows_pick(weights, 2) == [0, 2]
    assert representative_rows_pick(weights, 4) == [0, 2]  # nothing left to cover
    assert representative_rows_pick(np.zeros((0, 3)), 3) == []
