"""The one classifier registry: every modality's classifiers, read the same way as explainers are."""

import json
from pathlib import Path

import pytest

from tests.unit_fixtures import *  # noqa: F403

EXPECTED = Path(__file__).with_name("classifiers_api.json")


@pytest.mark.django_db
def test_classifier_list_api_is_unchanged(api):
    """Recorded before TEXT_CLASSIFIERS joined the registry: keys, labels, per-modality variants, all alike."""
    response = api.get("/api/classifiers/")
    assert response.status_code == 200
    assert response.json() == json.loads(EXPECTED.read_text())


def test_each_modality_offers_its_classifiers_in_registry_order():
    from explanations.ml.modalities import classifier_choices

    assert [s.key for s in classifier_choices("tabular")] == [
        "random_forest", "logistic_regression", "svm", "gradient_boosting", "xgboost", "lightgbm", "knn", "decision_tree",
        "naive_bayes", "mlp"]
    assert [s.key for s in classifier_choices("text")] == ["logistic_regression", "svm", "naive_bayes"]
    assert [s.key for s in classifier_choices("image")] == ["cnn"]
    assert all(s.modality == "text" for s in classifier_choices("text"))


def test_a_key_on_the_wrong_data_names_the_keys_that_fit():
    from explanations.ml.modalities import classifier_for

    assert classifier_for("svm", "text").description.startswith("Linear support vector machine on word frequencies")
    assert classifier_for("svm", "tabular").description.startswith("Support vector machine: draws a curved boundary")
    with pytest.raises(KeyError, match="Random forest cannot learn from text data; choose from logistic_regression, svm, naive_bayes"):
        classifier_for("random_forest", "text")
    with pytest.raises(KeyError, match="Unknown classifier “nope”; choose from cnn"):
        classifier_for("nope", "image")


def test_every_key_lists_the_modalities_it_has_a_variant_for():
    from explanations.ml.classifiers import CLASSIFIER_VARIANTS, CLASSIFIERS

    for key, spec in CLASSIFIERS.items():
        assert list(spec.modalities) == [m for m, variants in CLASSIFIER_VARIANTS.items() if key in variants], key
    for modality, variants in CLASSIFIER_VARIANTS.items():
        assert variants, modality
        for key, spec in variants.items():
            assert spec.key == key and spec.modality == modality and spec.label == CLASSIFIERS[key].label


def test_the_forest_grows_on_every_engine_thread_then_predicts_on_one(heart_table, monkeypatch):
    """Fitting on two jobs gives the trees of one job; the fitted model predicts on one (small batches, see PREDICT_JOBS)."""
    import numpy as np

    from explanations.ml.classifiers import PREDICT_JOBS, classifier_fit

    fits = []
    for threads in ("2", "1"):
        monkeypatch.setenv("EXPLAINER_ENGINE_THREADS", threads)
        model = classifier_fit("random_forest", {"n_estimators": 20}, heart_table.space, heart_table.X_train,
                               heart_table.y_train, seed=0)
        fits.append(model)
    assert [m.named_steps["model"].n_jobs for m in fits] == [PREDICT_JOBS, PREDICT_JOBS] == [1, 1]
    np.testing.assert_array_equal(fits[0].predict_proba(heart_table.X_test), fits[1].predict_proba(heart_table.X_test))
