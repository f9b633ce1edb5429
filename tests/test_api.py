"""The JSON API contract: paths, fields, errors as {"error": ...}, and nobody sees another user's data."""

import io
import zipfile

import pytest

from tests.unit_fixtures import *  # noqa: F403
from tests.unit_fixtures import upload

pytestmark = pytest.mark.django_db

FAST = {"lime": {"num_samples": 300}, "anchor": {"threshold": 0.9}, "shap": {"background_size": 20}}


def test_upload_schema_job_explanations_download(api, run_on_commit):
    response = api.post("/api/datasets/", {"file": upload("heart.csv"), "name": "Heart"}, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert {"id", "name", "n_rows", "columns"} <= set(body) and body["n_rows"] == 303
    assert {"name", "dtype", "n_missing", "n_unique"} <= set(body["columns"][0])
    dataset_id = body["id"]
    assert [d["id"] for d in api.get("/api/datasets/").json()] == [dataset_id]

    response = api.put(f"/api/datasets/{dataset_id}/schema/", {"label": "num", "categorical": ["cp"],
                                                               "class_names": {"0": "Healthy"}, "row_name": None}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["schema"]["class_names"]["0"] == "Healthy"

    with run_on_commit():
        response = api.post("/api/jobs/", {"dataset": dataset_id, "classifiers": ["random_forest"],
                                           "explainers": ["lime", "anchor", "shap"], "rows": {"ids": [0, 5]},
                                           "params": FAST}, format="json")
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    job = api.get(f"/api/jobs/{job_id}/").json()
    assert job["status"] == "succeeded" and job["progress"] == 1.0 and job["error"] is None
    assert set(job["metrics"]["random_forest"]) >= {"accuracy", "f1_macro"}
    assert job["runs"] == [{"classifier": "random_forest", "label": "Random forest", "status": "done",
                            "stage": "Drawing the global views for Random forest", "progress": 1.0}]
    assert [(b["classifier"], b["explainer"], b["rows"], b["status"], b["attempts"], b["trust"]) for b in job["batches"]] == [
        ("random_forest", key, [row], "done", 1, "done") for row in (0, 5) for key in ("lime", "anchor", "shap")]
    # at least EXPLAINER_BATCHES_MIN (3) batches an explainer, so both worker processes share even a short job
    assert all(b["worker"] and b["seconds"] > 0 for b in job["batches"]) and job["eta_seconds"] is None
    assert "batches" not in api.get("/api/jobs/").json()[0]  # the list stays light

    explanations = api.get(f"/api/jobs/{job_id}/explanations/").json()
    assert len(explanations) == 6
    by_kind = {e["explainer"]: e for e in explanations if e["row"] == 0}
    assert set(by_kind["lime"]) >= {"classifier", "explainer", "row", "row_name", "predicted", "probabilities", "data", "plots"}
    assert by_kind["lime"]["data"]["label"] == by_kind["lime"]["predicted"]
    assert isinstance(by_kind["lime"]["data"]["weights"][0][0], str)
    assert {"rule", "precision", "coverage"} <= set(by_kind["anchor"]["data"])
    assert {"values", "base_value"} <= set(by_kind["shap"]["data"])
    assert by_kind["lime"]["true_label"] == "Healthy" or by_kind["lime"]["true_label"] in {"1", "2", "3", "4"}
    png = by_kind["shap"]["plots"][0]["png"]
    image = api.get(png)
    assert image.status_code == 200 and b"".join(image.streaming_content).startswith(b"\x89PNG")

    response = api.get(f"/api/jobs/{job_id}/download/")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert "manifest.json" in archive.namelist()


def test_another_users_ids_answer_404_everywhere(api, other_api, zoo, run_on_commit):
    with run_on_commit():
        job_id = api.post("/api/jobs/", {"dataset": zoo.pk, "classifiers": ["decision_tree"], "explainers": ["lime"],
                                         "rows": {"ids": [0]}, "params": FAST}, format="json").json()["id"]
    plot = api.get(f"/api/jobs/{job_id}/explanations/").json()[0]["plots"][0]["png"]
    for path in (f"/api/datasets/{zoo.pk}/", f"/api/jobs/{job_id}/", f"/api/jobs/{job_id}/explanations/",
                 f"/api/jobs/{job_id}/download/"):
        response = other_api.get(path)
        assert response.status_code == 404 and "error" in response.json(), path
    assert other_api.put(f"/api/datasets/{zoo.pk}/schema/", {"label": "hair"}, format="json").status_code == 404
    assert other_api.post(f"/api/jobs/{job_id}/cancel/").status_code == 404
    assert other_api.delete(f"/api/datasets/{zoo.pk}/").status_code == 404
    assert other_api.post("/api/jobs/", {"dataset": zoo.pk, "classifiers": ["knn"], "explainers": ["lime"]},
                          format="json").status_code == 404
    assert other_api.get(plot).status_code == 404
    assert other_api.get("/api/datasets/").json() == [] and other_api.get("/api/jobs/").json() == []


def test_bad_requests_answer_400_with_a_message(api, zoo):
    response = api.post("/api/datasets/", {"file": io.BytesIO(b"\x89PNG\r\n\x1a\nxxxx")}, format="multipart")
    assert response.status_code == 400 and "PNG" in response.json()["error"]
    response = api.post("/api/datasets/", {}, format="multipart")
    assert response.status_code == 400 and "file" in response.json()["error"]
    response = api.put(f"/api/datasets/{zoo.pk}/schema/", {"label": "missing_column"}, format="json")
    assert response.status_code == 400 and "missing_column" in response.json()["error"]
    response = api.post("/api/jobs/", {"dataset": zoo.pk, "classifiers": ["random_forest"], "explainers": ["lime"],
                                       "rows": {"ids": [999]}}, format="json")
    assert response.status_code == 400 and "999" in response.json()["error"]
    response = api.post("/api/jobs/", {"dataset": zoo.pk, "classifiers": ["nope"], "explainers": ["lime"]}, format="json")
    assert response.status_code == 400 and "nope" in response.json()["error"]


def test_registries_list_keys_and_parameters(api):
    classifiers = {c["key"]: c for c in api.get("/api/classifiers/").json()}
    assert set(classifiers) == {"random_forest", "logistic_regression", "svm", "gradient_boosting", "xgboost", "lightgbm", "knn",
                                "decision_tree", "naive_bayes", "mlp", "cnn"}
    assert classifiers["mlp"]["queue"] == "gpu" and classifiers["random_forest"]["queue"] == "celery"
    explainers = {e["key"]: e for e in api.get("/api/explainers/").json()}
    assert set(explainers) >= {"lime", "anchor", "shap"}
    assert {p["name"] for p in explainers["lime"]["params"]} >= {"num_features", "num_samples"}
    assert "threshold" in {p["name"] for p in explainers["anchor"]["params"]}
    assert {"algorithm", "background_size"} <= {p["name"] for p in explainers["shap"]["params"]}


def test_openapi_schema_and_auth_required(api, client):
    response = api.get("/api/schema/")
    assert response.status_code == 200 and b"/api/jobs/{job_id}/explanations/" in response.content
    assert b"JobBatch" in response.content and b"eta_seconds" in response.content  # the pipeline's batches
    assert client.get("/api/datasets/").status_code in (401, 403)


def test_too_large_upload_is_refused_while_streaming(api, settings):
    settings.EXPLAINER_MAX_UPLOAD_MB = 0
    response = api.post("/api/datasets/", {"file": upload("heart.csv")}, format="multipart")
    assert response.status_code == 413 and "larger than 0 MB" in response.json()["error"]
