"""The RBF SVM shortcut behind Kernel SHAP: the model's own probabilities on every coalition, the same SHAP values."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC

from explanations.ml.classifiers import classifier_fit, predictor_build
from explanations.ml.engine.kernel_shap import KernelShapBatch
from explanations.ml.engine.rbf_svc import RbfSvcCoalitions
from explanations.ml.explainers.shap import ShapExplainer


def _svm(table, y):
    model = classifier_fit("svm", {}, table.space, table.X_train, y, seed=0)
    return predictor_build("svm", model, table.space)


@pytest.fixture(scope="module")
def svm_multi(heart_table):
    """Heart's five severities; the rarest is absent from these 120 training rows, as real splits go."""
    return _svm(heart_table, heart_table.y_train)


@pytest.fixture(scope="module")
def svm_binary(heart_table):
    return _svm(heart_table, (heart_table.y_train > 0).astype(int))


@pytest.mark.parametrize("which", ["svm_binary", "svm_multi"])
def test_coalition_outputs_are_the_models_own_probabilities(heart_table, which, request) -> None:
    predictor = request.getfixturevalue(which)
    n_classes = len(heart_table.space.class_names)
    background = heart_table.X_train[:12]
    exact = RbfSvcCoalitions.build(predictor.pipeline, predictor.groups, n_classes, background)
    assert exact is not None
    rng = np.random.default_rng(1)
    for x in heart_table.X_test[:3]:  # rows with missing values among them: the imputer acts per column too
        varying = np.flatnonzero((background != x).any(axis=0))
        masks = rng.random((40, len(varying))) < 0.5
        fast = exact.coalition_proba(x, varying, masks, exact.background_prepare(background))
        inputs = np.repeat(background[None, :, :], len(masks), axis=0)
        for s, mask in enumerate(masks):
            inputs[s][:, varying[mask]] = x[varying[mask]]
        slow = predictor.predict_proba(inputs.reshape(-1, x.shape[0])).reshape(fast.shape)
        np.testing.assert_allclose(fast, slow, atol=1e-10, rtol=0)


def test_kernel_shap_with_the_shortcut_equals_kernel_shap_with_model_calls(heart_table, svm_multi) -> None:
    background = heart_table.X_train[:10]
    X = heart_table.X_test[:4]
    exact = RbfSvcCoalitions.build(svm_multi.pipeline, svm_multi.groups, len(heart_table.space.class_names), background)
    fast = KernelShapBatch(background, svm_multi.predict_proba, seed=0, coalitions=exact)
    slow = KernelShapBatch(background, svm_multi.predict_proba, seed=0)
    fx = svm_multi.predict_proba(X)
    np.testing.assert_allclose(fast.explain(X, fx, 300), slow.explain(X, fx, 300), atol=1e-9, rtol=0)


def test_the_app_uses_the_shortcut_for_svms_only(heart_table, svm_multi) -> None:
    explainer = ShapExplainer(algorithm="kernel", background_size=20).fit(heart_table.X_train, svm_multi, heart_table.space)
    assert isinstance(explainer.shap_.coalitions_, RbfSvcCoalitions)
    logistic = predictor_build("logistic_regression", classifier_fit(
        "logistic_regression", {}, heart_table.space, heart_table.X_train, heart_table.y_train, seed=0), heart_table.space)
    explainer = ShapExplainer(algorithm="kernel", background_size=20).fit(heart_table.X_train, logistic, heart_table.space)
    assert explainer.shap_.coalitions_ is None


def test_a_preprocessing_that_mixes_columns_gets_plain_model_calls(heart_table, svm_multi) -> None:
    """PCA makes every input column depend on every feature: the per-feature distances would be wrong, and
    ``build``'s check on real coalitions must notice and decline."""
    prep = svm_multi.pipeline.named_steps["prep"]
    mixed = Pipeline([("prep", Pipeline([("columns", prep), ("pca", PCA(n_components=5))])),
                      ("model", SVC(probability=True, random_state=0))])
    mixed.fit(heart_table.X_train, heart_table.y_train)
    groups = [[j % 5] for j in range(heart_table.X_train.shape[1])]  # what a wrong guess would look like
    assert RbfSvcCoalitions.build(mixed, groups, 5, heart_table.X_train[:12]) is None
