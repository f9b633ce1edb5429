"""Counterfactuals through the API and the pages: the job form's fixed features, a job's row page, trust and exports."""

from __future__ import annotations

import io
import zipfile

import pandas as pd
import pytest
from django.http import QueryDict
from django.test import Client
from django.urls import reverse

from explanations.views import job_form_request
from tests.unit_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

FAST = {"counterfactual": {"num_counterfactuals": 2, "num_samples": 200, "fixed_features": ["age", "sex"],
                           "bounds": {"chol": [150, 300]}},
        "trust": {"stability_runs": 1}}


def test_the_form_offers_it_unticked_with_personal_columns_fixed_and_says_why(user, heart) -> None:
    client = Client()
    client.force_login(user)
    page = client.get(reverse("explanations:job_new"), {"dataset": heart.pk}).content.decode()
    assert 'value="counterfactual"' in page and 'value="counterfactual" checked' not in page
    assert 'name="counterfactual__fixed_features" value="age" checked' in page
    assert 'name="counterfactual__fixed_features" value="sex" checked' in page
    assert 'name="counterfactual__fixed_features" value="chol" >' in page
    assert "Ticked to start with: age, sex" in page and "personal attribute" in page
    assert 'name="counterfactual__bounds"' in page and 'name="counterfactual__desired_class"' in page


def test_the_form_tells_none_ticked_from_not_shown() -> None:
    base = "explainers=counterfactual&classifiers=random_forest"
    unticked = job_form_request(QueryDict(f"{base}&counterfactual__fixed_features__shown=1"))
    assert unticked["params"]["counterfactual"]["fixed_features"] == []
    ticked = job_form_request(QueryDict(f"{base}&counterfactual__fixed_features__shown=1&counterfactual__fixed_features=age"
                                        "&counterfactual__bounds=chol%3A+150%2C+300"))
    assert ticked["params"]["counterfactual"] == {"fixed_features": ["age"], "bounds": "chol: 150, 300"}
    assert "fixed_features" not in job_form_request(QueryDict(base))["params"]["counterfactual"]


def test_a_job_shows_counterfactuals_on_the_row_page_in_trust_and_in_the_exports(api, user, heart, run_on_commit) -> None:
    with run_on_commit():
        response = api.post("/api/jobs/", {"dataset": heart.pk, "classifiers": ["logistic_regression"],
                                           "explainers": ["counterfactual"], "rows": {"ids": [3, 8]}, "params": FAST},
                            format="json")
    assert response.status_code == 201, response.json()
    job_id = response.json()["id"]
    assert api.get(f"/api/jobs/{job_id}/").json()["status"] == "succeeded"
    records = api.get(f"/api/jobs/{job_id}/explanations/").json()
    assert len(records) == 2
    for record in records:
        assert record["trust"]["counterfactual_validity"] == 1.0 and record["trust"]["counterfactual_sparsity"] >= 1
        assert record["data"]["fixed"] == ["age", "sex"] and record["plots"]
        for cf in record["data"]["counterfactuals"]:
            assert not {"age", "sex"} & {c["feature"] for c in cf["changes"]}
            chol = [c for c in cf["changes"] if c["feature"] == "chol"]
            assert all(150 <= float(c["to"]) <= 300 for c in chol)

    client = Client()
    client.force_login(user)
    page = client.get(reverse("explanations:row", args=[job_id, 3])).content.decode()
    first = records[0]["data"]["counterfactuals"][0] if records[0]["row"] == 3 else records[1]["data"]["counterfactuals"][0]
    assert 'data-testid="detail-table"' in page and "What would have to change" in page
    assert f"change {first['changes'][0]['feature']} from {first['changes'][0]['from']}" in page
    assert "Counterfactual validity" in page and "really gets the class asked for" in page

    response = api.get(f"/api/jobs/{job_id}/download/")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    changes = pd.read_csv(io.BytesIO(archive.read("counterfactuals.csv")), keep_default_na=False)
    assert list(changes.columns) == ["classifier", "classifier_label", "explainer", "row", "row_name", "counterfactual", "feature",
                                     "from", "to", "predicted", "probability"]
    assert len(changes) == sum(len(cf["changes"]) for r in records for cf in r["data"]["counterfactuals"])
    summary = pd.read_csv(io.BytesIO(archive.read("explanations.csv")), keep_default_na=False)
    assert summary["explanation"].str.contains("→ predicted").all()


def test_unknown_features_and_bad_bounds_are_refused_with_a_sentence(api, heart) -> None:
    for params, words in [({"counterfactual": {"fixed_features": ["salary"]}}, "'salary' is not a feature"),
                          ({"counterfactual": {"bounds": {"chol": [300, 100]}}}, "low bound of 'chol' is above"),
                          ({"counterfactual": {"bounds": "chol 1 2"}}, "one feature per line")]:
        response = api.post("/api/jobs/", {"dataset": heart.pk, "classifiers": ["logistic_regression"],
                                           "explainers": ["counterfactual"], "rows": {"ids": [3]}, "params": params},
                            format="json")
        assert response.status_code == 400 and words in response.json()["error"], response.json()


def test_bounds_on_a_category_fail_the_run_with_the_reason(api, heart, run_on_commit) -> None:
    with run_on_commit():
        response = api.post("/api/jobs/", {"dataset": heart.pk, "classifiers": ["logistic_regression"],
                                           "explainers": ["counterfactual"], "rows": {"ids": [3]},
                                           "params": {"counterfactual": {"bounds": {"cp": [1, 2]}}}}, format="json")
    job = api.get(f"/api/jobs/{response.json()['id']}/").json()
    assert job["status"] == "failed"
    assert "Bounds apply to numeric features; cp is categorical." in str(job)
