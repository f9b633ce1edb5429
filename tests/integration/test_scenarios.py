"""The what-if editor through real Redis, gunicorn and a Celery worker listening on the ``interactive`` queue."""

from __future__ import annotations

import io
import json
import time
import zipfile

import pytest

pytestmark = pytest.mark.integration


def scenario_wait(api, job_id: int, scenario_id: int, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        body = api.json("GET", f"/api/jobs/{job_id}/scenarios/{scenario_id}/")
        if body["status"] != "computing":
            return body
        time.sleep(0.5)
    raise AssertionError(f"scenario {scenario_id} still computing after {timeout:.0f}s: {body}")


def test_a_scenario_ends_ready_with_every_classifiers_prediction(app_stack, datasets_dir):
    api = app_stack.api(app_stack.user_create("editor-alice", "editor-alice-pass-2026"))
    dataset = api.upload("/api/datasets/", datasets_dir / "heart.csv", name="Heart")
    api.json("PUT", f"/api/datasets/{dataset['id']}/schema/", {"label": "num", "categorical": ["cp", "thal"]})
    created = api.json("POST", "/api/jobs/", {
        "dataset": dataset["id"], "classifiers": ["random_forest", "logistic_regression"], "explainers": ["lime", "shap"],
        "rows": {"any_of": [{"ids": [4]}, {"misclassified": 1}]},
        "params": {"classifiers": {"random_forest": {"n_estimators": 30}}, "lime": {"num_samples": 300},
                   "shap": {"nsamples": 100}, "trust": {"stability_runs": 0}}}, expect=201)
    job = api.job_wait(created["id"])
    assert job["status"] == "succeeded", job

    asked = api.json("POST", f"/api/jobs/{job['id']}/scenarios/", {"row": 4, "changes": {"age": 70, "cp": "4"}}, expect=201)
    assert asked["status"] == "computing"
    scenario = scenario_wait(api, job["id"], asked["id"])
    assert scenario["status"] == "ready", scenario
    assert set(scenario["predictions"]) == {"random_forest", "logistic_regression"}
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-4 for p in scenario["predictions"].values())
    assert {(e["classifier"], e["explainer"]) for e in scenario["explanations"]} == {
        (c, x) for c in ("random_forest", "logistic_regression") for x in ("lime", "shap")}
    _, png = api.get_bytes(scenario["explanations"][0]["plots"][0]["png"].replace(app_stack.base_url, ""))
    assert png.startswith(b"\x89PNG")
    log = app_stack.service("worker").log_text()
    assert "explanations.tasks.scenario_compute[" in log  # the worker's interactive queue took it

    # every classifier explained the same rows (misclassified rows are one list per job)
    explanations = api.json("GET", f"/api/jobs/{job['id']}/explanations/")
    rows = {c: {e["row"] for e in explanations if e["classifier"] == c} for c in ("random_forest", "logistic_regression")}
    assert rows["random_forest"] == rows["logistic_regression"] and 4 in rows["random_forest"]

    _, data = api.get_bytes(f"/api/jobs/{job['id']}/download/")
    archive = zipfile.ZipFile(io.BytesIO(data))
    records = json.loads(archive.read("scenarios.json"))
    assert [r["id"] for r in records] == [asked["id"]] and records[0]["explanations"][0]["plots"][0]["png"] in archive.namelist()
