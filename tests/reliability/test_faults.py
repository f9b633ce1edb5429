"""Faults with real processes (Redis, gunicorn, Celery workers): killed workers, a dead or restarted broker, time
limits, an unwritable results folder, cancel mid-job and a double click. Every job ends, nothing is lost,
no row is explained twice. The tests share one stack and run in order; each leaves a working worker behind."""

from __future__ import annotations

import json
import signal
import threading
import time

import pytest

from tests.reliability.conftest import FaultStack, wait_for

pytestmark = pytest.mark.integration

ROWS = list(range(12))


def job_submit(api, dataset_id: int, *, rows=ROWS, classifiers=("decision_tree",), samples: int = 200,
               expect: int = 201, key: str = "") -> dict:
    payload = {"dataset": dataset_id, "classifiers": list(classifiers), "explainers": ["lime"], "rows": {"ids": rows},
               "params": {"lime": {"num_samples": samples}, "whatif": {"features": ["age"]}}}  # one curve per row
    if key:
        payload["request_key"] = key
    return api.json("POST", "/api/jobs/", payload, expect=expect)


def explained(stack: FaultStack, job_id: int) -> list[tuple]:
    return stack.query("SELECT classifier, explainer, row FROM explanations_explanation WHERE job_id = ?", job_id)


def wait_explained(stack: FaultStack, job_id: int, at_least: int, timeout: float = 90) -> None:
    wait_for(lambda: len(explained(stack, job_id)) >= at_least, timeout=timeout,
             what=f"{at_least} explanations of job {job_id}")


def attempts(stack: FaultStack, job_id: int) -> list[int]:
    """How often each explain step of the job was started."""
    return [a for (a,) in stack.query("SELECT attempts FROM explanations_step WHERE job_id = ? AND kind = 'explain'",
                                      job_id)]


def explain_steps_running(stack: FaultStack, job_id: int) -> int:
    return stack.query("SELECT count(*) FROM explanations_step WHERE job_id = ? AND kind = 'explain' "
                       "AND status = 'running'", job_id)[0][0]


def workers(stack: FaultStack) -> list[str]:
    return [s.name for s in stack.services if s.name.startswith("worker")]


def assert_each_row_once(stack: FaultStack, job_id: int, expected: int) -> None:
    rows = explained(stack, job_id)
    assert len(rows) == len(set(rows)) == expected, sorted(rows)
    plots = stack.query("SELECT count(*) FROM explanations_plot WHERE job_id = ? AND explanation_id IS NOT NULL", job_id)
    assert plots[0][0] == expected


def test_pool_process_killed_mid_job_the_task_is_redelivered_and_finishes(fault_stack, fault_api):
    api, dataset_id = fault_api
    job = job_submit(api, dataset_id, samples=2000)  # batches long enough to be caught under way
    wait_explained(fault_stack, job["id"], 2)
    wait_for(lambda: explain_steps_running(fault_stack, job["id"]), timeout=60, what="an explain step under way")
    children = fault_stack.pool_children("worker")
    assert children
    for pid in children:  # the kernel's OOM killer would do this to the busy one
        fault_stack_kill_pid(pid)
    done = api.job_wait(job["id"], timeout=180)
    assert done["status"] == "succeeded", done
    assert_each_row_once(fault_stack, job["id"], len(ROWS))
    # The batches under way were delivered again after their pool process was lost; the others ran once.
    assert 2 in attempts(fault_stack, job["id"]) and max(attempts(fault_stack, job["id"])) == 2
    assert attempts(fault_stack, job["id"]).count(1) >= 2
    assert "SIGKILL" in fault_stack.service("worker").log_text()


def fault_stack_kill_pid(pid: int) -> None:
    import os

    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_whole_worker_killed_mid_job_the_sweeper_requeues_it_on_a_new_worker(fault_stack, fault_api):
    api, dataset_id = fault_api
    job = job_submit(api, dataset_id)
    wait_explained(fault_stack, job["id"], 4)
    fault_stack.kill("worker")  # main process and pool at once: the message stays unacked in Redis for hours
    before = len(explained(fault_stack, job["id"]))
    assert api.json("GET", f"/api/jobs/{job['id']}/")["status"] == "running"
    fault_stack.worker_start("worker-b", concurrency=2)
    done = api.job_wait(job["id"], timeout=150)
    assert done["status"] == "succeeded", done
    assert_each_row_once(fault_stack, job["id"], len(ROWS))
    assert 2 in attempts(fault_stack, job["id"]) and attempts(fault_stack, job["id"]).count(1) >= 2
    assert before >= 4
    assert "re-queued explain:decision_tree:lime:" in fault_stack.service("worker-b").log_text()


def test_redis_down_at_submit_is_a_quick_503_then_work_resumes_when_it_is_back(fault_stack, fault_api):
    api, dataset_id = fault_api
    jobs_before = len(api.json("GET", "/api/jobs/"))
    fault_stack.redis_stop()
    started = time.monotonic()
    status, _, body = api.request("POST", "/api/jobs/", content_type="application/json", body=json.dumps(
        {"dataset": dataset_id, "classifiers": ["decision_tree"], "explainers": ["lime"], "rows": {"ids": [1]}}).encode())
    elapsed = time.monotonic() - started
    assert status == 503, body
    assert json.loads(body)["error"] == ("The job queue is unavailable right now, so nothing was started. "
                                         "Try again in a minute.")
    assert elapsed < 15, f"the 503 took {elapsed:.1f}s"
    assert len(api.json("GET", "/api/jobs/")) == jobs_before  # nothing half-made
    fault_stack.redis_start()
    job = job_submit(api, dataset_id, rows=[1, 2])
    done = api.job_wait(job["id"], timeout=120)
    assert done["status"] == "succeeded", done


def test_redis_restarted_mid_job_running_and_lost_jobs_still_end(fault_stack, fault_api):
    api, dataset_id = fault_api
    running = job_submit(api, dataset_id, classifiers=("decision_tree", "logistic_regression"))
    wait_explained(fault_stack, running["id"], 4)
    waiting = job_submit(api, dataset_id, rows=[5, 6])  # both worker slots are busy: this one waits in Redis
    fault_stack.redis_stop()  # no persistence in the test Redis: the waiting message is gone
    time.sleep(1)
    fault_stack.redis_start()
    done = api.job_wait(running["id"], timeout=150)
    assert done["status"] == "succeeded", done
    assert_each_row_once(fault_stack, running["id"], 2 * len(ROWS))
    done = api.job_wait(waiting["id"], timeout=150)  # re-queued by the sweeper after the queue timeout
    assert done["status"] == "succeeded", done
    assert_each_row_once(fault_stack, waiting["id"], 2)


def test_cancel_mid_job_stops_within_a_batch_and_keeps_what_was_done(fault_stack, fault_api):
    api, dataset_id = fault_api
    rows = list(range(40))  # enough batches that a fast machine cannot finish before the cancel lands
    job = job_submit(api, dataset_id, rows=rows)
    wait_explained(fault_stack, job["id"], 4)
    cancelled = api.json("POST", f"/api/jobs/{job['id']}/cancel/")
    at_cancel = len(explained(fault_stack, job["id"]))
    assert cancelled["status"] == "cancelled"
    time.sleep(4)
    after = len(explained(fault_stack, job["id"]))
    assert at_cancel <= after <= at_cancel + 4 < len(rows)  # at most the batches (of 2) under way on the 2 processes
    time.sleep(3)
    assert len(explained(fault_stack, job["id"])) == after  # and then nothing more
    assert len(api.json("GET", f"/api/jobs/{job['id']}/explanations/")) == after  # finished rows are kept
    assert api.json("GET", f"/api/jobs/{job['id']}/")["status"] == "cancelled"


def test_double_click_makes_one_job(fault_stack, fault_api):
    api, dataset_id = fault_api
    answers: list[dict] = []
    barrier = threading.Barrier(6)

    def click() -> None:
        barrier.wait()
        answers.append(job_submit(api, dataset_id, rows=[7], key="double-click-1"))

    threads = [threading.Thread(target=click) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == 6 and len({a["id"] for a in answers}) == 1
    assert fault_stack.query("SELECT count(*) FROM explanations_job WHERE request_key = 'double-click-1'") == [(1,)]
    assert api.job_wait(answers[0]["id"], timeout=120)["status"] == "succeeded"


def test_unwritable_results_folder_fails_the_job_with_a_reason_and_no_zip(fault_stack, fault_api):
    api, dataset_id = fault_api
    jobs_dir = fault_stack.tmp / "media" / "jobs"
    moved = jobs_dir.with_name("jobs-moved")
    jobs_dir.rename(moved)
    jobs_dir.write_text("not a folder")  # as root, chmod would not stop the worker; this does
    try:
        job = job_submit(api, dataset_id, rows=[1, 2])
        done = api.job_wait(job["id"], timeout=120)
    finally:
        jobs_dir.unlink()
        moved.rename(jobs_dir)
    assert done["status"] == "failed"
    assert done["error"] == ("Results could not be saved; tell the administrator the results folder is not writable "
                             f"or the disk is full, with job number {job['id']}.")
    status, _, body = api.request("GET", f"/api/jobs/{job['id']}/download/")
    assert status == 409 and "not ready" in json.loads(body)["error"]


def test_time_limit_ends_the_job_failed_with_the_limit_and_advice(fault_stack, fault_api):
    api, dataset_id = fault_api
    for name in workers(fault_stack):
        fault_stack.kill(name, signal.SIGTERM)
    fault_stack.worker_start("worker-slow", env={"EXPLAINER_JOB_TIME_LIMIT": "3"})
    try:
        # Tens of seconds of work on any machine (60 rows x 50,000 samples through a 100-tree forest, then their
        # trust scores), in steps of a second or so each: the job's budget counts them together.
        job = job_submit(api, dataset_id, rows=list(range(60)), classifiers=("random_forest",), samples=50000)
        done = api.job_wait(job["id"], timeout=120)
    finally:
        slow_log = fault_stack.service("worker-slow").log_text()
        fault_stack.kill("worker-slow", signal.SIGTERM)
        fault_stack.worker_start("worker-c", concurrency=2)
    assert done["status"] == "failed", (done, slow_log[-3000:])
    assert done["error"] == ("The job took longer than 3 seconds of work, this server's limit for one job; "
                             "try fewer rows, classifiers, explainers or samples.")
    assert 0 < len(explained(fault_stack, job["id"])) < 60  # what was done before stays readable


def test_every_job_of_this_module_ended(fault_stack, fault_api):
    """The sum of it: no job is left queued or running, whatever was done to the stack."""
    api, _ = fault_api
    statuses = [job["status"] for job in api.json("GET", "/api/jobs/")]
    assert statuses and all(s in ("succeeded", "failed", "cancelled") for s in statuses), statuses
