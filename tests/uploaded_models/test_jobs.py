"""A job explains uploaded models beside trained ones, through the same phases (service test, eager tasks)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from explainer_site.exceptions import ApplicationError
from tests.unit_fixtures import *  # noqa: F403
from tests.uploaded_models.conftest import model_file

pytestmark = pytest.mark.django_db

FAST = {"lime": {"num_samples": 300}, "shap": {"background_size": 20, "nsamples": 100},
        "anchor": {"threshold": 0.9, "batch_size": 100, "beam_size": 2, "max_anchor_size": 2},
        "counterfactual": {"num_counterfactuals": 2, "num_samples": 300}}


def uploaded(user, dataset, content: bytes, format: str, name: str):
    from uploaded_models.services import uploaded_model_create

    return uploaded_model_create(owner=user, dataset=dataset, file=model_file(content, f"{name}.{format}"), name=name,
                                 format=format)


def test_a_job_explains_an_onnx_and_a_skops_model_beside_a_random_forest(user, adult, onnx_logistic, skops_boosting,
                                                                        run_on_commit):
    from django.test import Client
    from django.urls import reverse

    from explanations.api import job_payload
    from explanations.exports import explanation_details_csvs, explanation_record, explanations_csv, job_manifest
    from explanations.job_data import job_data_build
    from explanations.models import Explanation
    from explanations.report import job_report_html
    from explanations.services.job_create import job_create
    from uploaded_models.job_classifiers import uploaded_model_job_load

    onnx = uploaded(user, adult, onnx_logistic, "onnx", "Scorecard")
    skops = uploaded(user, adult, skops_boosting[0], "skops", "Boosting")
    keys = ["random_forest", onnx.key, skops.key]
    with run_on_commit():
        job = job_create(owner=user, dataset=adult, classifiers=keys, explainers=["lime", "anchor", "shap", "counterfactual"],
                         rows={"ids": [3, 8]}, params={**FAST, "random_forest": {"n_estimators": 20}})
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    runs = {run.classifier: run for run in job.runs.all()}
    assert set(runs) == set(keys)
    assert runs[onnx.key].metrics["accuracy"] > 0.7
    for key in keys:
        explained = Explanation.objects.filter(job=job, classifier=key)
        assert sorted(explained.values_list("explainer", flat=True)) == [
            "anchor", "anchor", "counterfactual", "counterfactual", "lime", "lime", "shap", "shap"]
    shap = Explanation.objects.filter(job=job, classifier=onnx.key, explainer="shap").first()
    assert shap.data["algorithm"] == "kernel"  # model-agnostic: the graph has no hook for exact SHAP
    assert "Scorecard (uploaded), SHAP" in shap.plots.first().title
    tree = Explanation.objects.filter(job=job, classifier=skops.key, explainer="shap").first()
    assert tree.data["algorithm"] == "tree" and tree.data["output"] == "log-odds"  # its trees, exactly
    assert tree.trust["additivity_error"] < 1e-6
    labels = {"random_forest": "Random forest", onnx.key: "Scorecard (uploaded)", skops.key: "Boosting (uploaded)"}
    payload = job_payload(job)  # pages, the API and every export name an uploaded model by its name, keyed as it is
    assert payload["classifiers"] == keys and payload["classifier_labels"] == labels
    assert {run["classifier"]: run["label"] for run in payload["runs"]} == labels
    table = pd.read_csv(io.StringIO(explanations_csv(list(job.explanations.all()))))
    assert dict(zip(table["classifier"], table["classifier_label"])) == labels
    details = pd.read_csv(io.StringIO(explanation_details_csvs(list(job.explanations.all()))["counterfactuals.csv"]))
    assert set(zip(details["classifier"], details["classifier_label"])) <= set(labels.items())
    assert job_manifest(job)["classifier_labels"] == labels
    assert explanation_record(shap, lambda plot, extension: "")["classifier_label"] == "Scorecard (uploaded)"
    assert "Scorecard (uploaded)" in job_report_html(job=job) and "model:" not in job_report_html(job=job)
    client = Client()
    client.force_login(user)
    page = client.get(reverse("explanations:results", args=[job.pk])).content.decode()
    assert f'id="tab-{onnx.key}"' in page and ">Scorecard (uploaded)</button>" in page

    data = job_data_build(dataset=adult, schema=adult.schema, test_size=0.25, seed=0)
    for model in (onnx, skops):  # what would have to change, asked of each uploaded model itself
        loaded = uploaded_model_job_load(key=model.key, data=data, dataset=adult)
        for explanation in Explanation.objects.filter(job=job, classifier=model.key, explainer="counterfactual"):
            x = data.X[explanation.row]
            values = np.array([cf["values"] for cf in explanation.data["counterfactuals"]])
            assert len(values) >= 1 and set(explanation.data["fixed"]) >= {"age", "race", "sex", "marital-status"}
            fixed = [data.space.feature_names.index(name) for name in explanation.data["fixed"]]
            assert (loaded.predict_proba(values).argmax(axis=1) == explanation.data["desired"]).all()
            np.testing.assert_array_equal(values[:, fixed], np.repeat(x[None, fixed], len(values), axis=0))


def test_treeshap_on_a_skops_forest_adds_up_to_its_probabilities(user, adult, adult_frame, adult_columns):
    from sklearn.ensemble import RandomForestClassifier

    from explanations.job_data import job_data_build
    from explanations.ml.classifiers import predictor_build
    from explanations.ml.explainers.shap import ShapExplainer
    from tests.uploaded_models.conftest import skops_pipeline
    from uploaded_models.job_classifiers import uploaded_model_job_load

    content, pipeline = skops_pipeline(adult_frame, adult_columns, RandomForestClassifier(n_estimators=20, random_state=0))
    forest = uploaded(user, adult, content, "skops", "Forest")
    data = job_data_build(dataset=adult, schema=adult.schema, test_size=0.25, seed=0)
    predictor = predictor_build(forest.key, uploaded_model_job_load(key=forest.key, data=data, dataset=adult),
                                data.space)
    assert predictor.tree_model is not None and sum(len(g) for g in predictor.groups) == len(predictor.transform(data.X[:1])[0])
    rows = [3, 8, 21]
    results = ShapExplainer(background_size=20).fit(data.X[data.train_idx], predictor, data.space).explain(data.X[rows], rows)
    own = pipeline.predict_proba(adult_frame[adult_columns[0]].iloc[rows])
    for i, result in enumerate(results):
        assert result.data["algorithm"] == "tree" and result.data["output"] == "probability"
        total = sum(result.data["values"].values()) + result.data["base_value"]
        assert total == pytest.approx(own[i, result.predicted], abs=1e-6)


def test_a_job_refuses_a_model_of_another_dataset_or_owner(user, other_user, adult, heart, onnx_logistic):
    from explanations.services.job_create import job_create

    onnx = uploaded(user, adult, onnx_logistic, "onnx", "Scorecard")
    with pytest.raises(ApplicationError, match="There is no uploaded model “model:"):
        job_create(owner=user, dataset=heart, classifiers=[onnx.key], explainers=["lime"], rows={"ids": [0]})
    with pytest.raises(ApplicationError, match="There is no uploaded model “model:999999”"):
        job_create(owner=user, dataset=adult, classifiers=["model:999999"], explainers=["lime"], rows={"ids": [0]})


def test_the_jobs_api_takes_a_model_key_beside_registry_keys(api, user, adult, onnx_logistic):
    onnx = uploaded(user, adult, onnx_logistic, "onnx", "Scorecard")
    response = api.post("/api/jobs/", {"dataset": adult.pk, "classifiers": ["random_forest", onnx.key],
                                       "explainers": ["lime"], "rows": {"ids": [0]}}, format="json")
    assert response.status_code == 201, response.json()
    job = api.get(f"/api/jobs/{response.json()['id']}/").json()
    assert job["classifiers"] == ["random_forest", onnx.key] and job["status"] == "queued"
    bad = api.post("/api/jobs/", {"dataset": adult.pk, "classifiers": ["model:abc"], "explainers": ["lime"]}, format="json")
    assert bad.status_code == 400 and bad.json()["field"] == "classifiers"


def test_an_uploaded_model_costs_and_is_estimated_like_a_trained_one_of_its_kind(user, adult, onnx_logistic,
                                                                                  skops_boosting, settings):
    from explanations.estimates import FAMILY_RATES, classifier_rates, plan_build
    from explanations.quotas import job_cost
    from explanations.services.job_create import job_create, job_options_clean

    onnx = uploaded(user, adult, onnx_logistic, "onnx", "Scorecard")
    skops = uploaded(user, adult, skops_boosting[0], "skops", "Boosting")

    def cost(classifiers: list[str]) -> int:
        options = job_options_clean(dataset=adult, classifiers=classifiers, explainers=["lime", "shap"],
                                    rows={"random": 10}, params={})
        return job_cost(dataset=adult, options=options)

    assert cost([onnx.key]) == cost([skops.key]) == cost(["logistic_regression"]) > 0
    assert cost(["random_forest", onnx.key, skops.key]) == 3 * cost(["random_forest"])
    settings.EXPLAINER_MAX_JOB_COST = cost(["random_forest", onnx.key]) - 1  # two classifiers, trained or not
    with pytest.raises(ApplicationError, match="This job is too big"):
        job_create(owner=user, dataset=adult, classifiers=["random_forest", onnx.key], explainers=["lime", "shap"],
                   rows={"random": 10})
    assert classifier_rates(skops.key, "tabular") == FAMILY_RATES["tree"]  # a skops boosting pipeline: trees
    assert classifier_rates(onnx.key, "tabular") == FAMILY_RATES["other"]
    plan = plan_build(schema=adult.schema, n_rows=adult.n_rows, classifiers=[skops.key, onnx.key], explainers=["lime"],
                      rows=10, params={})
    assert set(plan.runs) == {skops.key, onnx.key} and all(run.total > 0 for run in plan.runs.values())
