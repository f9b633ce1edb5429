"""The batch engines against the reference libraries on small data: same answers, not timings."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import shap
from anchor.anchor_base import AnchorBaseBeam

from explanations.ml.classifiers import classifier_fit, predictor_build
from explanations.ml.engine.anchor_batch import lucb_beta
from explanations.ml.engine.kernel_shap import KernelShapBatch
from explanations.ml.engine.kl_bounds import kl_lower, kl_upper, lucb_gap
from explanations.ml.engine.lime_batch import lime_fit
from explanations.ml.explainers.anchors import AnchorExplainer
from explanations.ml.explainers.base import numpy_global_seed
from explanations.ml.explainers.lime import LimeExplainer
from explanations.ml.explainers.shap import ShapExplainer


@pytest.fixture(scope="module")
def forest(heart_table):
    model = classifier_fit("random_forest", {"n_estimators": 30}, heart_table.space, heart_table.X_train,
                           heart_table.y_train, seed=0)
    return predictor_build("random_forest", model, heart_table.space)


@pytest.fixture(scope="module")
def logistic(heart_table):
    model = classifier_fit("logistic_regression", {}, heart_table.space, heart_table.X_train, heart_table.y_train, seed=0)
    return predictor_build("logistic_regression", model, heart_table.space)


def _top(pairs) -> set[int]:
    return {int(j) for j, _ in pairs}


@pytest.mark.parametrize(("num_features", "discretize"), [(5, True), (8, True), (4, False)])
def test_lime_fit_matches_lime_on_the_same_samples(heart_table, forest, num_features: int, discretize: bool) -> None:
    """Forward selection / highest weights and the ridge fit, from the Gram matrix, equal lime's own on identical samples."""
    explainer = LimeExplainer(num_features=num_features, discretize_continuous=discretize).fit(
        heart_table.X_train, forest, heart_table.space, seed=0)
    for i, x in enumerate(heart_table.X_test[:3]):
        scaled, inputs = explainer.engine_.sample(x, 2000, np.random.default_rng(i))
        Z, proba = scaled.T.copy(), forest.predict_proba(inputs.T)
        label = int(np.argmax(proba[0]))
        distances = np.sqrt(((Z - Z[0]) ** 2).sum(axis=1))
        intercept, pairs, score, _ = explainer.lime_.base.explain_instance_with_data(
            Z, proba, distances, label, num_features)
        weights = explainer.lime_.base.kernel_fn(distances)
        fit = lime_fit(Z[None], proba[None, :, label], weights[None], num_features)[0]
        assert [int(j) for j, _ in pairs] == fit.features.tolist()
        np.testing.assert_allclose([w for _, w in pairs], fit.weights, rtol=1e-6, atol=1e-9)
        assert fit.intercept == pytest.approx(float(intercept), abs=1e-8)
        assert fit.score == pytest.approx(float(score), abs=1e-8)


@pytest.mark.parametrize("discretize", [True, False])
def test_lime_on_shared_samples_is_limes_own_fit_on_those_samples(heart_table, forest, discretize: bool) -> None:
    """Each row's explanation from the shared draw is what lime computes from ``[row] + draw``, built lime's way."""
    from sklearn.metrics import pairwise_distances

    explainer = LimeExplainer(num_samples=1500, discretize_continuous=discretize).fit(
        heart_table.X_train, forest, heart_table.space, seed=0)
    X = heart_table.X_test[:4]
    results = explainer.explain(X, [10, 11, 12, 13])
    hood, lime, names = explainer.neighbourhood_, explainer.lime_, heart_table.space.feature_names
    assert hood is not None and hood.proba.shape == (1499, len(heart_table.space.class_names))
    categorical = sorted(lime.feature_values)  # the columns lime samples from frequencies and compares with the row
    for x, e in zip(X, results):
        inputs = hood.inverse.T.copy()
        inputs[0] = x
        compared = lime.discretizer.discretize(inputs) if discretize else inputs.copy()
        data = inputs.copy()
        data[:, categorical] = compared[:, categorical] == compared[0, categorical]
        scaled = (data - lime.scaler.mean_) / lime.scaler.scale_
        distances = pairwise_distances(scaled, scaled[:1]).ravel()
        intercept, pairs, score, _ = lime.base.explain_instance_with_data(
            scaled, forest.predict_proba(inputs), distances, e.predicted, 5)
        assert e.data["feature_of"] == [names[int(j)] for j, _ in pairs]
        np.testing.assert_allclose([w for _, w in e.data["weights"]], [w for _, w in pairs], rtol=1e-6, atol=1e-9)
        assert e.data["intercept"] == pytest.approx(float(intercept), abs=1e-8)
        assert e.data["score"] == pytest.approx(float(score), abs=1e-8)


def test_lime_scores_the_shared_samples_once_per_job(heart_table, forest) -> None:
    """The model sees the shared draw once, then only the explained rows; with it off, every row's own samples."""
    calls: list[int] = []

    def counting(X: np.ndarray) -> np.ndarray:
        calls.append(len(X))
        return forest.predict_proba(X)

    counted = replace(forest, predict_proba=counting)
    explainer = LimeExplainer(num_samples=800).fit(heart_table.X_train, counted, heart_table.space, seed=0)
    for batch in ([0, 1, 2], [3, 4]):
        explainer.explain(heart_table.X_test[batch], batch)
    assert sum(calls) == 799 + 3 + 2  # the draw once, then only each batch's own rows
    calls.clear()
    fresh = LimeExplainer(num_samples=800, shared_samples=False).fit(heart_table.X_train, counted, heart_table.space, seed=0)
    fresh.explain(heart_table.X_test[:3], [0, 1, 2])
    assert sum(calls) == 3 + 3 * 800


def test_lime_samples_follow_limes_distribution(heart_table, forest) -> None:
    """Same bin frequencies and same per-bin values as lime's own sampler (checked on many samples)."""
    explainer = LimeExplainer().fit(heart_table.X_train, forest, heart_table.space, seed=0)
    x = heart_table.X_test[0]
    ours_scaled, ours_inputs = explainer.engine_.sample(x, 40000, np.random.default_rng(0))
    lime = explainer.lime_
    lime.random_state = lime.base.random_state = lime.discretizer.random_state = np.random.RandomState(0)
    theirs_scaled, theirs_inputs = lime._LimeTabularExplainer__data_inverse(x, 40000)
    np.testing.assert_allclose(ours_scaled.mean(axis=1), theirs_scaled.mean(axis=0), atol=0.015)
    spread = heart_table.X_train.std(axis=0) + 1e-9
    np.testing.assert_allclose(ours_inputs.mean(axis=1) / spread, theirs_inputs.mean(axis=0) / spread, atol=0.03)
    np.testing.assert_allclose(ours_inputs.std(axis=1) / spread, theirs_inputs.std(axis=0) / spread, atol=0.03)


def test_lime_agrees_with_lime_as_much_as_lime_with_itself(heart_table, logistic) -> None:
    """Top-5 features overlap with lime's about as much as two lime runs overlap (the margin is sampling noise)."""
    explainer = LimeExplainer(num_samples=5000).fit(heart_table.X_train, logistic, heart_table.space, seed=0)
    X = heart_table.X_test[:16]
    ours = explainer.explain(X, list(range(len(X))))
    names = heart_table.space.feature_names
    lime = explainer.lime_

    def reference(seed: int, x: np.ndarray, label: int) -> set[int]:
        state = np.random.RandomState(seed)
        lime.random_state = lime.base.random_state = lime.discretizer.random_state = state
        return _top(lime.explain_instance(x, logistic.predict_proba, labels=(label,), num_features=5,
                                          num_samples=5000).local_exp[label])

    agreement, self_agreement = [], []
    for i, (x, e) in enumerate(zip(X, ours)):
        first, second = reference(100 + i, x, e.predicted), reference(200 + i, x, e.predicted)
        mine = {names.index(f) for f in e.data["feature_of"]}
        agreement.append(len(mine & first) / len(mine | first))
        self_agreement.append(len(second & first) / len(second | first))
    assert np.mean(agreement) >= np.mean(self_agreement) - 0.12


def test_kernel_shap_enumerating_every_coalition_equals_shaps(heart_table, logistic) -> None:
    """With every coalition both are exact Kernel SHAP for the background, so they must coincide."""
    background = heart_table.X_train[:8]
    X = heart_table.X_test[:3]
    engine = KernelShapBatch(background, logistic.predict_proba, seed=0)
    ours = engine.explain(X, logistic.predict_proba(X), nsamples=2**20)
    kernel = shap.KernelExplainer(logistic.predict_proba, background)
    theirs = np.stack([np.asarray(kernel.shap_values(x[None, :], nsamples=2**20, l1_reg=False, silent=True))[0] for x in X])
    np.testing.assert_allclose(ours, theirs, atol=1e-8)
    np.testing.assert_allclose(engine.expected_value_, kernel.expected_value, atol=1e-12)


def test_kernel_shap_with_few_coalitions_is_near_the_exact_values(heart_table, logistic) -> None:
    background = heart_table.X_train[:8]
    X = heart_table.X_test[:4]
    engine = KernelShapBatch(background, logistic.predict_proba, seed=0)
    exact = engine.explain(X, logistic.predict_proba(X), nsamples=2**20)
    sampled = engine.explain(X, logistic.predict_proba(X), nsamples=300)
    kernel = shap.KernelExplainer(logistic.predict_proba, background)
    with numpy_global_seed(0):
        theirs = np.stack([np.asarray(kernel.shap_values(x[None, :], nsamples=300, silent=True))[0] for x in X])
    assert np.abs(sampled - exact).max() <= max(np.abs(theirs - exact).max(), 0.01)
    np.testing.assert_allclose(sampled.sum(axis=1) + engine.expected_value_, logistic.predict_proba(X), atol=1e-9)


def test_kl_bounds_are_anchor_exps() -> None:
    for p in (0.0, 0.3, 0.9, 0.97, 1.0):
        for level in (0.01, 0.5, 3.0):
            assert kl_upper(p, level) == pytest.approx(AnchorBaseBeam.dup_bernoulli(p, level), abs=1e-12)
            assert kl_lower(p, level) == pytest.approx(AnchorBaseBeam.dlow_bernoulli(p, level), abs=1e-12)


def test_lucb_step_is_anchor_exps() -> None:
    """One step of anchor-exp's ``lucb`` (its numpy code, with its own bounds), ties among the means included."""
    rng = np.random.default_rng(0)
    for trial in range(200):
        k = int(rng.integers(2, 14))
        n_samples = rng.integers(1, 400, k).astype(np.float64)
        means = np.round(rng.uniform(0.6, 1.0, k), 1 if trial % 2 else 3)  # rounded: many equal means
        top_n, t = int(rng.integers(1, k)), int(rng.integers(1, 50))
        sorted_means = np.argsort(means)
        beta = AnchorBaseBeam.compute_beta(k, t, 0.1)
        assert lucb_beta(k, t, 0.1) == pytest.approx(beta, rel=1e-12)
        J, not_J = sorted_means[-top_n:], sorted_means[:-top_n]
        ub = np.array([AnchorBaseBeam.dup_bernoulli(means[f], beta / n_samples[f]) for f in not_J])
        lb = np.array([AnchorBaseBeam.dlow_bernoulli(means[f], beta / n_samples[f]) for f in J])
        ut, lt, gap = lucb_gap(means, n_samples, sorted_means, top_n, beta)
        assert (ut, lt) == (not_J[np.argmax(ub)], J[np.argmin(lb)])
        assert gap == pytest.approx(ub.max() - lb.min(), abs=1e-12)


def test_anchors_hold_on_fresh_samples_from_anchor_exps_sampler(heart_table, forest) -> None:
    """The engine's rules, re-measured with anchor-exp's own conditional sampler, keep their precision."""
    threshold = 0.9
    explainer = AnchorExplainer(threshold=threshold).fit(heart_table.X_train, forest, heart_table.space, seed=0)
    found: list = []
    run = explainer.engine_.explain

    def recording(*args, **kwargs):
        anchors = run(*args, **kwargs)
        found.extend(anchors)
        return anchors

    explainer.engine_.explain = recording  # keep the engine's anchors (mapping indices) to re-measure them
    X = heart_table.X_test[:6]
    results = explainer.explain(X, list(range(len(X))))

    def predict_label(Z: np.ndarray) -> np.ndarray:
        return np.argmax(forest.predict_proba(Z), axis=1)

    fresh = []
    for i, (x, e, anchor) in enumerate(zip(X, results, found)):
        sample_fn, _ = explainer.anchor_.get_sample_fn(x, predict_label, desired_label=e.predicted)
        with numpy_global_seed(i):
            fresh.append(np.mean(sample_fn(list(anchor.present), 2000)[2]))
    assert np.mean(fresh) >= threshold - 0.05


def test_anchors_answer_untouched_training_rows_from_the_models_classes_on_them(heart_table, forest, monkeypatch) -> None:
    """A sample that is a training row left as it was gets the model's class on that row, asked once per explainer:
    the same anchors as asking the model every time, from fewer samples; and the same in batches of any size."""
    from explanations.ml.engine import anchor_batch as engine

    train = heart_table.X_train
    training_set_asked: list[bool] = []

    def counted() -> tuple:
        calls: list[int] = []

        def counting(X: np.ndarray) -> np.ndarray:
            calls.append(len(X))
            training_set_asked.append(X.shape == train.shape and np.array_equal(X, train))
            return forest.predict_proba(X)

        return replace(forest, predict_proba=counting), calls

    X, rows = heart_table.X_test[:8], list(range(8))
    model, cached_calls = counted()
    explainer = AnchorExplainer(threshold=0.9).fit(train, model, heart_table.space, seed=0)
    cached = [e.data for e in explainer.explain(X[:5], rows[:5]) + explainer.explain(X[5:], rows[5:])]
    assert cached_calls[:2] == [5, len(train)]  # the rows' classes, then the training rows', once
    assert training_set_asked[1] and training_set_asked.count(True) == 1

    original = engine.AnchorBatch.sample_from_train

    def every_sample_changed(self, *args, **kwargs):
        sample, known = original(self, *args, **kwargs)
        return sample, np.full_like(known, -1)

    monkeypatch.setattr(engine.AnchorBatch, "sample_from_train", every_sample_changed)
    model, plain_calls = counted()
    explainer = AnchorExplainer(threshold=0.9).fit(heart_table.X_train, model, heart_table.space, seed=0)
    assert [e.data for e in explainer.explain(X, rows)] == cached  # one batch of 8, not 5 + 3
    assert sum(cached_calls) - len(train) < sum(plain_calls)


def test_anchor_rows_ask_the_model_once_per_distinct_sample(heart_table, forest) -> None:
    """A row's samples repeat under long rules; the model is asked each distinct one once, with the same answers."""
    from explanations.ml.engine.anchor_batch import Drawn, _Row

    explainer = AnchorExplainer(threshold=0.9).fit(heart_table.X_train, forest, heart_table.space, seed=0)
    engine = explainer.engine_
    engine.train_label_ = np.argmax(forest.predict_proba(engine.train_), axis=1)
    row = _Row(engine, heart_table.X_test[0], np.random.default_rng(0), label=1)
    drawn, _ = row.sample([], 50)
    drawn = Drawn(np.concatenate([drawn.raw, drawn.raw[:10]]), np.full(60, -1))  # 10 repeats, none "known"
    truth = np.argmax(forest.predict_proba(drawn.raw), axis=1) == 1

    answering = row.answers(drawn)
    asked = next(answering)
    assert len(asked) == len(np.unique(drawn.raw, axis=0))
    with pytest.raises(StopIteration) as done:
        answering.send(np.argmax(forest.predict_proba(asked), axis=1) == 1)
    np.testing.assert_array_equal(done.value.value, truth)

    again = row.answers(Drawn(drawn.raw[::-1].copy(), drawn.known))
    with pytest.raises(StopIteration) as done:  # every answer known: no model round at all
        next(again)
    np.testing.assert_array_equal(done.value.value, truth[::-1])


def test_anchor_search_also_checks_the_broadest_rules_that_look_precise_enough(heart_table, forest) -> None:
    """Besides the beam (the most precise rules), the broadest other rules whose samples reach the threshold."""
    from explanations.ml.engine import anchor_batch as engine

    explainer = AnchorExplainer(threshold=0.9).fit(heart_table.X_train, forest, heart_table.space, seed=0)
    row = engine._Row(explainer.engine_, heart_table.X_test[0], np.random.default_rng(0), label=1)
    rules = {(0,): (0.9, 0.95), (1,): (0.8, 0.99), (2,): (0.5, 0.97), (3,): (0.6, 0.9), (4,): (0.7, 0.89),
             (5,): (0.3, 0.96), (6,): (0.2, 0.91), (7,): (0.1, 1.0)}  # coverage, precision on 100 samples
    for t, (coverage, precision) in rules.items():
        row.t_n[t], row.t_pos[t] = 100.0, 100.0 * precision
        row.t_cover[t] = np.arange(1000) < 1000 * coverage
    row.t_n[(8,)], row.t_pos[(8,)], row.t_cover[(8,)] = 0.0, 0.0, np.ones(1000, bool)  # never sampled
    beam = [(0,)]
    broader = engine.AnchorBatch._broader(row, [*rules, (8,)], beam, 0.9)
    assert broader == [(1,), (3,), (2,), (5,)][: engine.EXTRA_CHECKS]  # broadest first; not (4,), below 0.9


def test_anchor_says_when_no_rule_reaches_the_threshold(heart_table, forest) -> None:
    """A model whose class flips with the parity of age: no rule on age's bins holds for 95 % of rows."""
    from explanations.exports import explanation_summary_text
    from explanations.ml.plots import explanation_alt_text

    age = heart_table.space.feature_names.index("age")

    def parity(X: np.ndarray) -> np.ndarray:
        proba = np.zeros((len(X), len(heart_table.space.class_names)))
        proba[np.arange(len(X)), np.round(X[:, age]).astype(int) % 2] = 1.0
        return proba

    model = replace(forest, predict_proba=parity)
    explainer = AnchorExplainer(threshold=0.95, max_anchor_size=2).fit(heart_table.X_train, model, heart_table.space, seed=0)
    explanation = explainer.explain(heart_table.X_test[:1], [0])[0]
    data = explanation.data
    assert data["meets_threshold"] is False and data["threshold"] == 0.95
    assert data["precision"] < 0.95 and 1 <= len(data["rule"]) <= 2
    assert "No rule reached the 95%" in explanation_alt_text(explanation, heart_table.space)
    stored = SimpleNamespace(explainer="anchor", data=data, meta={}, job=None)  # as a job saved before summary_text
    assert "(below the 0.95 asked for)" in explanation_summary_text(stored)


def _tree_models() -> list:
    from sklearn.ensemble import ExtraTreesClassifier, GradientBoostingClassifier, RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier

    return [
        (RandomForestClassifier(n_estimators=15, random_state=0), 2),
        (RandomForestClassifier(n_estimators=8, min_samples_leaf=3, random_state=0), 3),
        (GradientBoostingClassifier(n_estimators=15, max_depth=4, random_state=0), 2),
        (DecisionTreeClassifier(random_state=0), 3),
        (ExtraTreesClassifier(n_estimators=8, random_state=0), 2),
    ]


@pytest.mark.parametrize(("model", "classes"), _tree_models(), ids=lambda v: type(v).__name__ if not isinstance(v, int) else str(v))
def test_tree_shap_kernel_equals_shaps_own_tree_shap(model, classes: int) -> None:
    """The O(nodes) kernel gives shap's path-dependent values: forests, boosting, one deep tree, repeated features, NaN."""
    from explanations.ml.engine.tree_shap import PathDependentTreeShap

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6))
    X[:, 3] = rng.integers(0, 3, 300)  # few values: the trees test it again and again on one path
    y = np.digitize(X[:, 0] + 0.5 * X[:, 3] + rng.normal(size=300) * 0.5, [0.3, 1.2][: classes - 1])
    explainer = shap.TreeExplainer(model.fit(X, y))
    kernel = PathDependentTreeShap.build(explainer)
    assert kernel is not None
    rows = X[:40].copy()
    rows[3, 2] = np.nan  # missing: the split's default child, as in shap
    theirs = np.asarray(explainer.shap_values(rows, check_additivity=False))
    ours = kernel.values(rows)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    assert np.abs(theirs).max() > 0.01  # not trivially zero


def _exact_path_dependent(kernel, x: np.ndarray) -> np.ndarray:
    """Path-dependent SHAP of one tree by its definition: every subset of the features it tests, enumerated.

    v(S) = sum over leaves of value x P(reach leaf), an edge on a feature in S followed as ``x`` goes, any other
    taken in proportion to its cover (Lundberg et al.'s EXPVALUE); then the Shapley formula over all subsets.
    """
    from math import factorial

    left, right, feature = kernel.left_[0], kernel.right_[0], kernel.feature_[0]
    threshold, cover, values = kernel.threshold_[0], kernel.cover_[0], kernel.values_[0]
    used = sorted({int(feature[u]) for u in range(len(left)) if left[u] >= 0})
    n = len(used)
    masks = (np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1  # subset s holds used[j] when bit j is set
    v = np.zeros((2**n, values.shape[1]))
    stack = [(0, np.ones(2**n))]
    while stack:
        u, reach = stack.pop()
        if left[u] < 0:
            v += reach[:, None] * values[u]
            continue
        j = used.index(int(feature[u]))
        hot = left[u] if x[feature[u]] <= threshold[u] else right[u]
        for child in (left[u], right[u]):
            follow = np.where(masks[:, j] == 1, float(child == hot), cover[child] / cover[u])
            stack.append((child, reach * follow))
    size = masks.sum(axis=1)
    by_size = np.array([factorial(k) * factorial(n - k - 1) / factorial(n) for k in range(n)])
    phi = np.zeros((len(x), values.shape[1]))
    for j, f in enumerate(used):
        without = np.flatnonzero(masks[:, j] == 0)
        weight = by_size[size[without]]
        phi[f] = (weight[:, None] * (v[without | (1 << j)] - v[without])).sum(axis=0)
    return phi


def test_tree_shap_kernel_equals_shap_and_the_definition_on_a_real_forest(heart_table, forest) -> None:
    """Heart's one-hot columns and integer features meet thresholds stored from float32 (57.0 against 57.0): the kernel
    compares in the trees' precision, as shap and scikit-learn do, and equals shap and brute-force enumeration."""
    from explanations.ml.engine.tree_shap import PathDependentTreeShap

    explainer = shap.TreeExplainer(forest.tree_model)
    kernel = PathDependentTreeShap.build(explainer)
    X = forest.transform(heart_table.X_test[:12])
    np.testing.assert_allclose(kernel.values(X), np.asarray(explainer.shap_values(X, check_additivity=False)),
                               rtol=0, atol=1e-12)
    x = X[1].astype(np.float32).astype(np.float64)  # the row as the trees read it
    for t in range(3):
        one = kernel.tree(t)
        np.testing.assert_allclose(one.values(x[None])[0], _exact_path_dependent(one, x), rtol=0, atol=1e-12)


def test_tree_shap_kernel_serves_the_shap_explainer_and_leaves_other_perturbations_to_shap(heart_table, forest) -> None:
    from explanations.ml.engine.tree_shap import PathDependentTreeShap

    explainer = ShapExplainer(algorithm="tree").fit(heart_table.X_train, forest, heart_table.space, seed=0)
    assert explainer.tree_kernel_ is not None
    X = heart_table.X_test[:12]
    results = explainer.explain(X, list(range(len(X))))
    values = explainer.tree_kernel_.values(forest.transform(X))
    for e, raw in zip(results, values):  # one-hot columns summed back to their feature
        summed = np.stack([raw[group].sum(axis=0) for group in forest.groups])
        np.testing.assert_allclose(np.array(e.data["class_values"]), summed.T, atol=1e-8)
        assert e.data["algorithm"] == "tree"
    background = forest.transform(heart_table.X_train[:50])
    interventional = shap.TreeExplainer(forest.tree_model, data=background)
    assert PathDependentTreeShap.build(interventional) is None
