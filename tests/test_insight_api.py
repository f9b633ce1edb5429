"""Trust scores, what-if curves, the job summary, comparisons and reruns: API, pages and ZIP, on Heart and Zoo."""

import io
import json
import zipfile
from unittest.mock import patch

import pytest

from explanations.ml.trust import TRUST_KEYS
from explanations.models import Explanation, Job, WhatIf
from tests.unit_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

FAST = {"lime": {"num_samples": 300}, "anchor": {"threshold": 0.9, "beam_size": 2, "max_anchor_size": 2},
        "shap": {"background_size": 20, "nsamples": 100}, "trust": {"stability_runs": 2, "background_rows": 10}}


def heart_job_run(api, heart, run_on_commit) -> Job:
    """Random forest against SVM on two Heart rows, every explainer, what-if on age (one job: they take a while)."""
    with run_on_commit():
        response = api.post("/api/jobs/", {"dataset": heart.pk, "classifiers": ["random_forest", "svm"],
                                           "explainers": ["lime", "anchor", "shap"], "rows": {"ids": [0, 5]},
                                           "params": {**FAST, "whatif": {"features": ["age"]},
                                                      "classifiers": {"random_forest": {"n_estimators": 30}}}},
                            format="json")
    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == "succeeded", job.error
    return job


def test_heart_random_forest_against_svm(api, other_api, client, user, heart, run_on_commit,
                                        django_capture_on_commit_callbacks):
    job = heart_job_run(api, heart, run_on_commit)
    check_every_explanation_carries_its_trust_scores(api, job)
    check_whatif_overlays_every_classifier_and_answers_for_other_features(api, job, django_capture_on_commit_callbacks)
    check_summary_ranks_explainers_per_classifier_with_readings(api, job)
    check_zip_holds_trust_whatif_and_summary(api, job)
    check_other_users_cannot_read_insight_endpoints(other_api, job)
    check_pages_show_trust_comparison_whatif_summary_and_rerun(client, user, job)


def check_every_explanation_carries_its_trust_scores(api, heart_job):
    records = api.get(f"/api/jobs/{heart_job.pk}/explanations/").json()
    assert len(records) == 2 * 3 * 2
    for record in records:
        trust = record["trust"]
        assert set(trust) == set(TRUST_KEYS), record["explainer"]
        assert 0 <= trust["deletion_auc"] <= 1 and 0 <= trust["insertion_auc"] <= 1
        assert 0 <= trust["stability_jaccard"] <= 1
        assert trust["agreement"] is None or 0 <= trust["agreement"] <= 1
        if record["explainer"] == "shap":
            assert trust["additivity_error"] < 1e-4 and trust["precision_fresh"] is None
        elif record["explainer"] == "anchor":
            assert 0 <= trust["precision_fresh"] <= 1 and 0 <= trust["coverage_fresh"] <= 1
            assert trust["additivity_error"] is None and trust["stability_rank_corr"] is None
        else:
            assert trust["additivity_error"] is None and trust["coverage_fresh"] is None
            assert -1 <= trust["stability_rank_corr"] <= 1
    tree = [r["trust"] for r in records if r["explainer"] == "shap" and r["classifier"] == "random_forest"]
    assert all(t["stability_jaccard"] == 1.0 and t["stability_rank_corr"] == 1.0 for t in tree)  # exact TreeSHAP
    stored = Explanation.objects.filter(job=heart_job, explainer="lime").first().trust
    assert stored["stability_seeds"] == [1, 2] and len(stored["weight_spread"]) == len(stored["top_features"])


def check_whatif_overlays_every_classifier_and_answers_for_other_features(api, heart_job, on_commit):
    body = api.get(f"/api/jobs/{heart_job.pk}/whatif/?row=0&feature=age").json()
    assert body["feature"] == "age" and len(body["grid"]) > 5 and body["grid"] == sorted(body["grid"])
    assert set(body["curves"]) == {"random_forest", "svm"}
    for classes in body["curves"].values():
        assert "No disease" in classes and all(len(ps) == len(body["grid"]) for ps in classes.values())
        assert all(abs(sum(ps[i] for ps in classes.values()) - 1) < 1e-4 for i in range(len(body["grid"])))
    assert body["plots"][0]["kind"] == "whatif"
    image = api.get(body["plots"][0]["svg"])
    assert image.status_code == 200 and b"Random forest" in b"".join(image.streaming_content)
    # Not precomputed: the request only queues it (no model is loaded in a web request) and answers 202 ...
    with on_commit(execute=False) as queued, patch("explanations.whatifs.job_models_load",
                                                  side_effect=AssertionError("a model loaded in the web request")):
        asked = api.get(f"/api/jobs/{heart_job.pk}/whatif/?row=5&feature=cp")
        again = api.get(f"/api/jobs/{heart_job.pk}/whatif/?row=5&feature=cp")  # polling queues nothing more
    assert asked.status_code == again.status_code == 202 and asked.json()["status"] == "drawing"
    assert asked.json()["plots"] == [] and len(queued) == 1
    assert WhatIf.objects.get(job=heart_job, row=5, feature="cp").status == "drawing"
    queued[0]()  # ... and a worker draws it (eager here): the same GET then answers with the curve
    categorical = api.get(f"/api/jobs/{heart_job.pk}/whatif/?row=5&feature=cp")
    assert categorical.status_code == 200 and categorical.json()["status"] == "ready"
    categorical = categorical.json()
    assert len(categorical["grid"]) == len(categorical["grid_labels"]) >= 4 and categorical["plots"]
    pd_curve = api.get(f"/api/jobs/{heart_job.pk}/whatif/?feature=age").json()
    assert pd_curve["row"] is None and pd_curve["plots"][0]["kind"] == "partial_dependence"
    for query, status in (("row=0&feature=wingspan", 404), ("row=1&feature=age", 404), ("row=x&feature=age", 400),
                          ("row=0", 400)):
        response = api.get(f"/api/jobs/{heart_job.pk}/whatif/?{query}")
        assert response.status_code == status and "error" in response.json(), query


def check_summary_ranks_explainers_per_classifier_with_readings(api, heart_job):
    body = api.get(f"/api/jobs/{heart_job.pk}/summary/").json()
    assert len(body["table"]) == 6
    for classifier in ("random_forest", "svm"):
        entries = [e for e in body["table"] if e["classifier"] == classifier]
        assert sorted(e["rank"] for e in entries) == [1, 2, 3] and all(e["n_rows"] == 2 for e in entries)
        assert all(set(TRUST_KEYS) <= set(e) for e in entries)
    assert {m["key"] for m in body["metrics"]} == set(TRUST_KEYS) and all(m["reading"] for m in body["metrics"])
    kinds = {p["kind"] for p in body["plots"]}
    assert {"shap_summary", "shap_importance", "partial_dependence"} <= kinds
    assert "lime_importance" not in kinds  # issue 17 item 11: no LIME "importance" averaged over 2 explained rows
    assert "whatif" not in {p["kind"] for p in body["plots"]}
    assert set(body["representative_rows"]) == {"random_forest", "svm"}
    assert body["representative_rows"]["svm"]["method"] == "lime"
    assert set(body["representative_rows"]["svm"]["rows"]) <= {0, 5}
    assert body["whatif_features"] == ["age", "cp"] or body["whatif_features"] == ["age"]


def check_zip_holds_trust_whatif_and_summary(api, heart_job):
    response = api.get(f"/api/jobs/{heart_job.pk}/download/")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = set(archive.namelist())
    assert {"trust_summary.json", "trust_summary.csv", "whatif.json"} <= names
    assert {"plots/job_whatif_row0_age.png", "plots/job_whatif_row5_age.svg", "plots/job_partial_dependence_age.png"} <= names
    assert len(names) == len(archive.namelist())  # no two files share a name
    records = json.loads(archive.read("explanations.json"))
    assert all(set(r["trust"]) == set(TRUST_KEYS) for r in records)
    whatifs = json.loads(archive.read("whatif.json"))
    # (5, "cp") was drawn on request after the job finished: the download packs the job as it is now
    assert {(w["row"], w["feature"]) for w in whatifs} == {(None, "age"), (0, "age"), (5, "age"), (5, "cp")}
    assert all(w["plots"][0]["png"] in names for w in whatifs)
    summary = json.loads(archive.read("trust_summary.json"))
    assert len(summary["table"]) == 6 and summary["metrics"][0]["reading"]
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["parameters"]["trust"] == {"stability_runs": 2, "background_rows": 10}
    assert manifest["parameters"]["whatif"] == {"features": ["age"]}


def check_pages_show_trust_comparison_whatif_summary_and_rerun(client, user, heart_job):
    client.force_login(user)
    page = client.get(f"/jobs/{heart_job.pk}/rows/0/").content.decode()
    assert "Where they agree" in page and "How far to trust" in page and "What if" in page
    assert "Deletion AUC" in page and "agreed" in page
    results = client.get(f"/jobs/{heart_job.pk}/results/").content.decode()
    assert "How far to trust these explanations" in results and "Rerun" in results
    assert "Partial dependence" in results and "Representative rows" in results
    response = client.post(f"/jobs/{heart_job.pk}/rerun/")
    new = Job.objects.exclude(pk=heart_job.pk).get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{new.pk}/"
    assert new.params == heart_job.params and new.rows_spec == heart_job.rows_spec and new.schema == heart_job.schema


def test_rerun_repeats_a_job_exactly(api, zoo, run_on_commit):
    with run_on_commit():
        first = api.post("/api/jobs/", {"dataset": zoo.pk, "classifiers": ["decision_tree"], "explainers": ["lime", "shap"],
                                        "rows": {"names": ["flamingo"]}, "params": FAST}, format="json").json()["id"]
    with run_on_commit():
        response = api.post(f"/api/jobs/{first}/rerun/")
    assert response.status_code == 201
    second = response.json()["id"]
    assert Job.objects.get(pk=second).status == "succeeded"

    def results(job_id):
        return [(r["explainer"], r["row"], r["data"], r["trust"]) for r in api.get(f"/api/jobs/{job_id}/explanations/").json()]

    assert results(first) == results(second)
    # Zoo is multi-class and names no what-if features: the top three by importance are drawn.
    assert len(api.get(f"/api/jobs/{first}/summary/").json()["whatif_features"]) == 3


def test_rerun_of_a_job_from_before_shared_lime_samples_draws_per_row_as_it_did(api, zoo, run_on_commit):
    with run_on_commit():
        first = api.post("/api/jobs/", {"dataset": zoo.pk, "classifiers": ["decision_tree"], "explainers": ["lime"],
                                        "rows": {"names": ["flamingo"]}, "params": FAST}, format="json").json()["id"]
    job = Job.objects.get(pk=first)
    assert job.params["lime"]["shared_samples"] is True  # new jobs store the default
    job.params["lime"].pop("shared_samples")  # as a job stored before the parameter existed
    job.save(update_fields=["params"])
    with run_on_commit():
        second = api.post(f"/api/jobs/{first}/rerun/").json()["id"]
    assert Job.objects.get(pk=second).params["lime"]["shared_samples"] is False


@pytest.mark.parametrize(("params", "field"), [
    ({"trust": {"stability_runs": 500}}, "trust"),
    ({"trust": {"wobble": 1}}, "trust"),
    ({"whatif": {"features": ["wingspan"]}}, "whatif"),
    ({"whatif": {"colour": "red"}}, "whatif"),
])
def test_bad_trust_and_whatif_params_name_their_field(api, zoo, params, field):
    response = api.post("/api/jobs/", {"dataset": zoo.pk, "classifiers": ["decision_tree"], "explainers": ["lime"],
                                       "params": params}, format="json")
    assert response.status_code == 400 and response.json()["field"] == field, response.content


def check_other_users_cannot_read_insight_endpoints(other_api, heart_job):
    for path in (f"/api/jobs/{heart_job.pk}/whatif/?row=0&feature=age", f"/api/jobs/{heart_job.pk}/summary/"):
        assert other_api.get(path).status_code == 404
    assert other_api.post(f"/api/jobs/{heart_job.pk}/rerun/").status_code == 404


def test_new_job_form_takes_trust_and_whatif_settings(client, user, heart):
    client.force_login(user)
    page = client.get(f"/jobs/new/?dataset={heart.pk}").content.decode()
    assert 'name="trust__stability_runs"' in page and '<option value="thalach">' in page
    response = client.post("/jobs/new/", {"dataset": heart.pk, "classifiers": ["decision_tree"], "explainers": ["lime"],
                                          "rows_mode": "ids", "rows_ids": "0", "trust__stability_runs": "3",
                                          "whatif__features": ["age", "chol"]})
    assert response.status_code == 302, response.content.decode()[:2000]
    job = Job.objects.get()
    assert job.params["trust"]["stability_runs"] == 3 and job.params["whatif"] == {"features": ["age", "chol"]}
    response = client.post("/jobs/new/", {"dataset": heart.pk, "classifiers": ["decision_tree"], "explainers": ["lime"],
                                          "rows_mode": "ids", "rows_ids": "0", "trust__stability_runs": "99"})
    assert response.status_code == 400 and "Reruns to measure stability" in response.content.decode()
