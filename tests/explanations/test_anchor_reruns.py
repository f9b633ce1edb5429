"""Anchors' stability reruns: run together on one engine, each row's reruns sharing the samples they drew."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from explanations.ml import trust
from explanations.ml.classifiers import classifier_fit, predictor_build
from explanations.ml.engine.anchor_batch import SampleBank
from explanations.ml.explainers.anchors import AnchorExplainer
from explanations.ml.explainers.base import FeatureSpace, Predictor


@pytest.fixture(scope="module")
def forest(heart_table):
    model = classifier_fit("random_forest", {"n_estimators": 30}, heart_table.space, heart_table.X_train,
                           heart_table.y_train, seed=0)
    return predictor_build("random_forest", model, heart_table.space)


def counted(predictor: Predictor) -> tuple[Predictor, list[int]]:
    """The predictor, and a list that gets the size of every call to it."""
    calls: list[int] = []

    def predict_proba(X: np.ndarray) -> np.ndarray:
        calls.append(len(X))
        return predictor.predict_proba(X)

    return replace(predictor, predict_proba=predict_proba), calls


def fitted(X_train: np.ndarray, predictor: Predictor, space: FeatureSpace, seeds, **params) -> list[AnchorExplainer]:
    return [AnchorExplainer(**params).fit(X_train, predictor, space, seed=seed) for seed in seeds]


def test_reruns_drawing_their_own_samples_are_separate_explainers(heart_table, forest) -> None:
    """Without a bank, running the reruns together changes nothing: each is the explainer fitted with its seed."""
    rows = [0, 1, 2, 3]
    X = heart_table.X_test[rows]
    together = AnchorExplainer.reruns_explain(fitted(heart_table.X_train, forest, heart_table.space, (1, 2, 3)), X, rows,
                                              share_samples=False)
    alone = [e.explain(X, rows) for e in fitted(heart_table.X_train, forest, heart_table.space, (1, 2, 3))]
    assert [[r.data for r in run] for run in together] == [[r.data for r in run] for run in alone]
    assert [[r.meta["seed"] for r in run] for run in together] == [[seed] * 4 for seed in (1, 2, 3)]


def test_reruns_sharing_samples_ask_the_model_about_far_fewer_in_far_fewer_calls(heart_table, forest) -> None:
    rows = [0, 1, 2]
    X = heart_table.X_test[rows]
    asked = {}
    for way in ("shared", "lockstep", "separate"):
        model, calls = counted(forest)
        reruns = fitted(heart_table.X_train, model, heart_table.space, range(1, 6))
        if way == "separate":  # as the trust meter ran them before
            results = [e.explain(X, rows) for e in reruns]
        else:
            results = AnchorExplainer.reruns_explain(reruns, X, rows, share_samples=way == "shared")
        assert len(results) == 5 and all(len(run) == 3 for run in results)
        asked[way] = (sum(calls), len(calls))
    # The same samples, less the training rows' and the explained rows' classes, asked once instead of 5 times.
    assert asked["lockstep"][0] == asked["separate"][0] - 4 * (len(heart_table.X_train) + len(rows)), asked
    assert asked["shared"][0] < 0.5 * asked["lockstep"][0], asked
    assert asked["lockstep"][1] < 0.5 * asked["separate"][1], asked  # reruns 2-5 together: one call a round for all


def test_a_bank_is_a_bootstrap_of_what_was_drawn() -> None:
    bank = SampleBank()
    bank.add((1,), np.array([[True], [False]]), np.array([1, 0]))
    bank.add((1,), np.array([[True]]), np.array([1]))
    assert bank.size((1,)) == 3 and bank.size((2,)) == 0
    data, labels = bank.resample((1,), 1000, np.random.default_rng(0))
    assert data.shape == (1000, 1) and set(labels.tolist()) == {0, 1}
    assert (data[:, 0] == (labels == 1)).all()  # a sample's conditions travel with its label
    assert 0.6 < labels.mean() < 0.73  # two thirds of the bank is positive


SPACE = FeatureSpace(feature_names=["a", "b", "c", "d"], categorical=[], categories={}, class_names=["no", "yes"])
ROWS = np.array([[0.9, 0.9, 0.5, 0.5], [0.8, 0.95, 0.6, 0.4], [0.97, 0.7, 0.3, 0.8], [0.6, 0.9, 0.7, 0.6]])


def rule_model(rule) -> Predictor:
    def predict_proba(Z: np.ndarray) -> np.ndarray:
        y = rule(np.asarray(Z)).astype(float)
        return np.stack([1 - y, y], axis=1)

    return Predictor(predict_proba=predict_proba)


def rerun_stability(predictor: Predictor, *, share: bool) -> float:
    X_train = np.random.default_rng(0).uniform(size=(2000, 4))
    runs = AnchorExplainer.reruns_explain(fitted(X_train, predictor, SPACE, range(1, 7)), ROWS, [0, 1, 2, 3],
                                          share_samples=share)
    return float(np.mean([trust.stability([AnchorExplainer.attributions(run[i].data, SPACE.feature_names) for run in runs],
                                          ranked=False)[0] for i in range(len(ROWS))]))


def test_stability_over_shared_samples_still_tells_an_unstable_rule_from_a_stable_one() -> None:
    """Two equally good reasons, each of them alone just about precise enough: which rule a search settles on is luck
    of its samples, and reruns resampling the first rerun's samples see that luck too (a bit less of it than reruns
    on new samples: they resample one draw of the neighbourhood). One reason alone: every rerun says it."""
    stable = rule_model(lambda Z: Z[:, 0] > 0.5)
    unstable = rule_model(lambda Z: ((Z[:, 0] > 0.5) & (Z[:, 2] > 0.1)) | ((Z[:, 1] > 0.5) & (Z[:, 3] > 0.1)))
    assert rerun_stability(stable, share=True) == 1.0
    assert rerun_stability(stable, share=False) == 1.0
    shared, fresh = rerun_stability(unstable, share=True), rerun_stability(unstable, share=False)
    assert fresh < 0.6
    assert shared < 0.75


def test_default_anchors_hold_and_cover_as_much_as_anchor_exps_with_the_same_parameters(heart_table, forest) -> None:
    """The app's defaults (beam 4, 100 samples a round, threshold 0.95) against anchor-exp's ``anchor_beam`` with the
    same ones: precision on fresh samples from anchor-exp's sampler, and coverage, on the same rows. Heart's coverage
    is measured on its 120 training rows and moves with the seed (0.085 against 0.099 here); the bench measures it on
    Adult (``anchor_default_coverage_ratio``, 1.12)."""
    from anchor import anchor_base

    from explanations.ml.explainers.anchors import COVERAGE_SAMPLES
    from explanations.ml.explainers.base import numpy_global_seed

    explainer = AnchorExplainer().fit(heart_table.X_train, forest, heart_table.space, seed=0)
    settings = explainer.settings
    assert (settings["beam_size"], settings["batch_size"], settings["threshold"]) == (4, 100, 0.95)
    found: list = []
    run = explainer.engine_.explain
    explainer.engine_.explain = lambda *a, **k: found.extend(run(*a, **k)) or found[-len(a[0]):]
    X = heart_table.X_test[:8]
    results = explainer.explain(X, list(range(len(X))))

    def predict_label(Z: np.ndarray) -> np.ndarray:
        return np.argmax(forest.predict_proba(Z), axis=1)

    def fresh(x: np.ndarray, label: int, present: list[int], seed: int) -> float:
        sample_fn, _ = explainer.anchor_.get_sample_fn(x, predict_label, desired_label=label)
        with numpy_global_seed(seed):
            return float(np.mean(sample_fn(present, 2000)[2]))

    ours, theirs, cover, cover_theirs = [], [], [], []
    for i, (x, e, anchor) in enumerate(zip(X, results, found)):
        with numpy_global_seed(100 + i):
            sample_fn, _ = explainer.anchor_.get_sample_fn(x, predict_label, desired_label=e.predicted)
            exp = anchor_base.AnchorBaseBeam.anchor_beam(
                sample_fn, delta=0.1, epsilon=0.15, batch_size=100, desired_confidence=0.95, max_anchor_size=None,
                beam_size=4, coverage_samples=COVERAGE_SAMPLES)
        ours.append(fresh(x, e.predicted, list(anchor.present), 200 + i))
        theirs.append(fresh(x, e.predicted, list(exp["feature"]), 300 + i))
        cover.append(e.data["coverage"])
        cover_theirs.append(exp["coverage"][-1] if exp["coverage"] else 1.0)
    assert np.mean(ours) >= min(np.mean(theirs), 0.95) - 0.02, (ours, theirs)
    assert np.mean(cover) >= 0.8 * np.mean(cover_theirs), (cover, cover_theirs)


def test_a_reseeded_copy_is_the_explainer_fitted_with_that_seed(heart_table, forest) -> None:
    """The trust meter reseeds the explain step's explainer instead of fitting five more: the same rules."""
    rows = [0, 1, 2]
    X = heart_table.X_test[rows]
    explainer = AnchorExplainer().fit(heart_table.X_train, forest, heart_table.space, seed=0)
    explainer.explain(X, rows)
    copies = [explainer.reseeded(seed) for seed in (1, 2, 3)]
    assert [c.seed_ for c in copies] == [1, 2, 3] and explainer.seed_ == 0
    assert all(c.engine_ is explainer.engine_ for c in copies)
    ours = AnchorExplainer.reruns_explain(copies, X, rows)
    theirs = AnchorExplainer.reruns_explain(fitted(heart_table.X_train, forest, heart_table.space, (1, 2, 3)), X, rows)
    assert [[r.data for r in run] for run in ours] == [[r.data for r in run] for run in theirs]
    assert AnchorExplainer().reseeded(1) is None  # not fitted: nothing to copy
