"""One contract test over every registered explainer x every classifier x every kind of data it claims
(STYLE.md, rule 3; scikit-learn's ``parametrize_with_checks``).

Each case runs what a job does with one explanation: explain real rows, draw the explainer's own plot (PNG and
SVG), write its alt text, its CSV row, and (for tables, where the app measures them) its trust metrics. A new
explainer with an entry in ``explanations.ml.catalogue`` is picked up here without a line changed; the toy
explainer at the bottom is added exactly as the README's "How to add an explainer" says, and passes too.
"""

from __future__ import annotations

import inspect
import io
import json
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from django.core.files.storage import default_storage
from matplotlib.figure import Figure

from explanations.exports import explanation_summary_text, explanations_csv, job_zip_fresh
from explanations.ml import trust
from explanations.ml.catalogue import (
    EXPLAINER_VARIANTS,
    MODALITIES,
    ExplainerEntry,
    explainer_register,
    explainer_unregister,
)
from explanations.ml.classifiers import CLASSIFIERS, classifier_fit, predictor_build
from explanations.ml.explainers import explainer_explains, explainer_for
from explanations.ml.explainers.base import (
    BaseExplainer,
    ExplanationResult,
    FeatureSpace,
    Predictor,
    category_condition,
    named_attributions,
)
from explanations.ml.explainers.text import words_of
from explanations.ml.modalities import classifier_choices
from explanations.ml.params import Param
from explanations.ml.plots import explanation_alt, explanation_figure, figure_render
from tests.unit_fixtures import *  # noqa: F403
from tests.unit_fixtures import SHARED

# Small enough for the whole grid to run in about a minute on two cores.
FAST_PARAMS = {
    "tabular": {
        "lime": {"num_samples": 300},
        "anchor": {"threshold": 0.9, "batch_size": 100, "beam_size": 2, "max_anchor_size": 2},
        "shap": {"background_size": 20, "nsamples": 100},
        "counterfactual": {"num_counterfactuals": 2, "num_samples": 200},
        "integrated_gradients": {"steps": 16},
        "gradient_shap": {"background_size": 10, "nsamples": 20},
        "smoothgrad": {"nt_samples": 5},
    },
    "text": {
        "lime": {"num_samples": 200},
        "anchor": {"threshold": 0.9, "beam_size": 2, "max_anchor_size": 2},
        "shap": {"nsamples": 100},
    },
    "image": {
        "lime": {"num_samples": 100},
        "anchor": {"threshold": 0.9, "batch_size": 10, "max_anchor_size": 2},
        "shap": {"background_size": 10},
        "gradient_shap": {"background_size": 10, "nsamples": 20},
        "integrated_gradients": {"steps": 16},
        "deeplift_shap": {"background_size": 4},
        "smoothgrad": {"nt_samples": 4},
        "occlusion": {"window": 7, "stride": 7},
        "rise": {"num_masks": 100},
    },
}
EXPLAINED_ROWS = {"tabular": 2, "text": 1, "image": 1}
SCHEMAS = {"tabular": {}, "text": {"text": ["text"]}, "image": {"image_shape": [28, 28]}}  # what says the modality
TEXT_ROWS, IMAGE_ROWS = 300, 400


@dataclass
class Case:
    """Real data of one kind, split, with a fitted model per classifier (fitted once per session)."""

    space: FeatureSpace
    X_train: Any
    X_test: Any
    fit: Any
    predictor: Any
    models: dict


def defaults(classifier_key: str, modality: str) -> dict:
    spec = next(spec for spec in classifier_choices(modality) if spec.key == classifier_key)
    return {p.name: p.default for p in spec.params}


def tabular_case(heart_table) -> Case:
    return Case(heart_table.space, heart_table.X_train, heart_table.X_test,
                lambda key: classifier_fit(key, {}, heart_table.space, heart_table.X_train, heart_table.y_train, seed=0),
                lambda key, model: predictor_build(key, model, heart_table.space), {})


def text_case() -> Case:
    from explanations.job_data import text_data_from_frame
    from explanations.ml.text_models import text_classifier_fit, text_predictor_build

    frame = pd.read_csv(SHARED / "sms_spam.csv").sample(TEXT_ROWS, random_state=0).reset_index(drop=True)
    schema = {"label": "label", "features": ["text"], "categorical": [], "class_names": {"ham": "ham", "spam": "spam"},
              "row_name": "", "text": ["text"]}
    data = text_data_from_frame(frame, schema=schema, test_size=0.25, seed=0)
    X_train, y_train = data.X[data.train_idx], data.y[data.train_idx]
    return Case(data.space, X_train, data.X[data.test_idx],
                lambda key: text_classifier_fit(key, defaults(key, "text"), data.space, X_train, y_train, seed=0),
                lambda key, model: text_predictor_build(key, model, data.space), {})


def image_case() -> Case:
    import torch

    from explanations.job_data import image_data_from_frame
    from explanations.ml.image_models import cnn_fit, image_predictor_build

    frame = pd.read_csv(SHARED / "mnist_5k.csv", nrows=IMAGE_ROWS)
    schema = {"label": "label", "features": [c for c in frame.columns if c != "label"], "categorical": [],
              "class_names": {str(d): str(d) for d in range(10)}, "row_name": "", "image_shape": [28, 28]}
    data = image_data_from_frame(frame, schema=schema, test_size=0.25, seed=0)
    X_train, y_train = data.X[data.train_idx], data.y[data.train_idx]

    def fit(key: str):
        torch.set_num_threads(1)  # two cores shared by several runs: one thread is faster and repeatable
        return cnn_fit({"epochs": 1}, X_train, y_train, seed=0)

    return Case(data.space, X_train, data.X[data.test_idx], fit,
                lambda key, model: image_predictor_build(key, model, data.space), {})


_cases: dict[str, Case] = {}


@pytest.fixture
def case(request, heart_table):
    """The data of the parametrized modality, built once per session."""
    modality = request.node.callspec.params["modality"]
    if modality not in _cases:
        _cases[modality] = tabular_case(heart_table) if modality == "tabular" else (
            text_case() if modality == "text" else image_case())
    return _cases[modality]


def fitted_predictor(case: Case, classifier_key: str):
    if classifier_key not in case.models:
        case.models[classifier_key] = case.fit(classifier_key)
    return case.predictor(classifier_key, case.models[classifier_key])


def contract_cases() -> list:
    """Every (modality, classifier, explainer) the registries allow; read when the tests are collected."""
    return [pytest.param(modality, spec.key, key, id=f"{modality}-{spec.key}-{key}")
            for modality in MODALITIES for key in EXPLAINER_VARIANTS[modality]
            for spec in classifier_choices(modality) if explainer_explains(EXPLAINER_VARIANTS[modality][key], spec.key)]


# ---------------------------------------------------------------- the contract, for any explainer


def contract_check(explainer_cls: type[BaseExplainer], modality: str, classifier_key: str, case: Case,
                   params: dict | None = None) -> list[ExplanationResult]:
    """Explain -> plot (PNG, SVG) -> alt text -> CSV row -> trust, as a job does; returns the explanations."""
    space, n = case.space, EXPLAINED_ROWS[modality]
    predictor = fitted_predictor(case, classifier_key)
    X, rows = case.X_test[:n], [7, 11][:n]
    assert modality in explainer_cls.modalities
    assert explainer_cls.key and explainer_cls.label and explainer_cls.description
    assert explainer_cls.result_kind in {"attributions", "rule"}
    assert set(explainer_cls.trust_extras) <= set(trust.TRUST_EXTRAS)

    explainer = explainer_cls(**(params or {}))
    assert explainer.fit(case.X_train, predictor, space, seed=3) is explainer
    explanations = explainer.explain(X, rows)

    assert [e.row for e in explanations] == rows
    for explanation in explanations:
        data = explanation.data
        probabilities = np.array(explanation.probabilities)
        assert explanation.method == explainer_cls.key
        assert len(probabilities) == len(space.class_names)
        assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)
        assert explanation.predicted == int(np.argmax(probabilities)) == data["label"]
        assert explanation.meta["seed"] == 3
        assert {p.name for p in explainer.params} <= set(explanation.meta)
        assert json.loads(json.dumps(data)) == data  # stored as JSON, read back the same
        if explainer_cls.result_kind == "rule":
            assert isinstance(data["rule"], list)
            assert 0.0 <= data["precision"] <= 1.0 and 0.0 <= data["coverage"] <= 1.0

    explanation = explanations[0]
    names = (list(space.feature_names) if modality != "text" else list(dict.fromkeys(words_of(str(X[0])))))
    attribution = explainer_cls.attributions(explanation.data, names)  # the common core
    assert attribution.shape == (len(names),) and np.isfinite(attribution).all()
    if modality != "tabular" or explainer_cls.result_kind == "rule":  # words, regions, a rule's conditions
        assert np.any(attribution) or not (explanation.data.get("words") or explanation.data.get("rule")
                                           or explanation.data.get("top_regions"))

    title = f"Why row {explanation.row} is predicted {space.class_names[explanation.predicted]}"
    figure = explanation_figure(explainer_cls, explanation, space, title=title, subtitle="contract test")
    assert isinstance(figure, Figure)
    png, svg = figure_render(figure)
    assert png.startswith(b"\x89PNG")
    assert b"<svg" in svg and title.encode() in svg
    assert space.class_names[explanation.predicted] in explanation_alt(explainer_cls, explanation, space)

    stored = SimpleNamespace(classifier=classifier_key, explainer=explainer_cls.key, row=explanation.row, row_name="",
                             in_train=False, true_label="", predicted=space.class_names[explanation.predicted],
                             confidence=max(explanation.probabilities), data=json.loads(json.dumps(explanation.data)),
                             job=SimpleNamespace(schema=SCHEMAS[modality]), meta={})
    summary = explanation_summary_text(stored)  # a row saved before summary_text was stored: the class says it
    assert summary == explainer_cls.summary_text(stored.data) and not summary.startswith("{")
    stored.meta = {"summary_text": summary}  # as the worker saves it (services.results_save.explanation_texts)
    assert explanation_summary_text(stored) == summary
    row = pd.read_csv(io.StringIO(explanations_csv([stored])), keep_default_na=False).iloc[0]
    assert row["explainer"] == explainer_cls.key and row["explanation"].lstrip("'") == summary

    if modality == "tabular":  # trust is measured on tables (it replaces feature values)
        rerun = explainer_cls(**(params or {})).fit(case.X_train, predictor, space, seed=4).explain(X[:1], rows[:1])[0]
        scores = trust.explanation_trust(method=explainer_cls, data=explanation.data, x=X[0], predictor=predictor,
                                         space=space, background=case.X_train[:10], pool=case.X_test[n:60],
                                         reruns=[rerun.data], seed=0)
        assert set(trust.TRUST_KEYS) <= set(scores)
        assert 0.0 <= scores["deletion_auc"] <= 1.0 and 0.0 <= scores["insertion_auc"] <= 1.0
        assert 0.0 <= scores["stability_jaccard"] <= 1.0
        assert (scores["stability_rank_corr"] is None) == (explainer_cls.result_kind == "rule")
        assert {name for name, _ in scores["top_features"]} <= set(space.feature_names)
        np.testing.assert_allclose([v for _, v in scores["top_features"]],
                                   [attribution[names.index(name)] for name, _ in scores["top_features"]], atol=1e-6)
        assert len(scores["curves"]["deletion"]) == len(space.feature_names) + 1
    return explanations


# ---------------------------------------------------------------- what the built-in explainers promise on top


def model_output(predictor: Predictor, x: np.ndarray, explanation: ExplanationResult) -> float:
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


def check_lime(explanation: ExplanationResult, space: FeatureSpace, predictor: Predictor, x: np.ndarray) -> None:
    data = explanation.data
    weights = [w for _, w in data["weights"]]
    assert weights and len(weights) <= FAST_PARAMS["tabular"]["lime"].get("num_features", 5)
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


def check_anchor(explanation: ExplanationResult, space: FeatureSpace, predictor: Predictor, x: np.ndarray) -> None:
    data = explanation.data
    assert data["meets_threshold"] in (True, False) and 0.5 <= data["threshold"] <= 1.0
    assert data["precision"] >= data["threshold"] or not data["meets_threshold"]
    for condition in data["rule"]:
        assert any(name in condition for name in space.feature_names), condition
        assert re.search(r" = |<=|<|>", condition), condition
        if " = " in condition:
            feature, _, value = condition.partition(" = ")
            assert value in space.categories[space.feature_names.index(feature)], condition


def check_shap(explanation: ExplanationResult, space: FeatureSpace, predictor: Predictor, x: np.ndarray) -> None:
    data = explanation.data
    assert list(data["values"]) == space.feature_names
    assert set(data["feature_values"]) == set(space.feature_names)
    assert data["algorithm"] in {"tree", "linear", "kernel", "permutation"}
    assert data["output"] in {"probability", "log-odds"}
    total = sum(data["values"].values()) + data["base_value"]
    tolerance = 1e-2 if data["algorithm"] == "kernel" else 1e-3
    assert total == pytest.approx(model_output(predictor, x, explanation), abs=tolerance)


def check_counterfactual(explanation: ExplanationResult, space: FeatureSpace, predictor: Predictor, x: np.ndarray) -> None:
    data = explanation.data
    assert data["desired"] != data["label"] and data["desired_name"] == space.class_names[data["desired"]]
    assert 1 <= len(data["counterfactuals"]) <= FAST_PARAMS["tabular"]["counterfactual"]["num_counterfactuals"]
    values = np.array([cf["values"] for cf in data["counterfactuals"]])
    assert (np.argmax(predictor.predict_proba(values), axis=1) == data["desired"]).all()  # every one reaches the class
    for cf, row in zip(data["counterfactuals"], values):
        changed = [space.feature_names[j] for j in np.flatnonzero(row != x)]
        assert changed == [c["feature"] for c in cf["changes"]] and not set(changed) & set(data["fixed"])
        for j in space.categories:
            assert space.value_text(j, row[j]) in space.categories[j]


def check_deeplift(explanation: ExplanationResult, space: FeatureSpace, predictor: Predictor, x: np.ndarray) -> None:
    """DeepLIFT adds up to the gap between the row's score and the zero baseline's, once summed back onto columns."""
    import torch

    data = explanation.data
    assert list(data["values"]) == space.feature_names and data["output"] == "logit"
    assert [name for name in data["feature_of"]] == sorted(data["values"], key=lambda n: -abs(data["values"][n]))[:len(data["feature_of"])]
    model = predictor.pipeline.named_steps["model"]
    encoded = torch.tensor(np.asarray(predictor.transform(x[None]), dtype=np.float32))
    with torch.no_grad():
        gap = (model.module_(encoded) - model.module_(torch.zeros_like(encoded)))[0]
    target = list(model.classes_).index(explanation.predicted)
    assert sum(data["values"].values()) == pytest.approx(float(gap[target]), abs=1e-3)


TABULAR_CHECKS = {"lime": check_lime, "anchor": check_anchor, "shap": check_shap, "counterfactual": check_counterfactual,
                  "deeplift": check_deeplift}


@pytest.mark.parametrize(("modality", "classifier_key", "explainer_key"), contract_cases())
def test_explainer_contract(modality: str, classifier_key: str, explainer_key: str, case: Case) -> None:
    explainer_cls = explainer_for(explainer_key, modality)
    params = FAST_PARAMS[modality].get(explainer_key, {})
    explanations = contract_check(explainer_cls, modality, classifier_key, case, params)
    if modality == "tabular" and explainer_key in TABULAR_CHECKS:
        predictor = fitted_predictor(case, classifier_key)
        for x, explanation in zip(case.X_test, explanations):
            TABULAR_CHECKS[explainer_key](explanation, case.space, predictor, x)


def test_every_modality_has_cases() -> None:
    """The grid is not empty by accident: every kind of data has explainers and classifiers to cross."""
    cases = {param.values[0] for param in contract_cases()}
    assert cases == set(MODALITIES)
    assert len(contract_cases()) == sum(explainer_explains(explainer, spec.key) for m in MODALITIES
                                        for explainer in EXPLAINER_VARIANTS[m].values() for spec in classifier_choices(m))
    assert {key for m, _, key in (p.values for p in contract_cases()) if m == "tabular"} == set(EXPLAINER_VARIANTS["tabular"])


@pytest.mark.parametrize("classifier_key", [key for key, spec in CLASSIFIERS.items() if "tabular" in spec.modalities])
def test_classifier_survives_joblib_round_trip(classifier_key: str, heart_table) -> None:
    model = classifier_fit(classifier_key, {}, heart_table.space, heart_table.X_train, heart_table.y_train, seed=0)
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    before = predictor_build(classifier_key, model, heart_table.space).predict_proba(heart_table.X_test)
    after = predictor_build(classifier_key, loaded, heart_table.space).predict_proba(heart_table.X_test)
    np.testing.assert_array_equal(before, after)


# ---------------------------------------------------------------- a new explainer, added as the README says


class OcclusionExplainer(BaseExplainer):
    """The README's worked example, as written there (step 1: one module)."""

    plot_function = "explanations.ml.plots.lime:lime_plot"  # it draws [[condition, weight], ...] as bars
    alt_text_function = "explanations.ml.plots.lime:lime_alt_text"

    @classmethod
    def attributions(cls, data: dict[str, Any], feature_names: Sequence[str]) -> np.ndarray:
        return named_attributions(zip(data["feature_of"], (w for _, w in data["weights"])), feature_names)

    @classmethod
    def summary_text(cls, data: dict[str, Any]) -> str:
        return "; ".join(f"{condition}: {w:+.3f}" for condition, w in data["weights"])

    def _condition(self, x: np.ndarray, j: int) -> str:
        space = self.space_
        if j in space.categories:
            return category_condition(space, j, x[j])
        return f"{space.feature_names[j]} = {space.value_text(j, x[j])}"

    def _explain_rows(self, X, rows, predicted, proba):
        background = self.X_train_[: self.settings["background_size"]]
        out = []
        for x, label, p in zip(X, predicted, proba):
            drops = []
            for j in range(X.shape[1]):
                occluded = np.repeat(x[None, :], len(background), axis=0)
                occluded[:, j] = background[:, j]
                drops.append(p[label] - self.predict_proba(occluded)[:, label].mean())
            top = [j for j in np.argsort(-np.abs(drops))[: self.settings["num_features"]] if drops[j]]
            out.append({"label": int(label), "weights": [[self._condition(x, j), float(drops[j])] for j in top],
                        "feature_of": [self.space_.feature_names[j] for j in top]})
        return out


# Step 2, the catalogue line, as the README writes it but for the module this class lives in.
OCCLUSION_ENTRY = ExplainerEntry(
    "occlusion", "tabular", "Occlusion",
    "Occlusion: how much the prediction drops when one feature is replaced by typical values.",
    (Param("background_size", "Background rows", 20, min=5, max=200),
     Param("num_features", "Features to show", 5, min=1, max=30)),
    f"{__name__}:OcclusionExplainer")


@pytest.fixture
def occlusion():
    """What ``EXPLAINER_ENTRIES`` does for each of its lines (undone afterwards)."""
    explainer_register(OCCLUSION_ENTRY)
    yield OcclusionExplainer
    explainer_unregister(OCCLUSION_ENTRY)
    assert "occlusion" not in EXPLAINER_VARIANTS["tabular"]


@pytest.mark.django_db
def test_a_new_explainer_needs_one_module_and_one_line(occlusion, heart_table, zoo, user, api, run_on_commit) -> None:
    """Step 3: the contract test passes for every table classifier, and the app shows it everywhere."""
    from django.test import Client
    from django.urls import reverse

    from explanations.models import Explanation as SavedExplanation
    from explanations.models import Plot
    from explanations.services.job_create import job_create

    assert explainer_for("occlusion", "tabular") is occlusion
    source = inspect.getsource(OcclusionExplainer).replace(f'    """{OcclusionExplainer.__doc__}"""\n\n', "")
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert source in readme  # the README shows this class
    entry = inspect.getsource(inspect.getmodule(OcclusionExplainer)).split("OCCLUSION_ENTRY = ExplainerEntry(\n")[1]
    entry = entry.split('    f"{__name__}:OcclusionExplainer")')[0]  # ... and this entry, named by its module there
    assert f"{entry}    \"explanations.ml.explainers.occlusion:OcclusionExplainer\"),\n" in readme
    assert occlusion.key == "occlusion" and occlusion.params == OCCLUSION_ENTRY.params  # read from the entry
    case = _cases.setdefault("tabular", tabular_case(heart_table))
    for spec in classifier_choices("tabular"):
        contract_check(occlusion, "tabular", spec.key, case)

    listed = {e["key"]: e for e in api.get("/api/explainers/").json()}  # the API and the job form list it
    # (images have an occlusion explainer of their own: the key now lists both kinds of data)
    assert listed["occlusion"]["label"] == "Occlusion" and "tabular" in listed["occlusion"]["modalities"]
    assert {p["name"] for p in listed["occlusion"]["variants"]["tabular"]["params"]} == {"background_size", "num_features"}

    client = Client()
    client.force_login(user)
    form = client.get(reverse("explanations:job_new"), {"dataset": zoo.pk}).content.decode()
    assert 'value="occlusion"' in form and OcclusionExplainer.description in form

    with run_on_commit():
        job = job_create(owner=user, dataset=zoo, classifiers=["random_forest"], explainers=["occlusion", "lime"],
                         rows={"ids": [0, 5]}, params={"occlusion": {"background_size": 10}, "lime": {"num_samples": 300},
                                                       "trust": {"stability_runs": 1}})
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    saved = list(SavedExplanation.objects.filter(job=job, explainer="occlusion").order_by("row"))
    assert [e.row for e in saved] == [0, 5]
    for e in saved:  # trust: measured like any other explainer's, agreement with LIME included
        assert e.trust["deletion_auc"] is not None and e.trust["stability_jaccard"] is not None
        assert e.trust["agreement"] is not None and e.trust["top_features"]
        plot = Plot.objects.get(explanation=e)
        assert plot.alt.startswith("Predicted ") and "(OCCLUSION)" in plot.alt
    with default_storage.open(job_zip_fresh(job=job), "rb") as handle:  # packed at the first download  # the exports
        archive = zipfile.ZipFile(io.BytesIO(handle.read()))
    frame = pd.read_csv(io.BytesIO(archive.read("explanations.csv")), keep_default_na=False)
    rows = frame[frame["explainer"] == "occlusion"]
    assert list(rows["explanation"].str.lstrip("'")) == [OcclusionExplainer.summary_text(e.data) for e in saved]
    records = [r for r in json.loads(archive.read("explanations.json")) if r["explainer"] == "occlusion"]
    assert len(records) == 2 and all(r["trust"]["deletion_auc"] is not None and r["plots"] for r in records)
    summary = {(e["explainer"], e["classifier"]) for e in api.get(f"/api/jobs/{job.pk}/summary/").json()["table"]}
    assert ("occlusion", "random_forest") in summary
