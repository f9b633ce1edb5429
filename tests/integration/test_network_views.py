"""Inside the network through real Redis, gunicorn and a Celery worker listening on the ``gpu`` queue: an MNIST
job's CNN, an adversarial example drawn by the worker and polled until ready."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest

pytestmark = pytest.mark.integration


def view_wait(api, job_id: int, view_id: int, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        status, _, data = api.request("GET", f"/api/jobs/{job_id}/network/views/{view_id}/")
        body = json.loads(data)
        assert status == (202 if body["status"] == "drawing" else 200), (status, body)
        if body["status"] != "drawing":
            return body
        time.sleep(0.5)
    raise AssertionError(f"network view {view_id} still drawing after {timeout:.0f}s: {body}")


def test_an_adversarial_example_is_drawn_by_the_gpu_queue_worker(app_stack, datasets_dir, tmp_path):
    api = app_stack.api(app_stack.user_create("network-alice", "network-alice-pass-2026"))
    sample = tmp_path / "mnist.csv"
    pd.read_csv(datasets_dir / "mnist_5k.csv", nrows=400).to_csv(sample, index=False)
    dataset = api.upload("/api/datasets/", sample, name="MNIST")
    api.json("PUT", f"/api/datasets/{dataset['id']}/schema/", {"label": "label", "image_shape": [28, 28]})
    created = api.json("POST", "/api/jobs/", {
        "dataset": dataset["id"], "classifiers": ["cnn"], "explainers": ["saliency"], "rows": {"ids": [1]},
        "params": {"classifiers": {"cnn": {"epochs": 8, "channels": 8}}}}, expect=201)
    job = api.job_wait(created["id"])
    assert job["status"] == "succeeded", job

    network = api.json("GET", f"/api/jobs/{job['id']}/network/")
    assert [layer["name"] for layer in network["layers"]] == ["conv1", "conv2"] and network["rows"] == [1]
    predicted = api.json("GET", f"/api/jobs/{job['id']}/explanations/")[0]["predicted"]
    target = "3" if predicted != "3" else "5"
    asked = api.json("POST", f"/api/jobs/{job['id']}/adversarial/",
                     {"row": 1, "target": target, "epsilon": 0.3, "alpha": 0.02, "iterations": 100}, expect=202)
    assert asked["status"] == "drawing"
    view = view_wait(api, job["id"], asked["id"])
    assert view["status"] == "ready", view
    assert view["predicted_before"] == predicted and view["linf"] <= 0.3 + 1e-6
    assert isinstance(view["reached"], bool) and view["predicted_after"] in network["classes"]
    _, png = api.get_bytes(view["plots"][0]["png"].replace(app_stack.base_url, ""))
    assert png.startswith(b"\x89PNG")
    assert "explanations.tasks.network_view_draw[" in app_stack.service("worker").log_text()
