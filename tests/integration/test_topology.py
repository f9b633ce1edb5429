"""The production topology, natively: the compose file's commands on PostgreSQL + Redis, with a CPU worker
(queues ``celery`` and ``interactive``) and a GPU worker (queue ``gpu``); torch jobs must land on the GPU worker."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest
import yaml
from celery import Celery

from tests.stack import BIN_DIR, COMPOSE_FILE, REPO_ROOT, AppStack, WorkerSpec, compose_commands

pytestmark = pytest.mark.integration

TASK = "explanations.tasks.model_train"


@pytest.fixture(scope="module")
def topology() -> Iterator[AppStack]:
    stack = AppStack(name="topology", postgres=True,
                     workers=[WorkerSpec("worker", concurrency=1), WorkerSpec("worker-gpu", concurrency=1)])
    with stack:
        yield stack


def received(stack: AppStack, service: str) -> int:
    return sum(1 for line in stack.service(service).log_text().splitlines() if f"Task {TASK}[" in line and "received" in line)


def test_compose_commands_are_what_runs(topology):
    commands = compose_commands()
    assert commands["worker"][commands["worker"].index("-Q") + 1] == "celery,interactive"
    assert commands["worker-gpu"][commands["worker-gpu"].index("-Q") + 1] == "gpu"
    assert commands["web"][0] == "gunicorn"
    assert topology.database_url.startswith("postgres://")
    assert "gunicorn" in topology.service("web").log_text().splitlines()[0]


def test_static_files_come_from_whitenoise(topology):
    with urllib.request.urlopen(f"{topology.base_url}/static/css/app.css", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/css")
        assert b".topbar" in response.read()


def test_torch_job_runs_on_the_gpu_queue_worker(topology, datasets_dir):
    api = topology.api(topology.user_create("topo-alice", "topo-alice-pass-2026"))
    dataset = api.upload("/api/datasets/", datasets_dir / "heart.csv")
    api.json("PUT", f"/api/datasets/{dataset['id']}/schema/", {"label": "num", "categorical": ["cp", "thal"]})
    classifiers = api.json("GET", "/api/classifiers/")
    assert {c["key"]: c["queue"] for c in classifiers}["mlp"] == "gpu"

    before = {name: received(topology, name) for name in ("worker", "worker-gpu")}
    created = api.json("POST", "/api/jobs/", {
        "dataset": dataset["id"], "classifiers": ["mlp", "logistic_regression"], "explainers": ["lime", "shap"],
        "rows": {"ids": [2, 40]},
        "params": {"classifiers": {"mlp": {"epochs": 20}}, "lime": {"num_samples": 300}, "shap": {"nsamples": 100}},
    }, expect=201)
    job = api.job_wait(created["id"])
    assert job["status"] == "succeeded", job
    assert set(job["metrics"]) == {"mlp", "logistic_regression"}
    assert len(api.json("GET", f"/api/jobs/{job['id']}/explanations/")) == 2 * 2 * 2
    _, body = api.get_bytes(f"/api/jobs/{job['id']}/download/")
    assert body[:2] == b"PK"

    # One train task per classifier: the gpu-queue worker got exactly one (the torch MLP; it consumes no other
    # queue), the CPU worker the other; each classifier's batches followed it to its queue.
    assert received(topology, "worker-gpu") - before["worker-gpu"] == 1
    assert received(topology, "worker") - before["worker"] == 1
    # The workers agree, asked over the broker: each ran the task once.
    control = Celery(broker=topology.redis_url).control
    stats = control.inspect(timeout=5).stats() or {}
    gpu_node, cpu_node = topology.worker_node("worker-gpu"), topology.worker_node("worker")
    assert gpu_node.startswith("gpu@") and cpu_node.startswith("cpu@")
    assert stats[gpu_node]["total"].get(TASK) == 1, stats
    assert stats[cpu_node]["total"].get(TASK) == 1, stats
    batches = api.json("GET", f"/api/jobs/{job['id']}/")["batches"]
    assert {b["worker"] for b in batches if b["classifier"] == "mlp"} == {gpu_node}
    assert {b["worker"] for b in batches if b["classifier"] == "logistic_regression"} == {cpu_node}
    queues = control.inspect(timeout=5).active_queues() or {}
    assert [q["name"] for q in queues[gpu_node]] == ["gpu"]
    assert sorted(q["name"] for q in queues[cpu_node]) == ["celery", "interactive"]


def test_compose_health_checks_pass_against_the_running_services(topology):
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    env = {**topology.env, "PATH": f"{BIN_DIR}:{topology.env['PATH']}"}
    for name in ("worker", "worker-gpu"):
        kind, command = services[name]["healthcheck"]["test"]
        assert kind == "CMD-SHELL"
        command = command.replace("$$HOSTNAME", socket.gethostname())  # compose's escape for the shell's $HOSTNAME
        result = subprocess.run(["sh", "-c", command], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "pong" in result.stdout, (name, result.stdout, result.stderr)
    kind, program, *args = services["web"]["healthcheck"]["test"]
    assert (kind, program) == ("CMD", "python")
    args[-1] = args[-1].replace("http://localhost:8000", topology.base_url)
    result = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
