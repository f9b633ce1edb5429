"""The API from upload to ZIP on heart.csv, through real Redis, a real Celery worker and gunicorn."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile

import pytest

pytestmark = pytest.mark.integration

CLASS_NAMES = {"0": "no disease", "1": "mild", "2": "moderate", "3": "severe", "4": "critical"}
ROWS = [1, 7]


def test_heart_job_from_upload_to_zip(app_stack, datasets_dir):
    heart = datasets_dir / "heart.csv"
    api = app_stack.api(app_stack.user_create("api-alice", "api-alice-pass-2026"))

    dataset = api.upload("/api/datasets/", heart, name="Heart disease")
    assert dataset["n_rows"] == 303 and dataset["n_columns"] == 14
    assert dataset["sha256"] == hashlib.sha256(heart.read_bytes()).hexdigest()
    assert any("?" in note for note in dataset["cleaning_notes"]), dataset["cleaning_notes"]  # `?` means missing

    dataset = api.json("PUT", f"/api/datasets/{dataset['id']}/schema/", {
        "label": "num", "categorical": ["cp", "thal", "slope"], "class_names": CLASS_NAMES})
    assert dataset["schema"]["label"] == "num"
    assert len(dataset["schema"]["features"]) == 13

    created = api.json("POST", "/api/jobs/", {
        "dataset": dataset["id"],
        "classifiers": ["random_forest", "logistic_regression"],
        "explainers": ["lime", "anchor", "shap"],
        "rows": {"ids": ROWS},
        "params": {"seed": 3, "classifiers": {"random_forest": {"n_estimators": 50}},
                   "lime": {"num_samples": 300}, "anchor": {"threshold": 0.9}, "shap": {"nsamples": 200}},
    }, expect=201)
    job = api.job_wait(created["id"])
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0
    assert set(job["metrics"]) == {"random_forest", "logistic_regression"}
    assert all(0.3 < m["accuracy"] <= 1 for m in job["metrics"].values()), job["metrics"]

    explanations = api.json("GET", f"/api/jobs/{job['id']}/explanations/")
    assert len(explanations) == 2 * 3 * len(ROWS)
    assert {(e["classifier"], e["explainer"], e["row"]) for e in explanations} == {
        (c, x, r) for c in ("random_forest", "logistic_regression") for x in ("lime", "anchor", "shap") for r in ROWS}
    assert all(e["predicted"] in CLASS_NAMES.values() for e in explanations)
    assert all(abs(sum(e["probabilities"].values()) - 1) < 1e-3 for e in explanations)

    headers, body = api.get_bytes(f"/api/jobs/{job['id']}/download/")
    assert headers["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(body))
    names = archive.namelist()
    pngs = [n for n in names if n.startswith("plots/") and n.endswith(".png")]
    svgs = [n for n in names if n.startswith("plots/") and n.endswith(".svg")]
    assert len(pngs) == len(svgs) >= 12, names
    assert {f"plots/{c}_{x}_row{r}.png" for c in ("random_forest", "logistic_regression")
            for x in ("lime", "anchor", "shap") for r in ROWS} <= set(pngs)
    assert all(archive.read(n).startswith(b"\x89PNG\r\n\x1a\n") for n in pngs)
    assert all(b"<svg" in archive.read(n)[:2000] for n in svgs)

    rows = list(csv.DictReader(io.StringIO(archive.read("explanations.csv").decode())))
    assert len(rows) == 12 and {r["explainer"] for r in rows} == {"lime", "anchor", "shap"}
    records = json.loads(archive.read("explanations.json"))
    assert len(records) == 12 and all(p["png"] in names for r in records for p in r["plots"])

    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["dataset"]["sha256"] == dataset["sha256"]
    assert manifest["parameters"]["seed"] == 3
    assert manifest["parameters"]["lime"]["num_samples"] == 300
    assert manifest["parameters"]["classifiers"]["random_forest"]["n_estimators"] == 50
    assert manifest["seeds"]["split_and_models"] == 3
    versions = manifest["library_versions"]
    for library in ("django", "celery", "scikit-learn", "lime", "shap", "torch"):
        assert versions[library][0].isdigit(), (library, versions[library])

    # The worker really did it: every step went through Redis to the worker process, the training once per classifier.
    log = app_stack.service("worker").log_text()
    for task in ("model_train", "batch_explain", "batch_trust", "model_run_finish", "job_finish"):
        assert f"Task explanations.tasks.{task}[" in log, task
    assert log.count("Task explanations.tasks.model_train[") >= 2
    job_detail = api.json("GET", f"/api/jobs/{job['id']}/")
    assert {(b["classifier"], b["explainer"]) for b in job_detail["batches"]} == {
        (c, x) for c in ("random_forest", "logistic_regression") for x in ("lime", "anchor", "shap")}
    assert all(b["status"] == "done" and b["worker"] and b["attempts"] == 1 for b in job_detail["batches"])
