from __future__ import annotations

import pytest

from explanations.ml.catalogue import CLASSIFIERS, EXPLAINERS, explainer_entry_get
from explanations.ml.classifiers import classifier_fit
from explanations.ml.errors import ExplainerError, NotFittedError
from explanations.ml.explainers import explainer_for
from explanations.ml.params import Param, params_clean


def test_param_clean_coerces_and_defaults() -> None:
    assert Param("n", "Trees", 100, min=1, max=500).clean("20") == 20
    assert Param("n", "Trees", 100).clean("") == 100
    assert Param("c", "C", 1.0, kind="float", min=0.1, max=10).clean("2.5") == 2.5
    assert Param("b", "Bin", True, kind="bool").clean("off") is False
    assert Param("a", "Algorithm", "auto", kind="choice", choices=("auto", "tree")).clean("tree") == "tree"


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        (Param("n", "Trees", 100, min=1, max=500), "2.5", "must be an integer"),
        (Param("n", "Trees", 100, min=1, max=500), "many", "must be an integer"),
        (Param("n", "Trees", 100, min=1, max=500), 501, "between 1 and 500"),
        (Param("c", "C", 1.0, kind="float", min=0.1, max=10), "x", "must be a number"),
        (Param("a", "Algorithm", "auto", kind="choice", choices=("auto", "tree")), "forest", "one of auto, tree"),
    ],
)
def test_param_clean_explains_bad_values(param: Param, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        param.clean(value)


def test_params_clean_rejects_unknown_names_and_fills_defaults() -> None:
    spec = EXPLAINERS["lime"].params
    assert params_clean(spec, {"num_features": "7"}) == {"num_features": 7, "num_samples": 1000, "top_labels": 1,
                                                             "discretize_continuous": True, "shared_samples": True}
    with pytest.raises(ValueError, match="Unknown parameter"):
        params_clean(spec, {"num_feature": 3})


def test_every_plugin_describes_itself_and_accepts_its_defaults() -> None:
    for plugin in [*CLASSIFIERS.values(), *EXPLAINERS.values()]:
        assert plugin.label and plugin.description and "\n" not in plugin.description
        params_clean(plugin.params, {})
    for key, spec in CLASSIFIERS.items():
        assert spec.key == key and spec.family in {"tree", "linear", "other"}
        assert spec.queue == ("gpu" if key in ("mlp", "cnn") else "celery")


def test_explainer_lookup_and_init_validation() -> None:
    assert explainer_entry_get("shap") is EXPLAINERS["shap"]
    with pytest.raises(ExplainerError, match="Unknown explainer 'lemon'"):
        explainer_entry_get("lemon")
    with pytest.raises(KeyError):
        explainer_entry_get("lemon")
    with pytest.raises(ValueError, match="between 0.5 and 1"):
        explainer_for("anchor", "tabular")(threshold=0.2)


def test_explain_before_fit_is_an_explainer_error(heart_table) -> None:
    with pytest.raises(NotFittedError):
        explainer_for("lime", "tabular")().explain(heart_table.X_test[:1], [0])


def test_classifier_fit_rejects_bad_params_and_single_class(heart_table) -> None:
    with pytest.raises(ValueError, match="Number of trees"):
        classifier_fit("random_forest", {"n_estimators": 0}, heart_table.space, heart_table.X_train, heart_table.y_train, seed=0)
    with pytest.raises(ValueError, match="only one class"):
        classifier_fit("decision_tree", {}, heart_table.space, heart_table.X_train, heart_table.y_train * 0, seed=0)
    with pytest.raises(KeyError, match="Unknown classifier"):
        classifier_fit("catboost", {}, heart_table.space, heart_table.X_train, heart_table.y_train, seed=0)  # xgboost is one now
