"""Sharing the workers on a real stack (Redis, gunicorn, one Celery worker with 2 processes): one user's 100-job
burst is held to the per-account quota, another user's 1-row job finishes while hers are still running (it queues
behind her few steps in flight, not behind her hundreds of batches), and a cancelled running job lets go of its
worker. The measured seconds are printed; how fast is the bench's business."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.stack import AppStack, WorkerSpec

pytestmark = pytest.mark.integration

BURST = 100
B_WAIT_S = 300  # a hang guard, not a speed test: Bob's job waits only for the steps Alice has under way
# Big jobs: every test row of adult.csv (5,000 once capped), LIME with few samples, so most of the time goes
# into drawing each row's plots, batch after batch.
BIG = {"classifiers": ["decision_tree"], "explainers": ["lime"], "rows": {"all_test": True},
       "params": {"lime": {"num_samples": 300}, "trust": {"stability_runs": 0}}}
MAXIMAL = {"classifiers": ["random_forest", "logistic_regression", "svm", "gradient_boosting", "knn", "decision_tree",
                           "naive_bayes", "mlp"],
           "explainers": ["lime", "anchor", "shap"], "rows": {"all_test": True},
           "params": {"lime": {"num_samples": 50000}, "trust": {"stability_runs": 20}}}


@pytest.fixture(scope="module")
def fair_stack() -> Iterator[AppStack]:
    stack = AppStack(name="fairness", workers=[WorkerSpec("worker", queues="celery,gpu", concurrency=2)],
                     extra_env={"EXPLAINER_BATCH_SIZE": "16", "EXPLAINER_ENGINE_THREADS": "1",
                                # one step per worker process: none of Alice's wait in the queue ahead of Bob's
                                "EXPLAINER_STEPS_IN_FLIGHT_PER_USER": "2"})
    with stack:
        yield stack


def wait_for(check, *, timeout: float, what: str, every: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


def test_a_burst_is_held_to_the_quota_and_another_users_small_job_still_runs(fair_stack, datasets_dir):
    alice = fair_stack.api(fair_stack.user_create("fair-alice", "fair-alice-pass-2026"))
    bob = fair_stack.api(fair_stack.user_create("fair-bob", "fair-bob-pass-2026"))
    adult = alice.upload("/api/datasets/", datasets_dir / "adult.csv")
    alice.json("PUT", f"/api/datasets/{adult['id']}/schema/", {"label": "income"})
    heart = bob.upload("/api/datasets/", datasets_dir / "heart.csv")
    bob.json("PUT", f"/api/datasets/{heart['id']}/schema/", {"label": "num", "categorical": ["cp", "thal"]})

    # Alice: 100 job requests at once (the last one the maximal job).
    bodies = [json.dumps({"dataset": adult["id"], **(MAXIMAL if i == BURST - 1 else BIG)}).encode() for i in range(BURST)]
    started = time.monotonic()
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda body: alice.request("POST", "/api/jobs/", body=body,
                                                           content_type="application/json"), bodies))
    burst_seconds = time.monotonic() - started
    codes = Counter(status for status, _, _ in answers)
    print(f"\nburst: {BURST} job requests in {burst_seconds:.1f}s -> {dict(codes)}")
    assert not [status for status in codes if status >= 500], codes
    maximal_status, _, maximal_body = answers[-1]
    assert maximal_status == 400 and "one job may take at most" in json.loads(maximal_body)["error"]
    accepted = [json.loads(body)["id"] for status, _, body in answers if status == 201]
    assert len(accepted) == 3 and codes[429] == BURST - 1 - 3, codes
    refusal = next(json.loads(body)["error"] for status, _, body in answers if status == 429)
    assert "one account may have at most 3 at a time" in refusal

    # Both worker processes busy with Alice's big jobs (her oldest first: she has a few steps in the queue at a time).
    def explaining() -> list[dict]:
        jobs = [alice.json("GET", f"/api/jobs/{job_id}/") for job_id in accepted]
        return [job for job in jobs if job["status"] == "running"
                and any(batch["status"] == "running" for batch in job["batches"])]

    def alice_batches_running() -> int:
        return sum(batch["status"] == "running" for job in explaining() for batch in job["batches"])

    wait_for(lambda: alice_batches_running() >= 2, timeout=240, what="two of Alice's batches explaining rows")

    # Bob: one row.
    submitted = time.monotonic()
    job = bob.json("POST", "/api/jobs/", {"dataset": heart["id"], "classifiers": ["decision_tree"],
                                          "explainers": ["lime"], "rows": {"ids": [0]},
                                          "params": {"lime": {"num_samples": 300}}}, expect=201)
    done = bob.job_wait(job["id"], timeout=B_WAIT_S)
    bob_seconds = time.monotonic() - submitted
    print(f"bob's 1-row job: submit to {done['status']} in {bob_seconds:.1f}s while alice's 3 big jobs ran")
    assert done["status"] == "succeeded", done
    # He did not wait for her work: none of her three jobs has ended (her third may not have started: she has only
    # her allowance of steps in the queue), with most of their batches still to go.
    alice_jobs = [alice.json("GET", f"/api/jobs/{job_id}/") for job_id in accepted]
    assert {j["status"] for j in alice_jobs} <= {"queued", "running"}, [j["status"] for j in alice_jobs]
    assert sum(j["status"] == "running" for j in alice_jobs) >= 1
    assert sum(batch["status"] == "pending" for j in alice_jobs for batch in j["batches"]) > 20
    # Bob got in because Alice has at most her allowance of steps in the queue: his went in behind those, not
    # behind her three jobs' hundreds of batches.
    worker_log = fair_stack.service("worker").log_text()
    assert worker_log.count("Task explanations.tasks.batch_explain[") > 4

    # Alice cancels a job while it explains: its worker process lets go within seconds.
    running = wait_for(explaining, timeout=120, what="an Alice job explaining again")[0]
    time.sleep(1)  # well inside a batch of 16 rows
    finished_before = len(re.findall(r"Task explanations\.tasks\.batch_explain\[[^]]+\] succeeded",
                                     fair_stack.service("worker").log_text()))
    cancelled = time.monotonic()
    alice.json("POST", f"/api/jobs/{running['id']}/cancel/")

    def let_go() -> bool:
        log = fair_stack.service("worker").log_text()
        return (re.search(rf"job {running['id']}: explain:decision_tree:lime:\d+ stopped, the job is no longer running",
                          log) is not None
                or len(re.findall(r"Task explanations\.tasks\.batch_explain\[[^]]+\] succeeded", log))
                > finished_before)

    wait_for(let_go, timeout=60, what="the cancelled job's task ending", every=0.1)
    stop_seconds = time.monotonic() - cancelled
    print(f"cancel to the worker letting go of the run: {stop_seconds:.1f}s")
    progress = alice.json("GET", f"/api/jobs/{running['id']}/")["progress"]
    time.sleep(3)
    assert alice.json("GET", f"/api/jobs/{running['id']}/")["progress"] == progress  # nothing more was explained

    for job_id in accepted:  # cancelling everything frees the queue at once
        alice.request("POST", f"/api/jobs/{job_id}/cancel/")
    assert {alice.json("GET", f"/api/jobs/{job_id}/")["status"] for job_id in accepted} == {"cancelled"}
