"""What a user waits for: whole jobs through the real API and real Celery workers (``bench.platform.BenchStack``:
redis-server as the broker, gunicorn, SQLite, the compose file's commands), against a notebook doing the same.

* ``job_default_vs_notebook``: the default Adult job (random forest + logistic regression x LIME, Anchors, SHAP x
  3 random rows, default parameters: trust, what-if and global views included) submit to ``succeeded``, over
  ``bench.notebook.notebook_run`` on the same rows in this process; ``job_first_explanation_vs_notebook`` the
  same for the first explanation shown by ``GET /api/jobs/{id}/explanations/``.
* ``job_whole_test_scaling``: a many-row Adult job (random forest; LIME + SHAP) with two single-process workers
  against one, and the two-process ceiling of the machine beside it.
* ``recovery_s``: a worker's whole process group SIGKILLed while a job runs, a second worker up: seconds until
  every piece of work the dead worker held runs again.

``python -m bench.jobs [--quick] [default] [scaling] [recovery]`` runs these sections alone.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bench.notebook import notebook_run
from bench.platform import BenchStack, job_finished, two_process_ceiling
from bench.tables import ADULT_CATEGORICAL
from tests.stack import DATASETS_DIR, REPO_ROOT, ApiClient, Service, WorkerSpec

ADULT_FEATURES = ["age", "workclass", "education", "education-num", "marital-status", "occupation", "relationship",
                  "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country"]  # no fnlwgt
DEFAULT_JOB = {"classifiers": ["random_forest", "logistic_regression"], "explainers": ["lime", "anchor", "shap"],
               "rows": {"random": 3}}  # no params: every default, as the form submits it
WHOLE_TEST = {"classifiers": ["random_forest"], "explainers": ["lime", "shap"]}
# Rows of the scaling and recovery jobs. On 31e3d94 (one task per classifier, five trust reruns) a row of LIME + SHAP
# costs a worker about 3 s, so --quick keeps to 3 batches of 16 (200 rows took over 10 minutes on one worker).
SIZES = {True: {"rows": int(os.environ.get("BENCH_JOB_ROWS_QUICK", "48")), "recovery_cap_s": 150},
         False: {"rows": int(os.environ.get("BENCH_JOB_ROWS", "2000")), "recovery_cap_s": 300}}
JOB_NULLS: dict[str, Any] = {"job_default_vs_notebook": None, "job_first_explanation_vs_notebook": None,
                             "job_whole_test_scaling": None, "recovery_s": None}
DONE = {"done", "succeeded", "finished", "skipped"}
UNDER_WAY = DONE | {"running", "started"}
BROKER_NOTE = "broker: redis-server on loopback (tests.stack.AppStack, as the e2e section)"


def trust_runs_default() -> str:
    """The app's own default for trust reruns (the test stack lowers it to 1 for its journeys)."""
    try:
        from explainer_site.settings import base

        return str(base.EXPLAINER_TRUST_STABILITY_RUNS)
    except Exception:  # settings need Django's extras; 5 is what they read without the variable
        return "5"


# ---------------------------------------------------------------- watching a job


def stage_key(stage: str) -> str:
    """A stage text without its row numbers, so every batch of one explainer adds up under one name."""
    stage = re.sub(r"rows \d+[–-]\d+ of \d+", "rows", stage or "")
    return re.sub(r" for row \d+ \(\d+ of \d+\)", " for each row", stage).strip()


def stage_seconds(transitions: list[tuple[float, str, str]], end: float) -> dict[str, dict[str, float]]:
    """Per stage line (the job's, each classifier run's), the seconds spent under each stage text, from the
    moments polling saw a line change: ``(t, line, stage)`` in time order, the last stage lasting until ``end``."""
    by_line: dict[str, list[tuple[float, str]]] = {}
    for t, line, stage in transitions:
        by_line.setdefault(line, []).append((t, stage_key(stage)))
    out: dict[str, dict[str, float]] = {}
    for line, seen in by_line.items():
        totals: dict[str, float] = {}
        for (t, stage), (t_next, _) in zip(seen, [*seen[1:], (end, "")]):
            totals[stage] = totals.get(stage, 0.0) + max(t_next - t, 0.0)
        out[line] = {stage: round(seconds, 1) for stage, seconds in totals.items()}
    return out


def run_stage(run: dict) -> str:
    """A model run's stage line; a finished run keeps its last stage text, which no longer takes any time."""
    if run.get("status") == "done":
        return "(done)"
    return run.get("stage") or "(waiting for a worker)"


@dataclass
class JobWatch:
    """Polls one job from its POST: every change of a stage line, and when the first explanation showed up."""

    api: ApiClient
    job_id: int
    started: float
    transitions: list[tuple[float, str, str]] = field(default_factory=list)
    first_explanation_s: float | None = None
    job: dict = field(default_factory=dict)
    _current: dict[str, str] = field(default_factory=dict)

    @classmethod
    def submit(cls, api: ApiClient, payload: dict) -> JobWatch:
        started = time.perf_counter()
        created = api.json("POST", "/api/jobs/", payload, expect=201)
        return cls(api, created["id"], started)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def poll(self, *, explanations: bool = False) -> dict:
        self.job = self.api.json("GET", f"/api/jobs/{self.job_id}/")
        t = self.elapsed()
        lines = [("job", self.job.get("stage") or "")] + [(r["classifier"], run_stage(r)) for r in self.job.get("runs") or []]
        for line, stage in lines:
            if self._current.get(line) != stage:
                self._current[line] = stage
                self.transitions.append((t, line, stage))
        if explanations and self.first_explanation_s is None:
            if self.api.json("GET", f"/api/jobs/{self.job_id}/explanations/"):
                self.first_explanation_s = t
        return self.job

    def wait(self, *, timeout: float, interval: float, explanations: bool = False, until=job_finished) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            job = self.poll(explanations=explanations)
            if until(job) or job_finished(job):
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {self.job_id} still {job.get('status')} ({job.get('stage')}) after {timeout:.0f}s")
            time.sleep(interval)

    def stages(self) -> dict[str, dict[str, float]]:
        return stage_seconds(self.transitions, self.elapsed())


def explanations_of(api: ApiClient, job_id: int) -> list[dict]:
    return api.json("GET", f"/api/jobs/{job_id}/explanations/")


def explainer_seconds(explanations: list[dict]) -> dict[str, float]:
    """Per classifier/explainer, the seconds its explanations record (the explain call per row, trust not included)."""
    totals: dict[str, float] = {}
    for e in explanations:
        key = f"{e['classifier']}/{e['explainer']}"
        totals[key] = round(totals.get(key, 0.0) + float(e.get("seconds") or 0.0), 2)
    return totals


def batches_summary(job: dict) -> dict[str, Any] | None:
    """``GET /api/jobs/{id}/`` ``batches`` (once the job runs as a pipeline of batches), per classifier/explainer."""
    batches = job.get("batches")
    if batches is None:
        return None
    out: dict[str, dict[str, Any]] = {}
    for b in batches:
        entry = out.setdefault(f"{b.get('classifier')}/{b.get('explainer')}",
                               {"batches": 0, "rows": 0, "seconds": 0.0, "attempts": 0, "workers": set()})
        entry["batches"] += 1
        entry["rows"] += len(b.get("rows") or [])
        entry["seconds"] = round(entry["seconds"] + float(b.get("seconds") or 0.0), 2)
        entry["attempts"] += int(b.get("attempts") or 0)
        entry["workers"].add(b.get("worker") or "")
    return {key: {**entry, "workers": len(entry["workers"] - {""})} for key, entry in out.items()}


RUNS_QUERY = """
import json
from explanations.models import ModelRun
print("BENCH=" + json.dumps([{{"classifier": r.classifier, "seconds": r.seconds, "attempts": r.attempts,
                               "fit_seconds": (r.metrics or {{}}).get("fit_seconds"), "worker": r.worker}}
                              for r in ModelRun.objects.filter(job_id={job_id}).order_by("pk")]))
"""


STEPS_QUERY = """
import json
from explanations.models import Job, Step
job = Job.objects.get(pk={job_id})
print("BENCH=" + json.dumps([{{"key": s.key, "seconds": s.seconds, "worker": s.worker,
                               "start": (s.started_at - job.created_at).total_seconds() if s.started_at else None,
                               "end": (s.finished_at - job.created_at).total_seconds() if s.finished_at else None}}
                              for s in Step.objects.filter(job=job).order_by("pk")]))
"""


def stage_of(key: str) -> str:
    """A step's stage: ``train:random_forest``, ``explain:random_forest:anchor``, ``whatif``, ``job_finish``..."""
    parts = key.split(":")
    if parts[0] in ("explain", "trust"):
        return ":".join(parts[:3])
    return "whatif" if parts[0] == "whatif" else ":".join(parts[:2])


def step_seconds_of(stack: BenchStack, job_id: int) -> dict[str, dict[str, float]]:
    """Per stage, the seconds its steps worked (summed) and when its first step started and its last ended,
    counted from the job's creation, as the job's Step rows record them."""
    out = stack.manage("shell", "--no-imports", "-c", STEPS_QUERY.format(job_id=job_id), timeout=120)
    steps = json.loads(next(line for line in out.splitlines() if line.startswith("BENCH=")).split("=", 1)[1])
    stages: dict[str, dict[str, float]] = {}
    for step in steps:
        entry = stages.setdefault(stage_of(step["key"]), {"steps": 0, "seconds": 0.0, "start": float("inf"), "end": 0.0})
        entry["steps"] += 1
        entry["seconds"] = round(entry["seconds"] + float(step["seconds"] or 0.0), 2)
        entry["start"] = round(min(entry["start"], step["start"] if step["start"] is not None else float("inf")), 1)
        entry["end"] = round(max(entry["end"], step["end"] or 0.0), 1)
    return stages


def model_runs_of(stack: BenchStack, job_id: int) -> list[dict]:
    """The job's model runs as the database holds them (their ``seconds`` are not in the API)."""
    out = stack.manage("shell", "--no-imports", "-c", RUNS_QUERY.format(job_id=job_id), timeout=120)
    return json.loads(next(line for line in out.splitlines() if line.startswith("BENCH=")).split("=", 1)[1])


def job_server_seconds(job: dict) -> dict[str, float | None]:
    """Queued and running time as the job's own timestamps say."""
    def at(key: str):
        value = job.get(key)
        return pd.Timestamp(value) if value else None

    created, started, finished = at("created_at"), at("started_at"), at("finished_at")
    return {"queued": (started - created).total_seconds() if created is not None and started is not None else None,
            "running": (finished - started).total_seconds() if started is not None and finished is not None else None}


# ---------------------------------------------------------------- sections


def default_job_section(stack: BenchStack, api: ApiClient, dataset_id: int) -> dict[str, Any]:
    # The notebook's clock starts after its imports; the job's once the worker's pool processes have done theirs
    # (``step_work_import``) and the upload's ingest is over, as on a service that has been up for a while.
    settled = stack.workers_settle()
    watch = JobWatch.submit(api, {"dataset": dataset_id, **DEFAULT_JOB})
    job = watch.wait(timeout=3600, interval=0.5, explanations=True)
    job_seconds = watch.elapsed()
    explanations = explanations_of(api, watch.job_id)
    rows = sorted({int(e["row"]) for e in explanations})
    out: dict[str, Any] = {
        "job_default_seconds": {"job": job_seconds, "first_explanation": watch.first_explanation_s},
        "job_default_stage_seconds": watch.stages(),
        "job_default_explainer_seconds": explainer_seconds(explanations),
        "job_default_server_seconds": job_server_seconds(job),
        "job_default_worker_settle_s": round(settled, 1),
    }
    try:
        out["job_default_model_runs"] = model_runs_of(stack, watch.job_id)
    except Exception as exc:  # noqa: BLE001 - the bench reports what it could not read
        out["job_default_model_runs"] = f"not read: {type(exc).__name__}: {str(exc)[:200]}"
    try:
        out["job_default_step_seconds"] = step_seconds_of(stack, watch.job_id)
    except Exception as exc:  # noqa: BLE001 - the bench reports what it could not read
        out["job_default_step_seconds"] = f"not read: {type(exc).__name__}: {str(exc)[:200]}"
    batches = batches_summary(job)
    if batches is not None:
        out["job_default_batches"] = batches
    frame = pd.read_csv(DATASETS_DIR / "adult.csv", skipinitialspace=True, na_values="?")
    notebook = notebook_run(frame, label="income", features=ADULT_FEATURES, categorical=ADULT_CATEGORICAL, rows=rows)
    ok = job["status"] == "succeeded" and len(rows) == 3
    out.update({
        "job_default_vs_notebook": job_seconds / notebook["seconds"] if ok else None,
        "job_first_explanation_vs_notebook": (watch.first_explanation_s / notebook["first_explanation_s"]
                                              if ok and watch.first_explanation_s and notebook["first_explanation_s"] else None),
        "job_default_notebook_seconds": {"total": notebook["seconds"], "first_explanation": notebook["first_explanation_s"]},
        "job_default_notebook_stage_seconds": notebook["stages"],
        "job_default_note": (
            "adult.csv uploaded through POST /api/datasets/, schema label income, 13 features (fnlwgt left out), 8 "
            "categorical; POST /api/jobs/ {classifiers: random_forest + logistic_regression, explainers: lime, anchor, "
            "shap, rows: {random: 3}} with no params (every default; trust stability_runs "
            f"{stack.env.get('EXPLAINER_TRUST_STABILITY_RUNS')}) until GET says succeeded, polled every 0.5 s; the "
            "worker as docker-compose.yml runs it (--concurrency 2), a fresh process, the job submitted once its "
            "processes were idle (their start-up imports done, as the notebook's clock starts after its imports: "
            "job_default_worker_settle_s). Stage seconds from the stage "
            "lines polling saw (job and each model run), explainer seconds from the explanations' own seconds. Notebook "
            "(this process, after read_csv): the same split size, the two models as the app trains them, then lime "
            "LimeTabularExplainer.explain_instance (defaults: 5000 samples, 10 features), anchor-exp "
            "AnchorTabularExplainer.explain_instance (threshold 0.95), shap TreeExplainer / LinearExplainer, on the "
            f"job's rows {rows}; {BROKER_NOTE}"
            + ("" if ok else f"; NOT MEASURED: job {job['status']} ({job.get('error')}), rows {rows}")),
    })
    return out


def whole_test_section(stack: BenchStack, api: ApiClient, dataset_id: int, rows: int) -> dict[str, Any]:
    ceiling = two_process_ceiling()
    seconds: dict[int, float] = {}
    stages: dict[int, Any] = {}
    for workers in (1, 2):
        # One core per worker: one process of one thread each, so a second worker can only help by taking work.
        stack.workers_replace(workers, concurrency=1, engine_threads=1)
        watch = JobWatch.submit(api, {"dataset": dataset_id, **WHOLE_TEST, "rows": {"random": rows, "seed": 0}})
        job = watch.wait(timeout=7200, interval=1.0)
        if job["status"] != "succeeded":
            return {"job_whole_test_scaling": None, "worker_two_process_ceiling_jobs": ceiling,
                    "job_whole_test_note": f"the job did not succeed with {workers} worker(s): {job['status']} ({job.get('error')})"}
        seconds[workers], stages[workers] = watch.elapsed(), watch.stages()
    return {
        "job_whole_test_scaling": seconds[1] / seconds[2],
        "worker_two_process_ceiling_jobs": ceiling,
        "job_whole_test_seconds": {"one_worker": seconds[1], "two_workers": seconds[2]},
        "job_whole_test_stage_seconds": {"one_worker": stages[1], "two_workers": stages[2]},
        "job_whole_test_note": (
            f"adult.csv, random_forest + lime + shap on {rows} random test rows, default parameters, submit to "
            "succeeded (polled every 1 s); one worker (--concurrency 1) then two (each --concurrency 1), "
            "EXPLAINER_ENGINE_THREADS=1 and OMP_NUM_THREADS=1, fresh processes; worker_two_process_ceiling_jobs = "
            f"2 x (CPU work alone) / (two copies at once), measured just before; {BROKER_NOTE}"),
    }


def victim_pick(stack: BenchStack, workers: list[Service], job: dict) -> Service:
    """The worker to kill: one that holds a running batch when the job lists them, else one that took a task."""
    nodes = {stack.worker_node(w.name): w for w in workers}
    for batch in job.get("batches") or []:
        if batch.get("status") == "running" and batch.get("worker") in nodes:
            return nodes[batch["worker"]]
    for worker in workers:
        if " received" in worker.log_text():
            return worker
    raise RuntimeError("no worker has received a task of the job")


def _batch_key(batch: dict) -> tuple:
    return batch.get("classifier"), batch.get("explainer"), tuple(batch.get("rows") or ())


def lost_work_running(at_kill: dict, now: dict, victim: str) -> bool:
    """Whether every piece of work the killed worker held is under way again (or done) elsewhere.

    With ``batches`` in the job: each batch the victim held unfinished is running or done on another worker (or
    tried again). Without: each model run not done at the kill has moved on (a new stage, more progress, done).
    """
    if now.get("status") == "succeeded":
        return True
    if at_kill.get("batches") is not None and now.get("batches") is not None:
        lost = {_batch_key(b): b for b in at_kill["batches"] if b.get("worker") == victim and b.get("status") not in DONE}
        current = {_batch_key(b): b for b in now["batches"]}
        return all(
            key in current and current[key].get("status") in UNDER_WAY
            and (current[key].get("worker") != victim or int(current[key].get("attempts") or 0) > int(then.get("attempts") or 0))
            for key, then in lost.items())
    then_runs = {r["classifier"]: r for r in at_kill.get("runs") or [] if r.get("status") != "done"}
    now_runs = {r["classifier"]: r for r in now.get("runs") or []}

    def moved(key: str) -> bool:
        run, then = now_runs.get(key), then_runs[key]
        if run is None:
            return False
        if run.get("status") == "done" or float(run.get("progress") or 0) > float(then.get("progress") or 0):
            return True
        stage = run.get("stage") or ""
        return stage != (then.get("stage") or "") and not stage.startswith("Paused")

    return all(moved(key) for key in then_runs)


def duplicates_of(explanations: list[dict]) -> int:
    counts = Counter((e["classifier"], e["explainer"], e["row"]) for e in explanations)
    return sum(n - 1 for n in counts.values() if n > 1)


def recovery_section(stack: BenchStack, api: ApiClient, dataset_id: int, rows: int, cap: float) -> dict[str, Any]:
    workers = stack.workers_replace(2, concurrency=1)
    watch = JobWatch.submit(api, {"dataset": dataset_id, **WHOLE_TEST, "rows": {"random": rows, "seed": 1}})
    job = watch.wait(timeout=1800, interval=0.5, explanations=True, until=lambda _: watch.first_explanation_s is not None)
    if job_finished(job):
        return {"recovery_s": None, "recovery_note": f"the job ended ({job['status']}) before a worker could be killed"}
    victim = victim_pick(stack, workers, job)
    victim_node = stack.worker_node(victim.name)
    at_kill = job
    os.killpg(victim.process.pid, signal.SIGKILL)
    killed = time.perf_counter()
    recovered: float | None = None
    while time.perf_counter() - killed < cap:
        job = watch.poll()
        if lost_work_running(at_kill, job, victim_node):
            recovered = time.perf_counter() - killed
            break
        if job_finished(job):
            break
        time.sleep(1.0)
    if recovered is not None and not job_finished(job):
        job = watch.wait(timeout=max(cap, 600), interval=1.0)
    explanations = explanations_of(api, watch.job_id)
    redone = None
    if at_kill.get("batches") is not None and job.get("batches") is not None:
        finished = {_batch_key(b): b for b in at_kill["batches"] if b.get("status") in DONE}
        redone = sum(1 for b in job["batches"] if _batch_key(b) in finished
                     and int(b.get("attempts") or 0) > int(finished[_batch_key(b)].get("attempts") or 0))
    waited = time.perf_counter() - killed
    return {
        "recovery_s": recovered,
        "recovery_detail": {
            "job_status": job["status"], "job_stage": job.get("stage"), "explanations": len(explanations),
            "duplicated_explanations": duplicates_of(explanations), "finished_batches_redone": redone,
            "seconds_watched_after_kill": round(waited, 1), "killed_at_s": round(killed - watch.started, 1)},
        "recovery_note": (
            f"adult.csv, random_forest + lime + shap on {rows} random test rows, default parameters; two workers "
            "(--concurrency 1 each) up before the submit; at the first explanation the worker holding the job's "
            "task (a running batch when the job lists batches) gets SIGKILL on its whole process group; recovery_s = "
            "kill until every model run it held moved on again (new stage, more progress) or, with batches, every "
            "batch it held runs elsewhere; polled every 1 s; job_status etc. when the watch ended; "
            f"sweeper, time limits and visibility timeout at the app's defaults; {BROKER_NOTE}"
            + ("" if recovered is not None else f"; not recovered within {cap:.0f} s")),
    }


def job_sections(quick: bool, only: set[str] | None = None) -> dict[str, Any]:
    """The user-facing keys (or the ``only`` sections named: default, scaling, recovery), null with a note for
    whatever could not be measured."""
    import shutil

    sizes = SIZES[quick]
    out: dict[str, Any] = {}
    if not shutil.which("redis-server"):
        return {**JOB_NULLS, "job_note": "redis-server is not installed: the app stack cannot start"}
    if not (DATASETS_DIR / "adult.csv").is_file():
        return {**JOB_NULLS, "job_note": f"{DATASETS_DIR}/adult.csv is absent"}
    stack = BenchStack(name="bench-jobs", workers=[WorkerSpec("worker", queues="celery,gpu", concurrency=2)],
                       extra_env={"EXPLAINER_TRUST_STABILITY_RUNS": trust_runs_default()})
    started = time.perf_counter()
    try:
        stack.start()
        username = "bench-jobs"
        api = stack.api(stack.user_create(username, f"{username}-pass-{uuid.uuid4().hex}"))
        dataset = api.upload("/api/datasets/", DATASETS_DIR / "adult.csv", name="adult")
        api.json("PUT", f"/api/datasets/{dataset['id']}/schema/",
                 {"label": "income", "features": ADULT_FEATURES, "categorical": ADULT_CATEGORICAL})
        sections = (("default", lambda: default_job_section(stack, api, dataset["id"])),
                    ("scaling", lambda: whole_test_section(stack, api, dataset["id"], sizes["rows"])),
                    ("recovery", lambda: recovery_section(stack, api, dataset["id"], sizes["rows"], sizes["recovery_cap_s"])))
        for name, section in sections:
            if only and name not in only:
                continue
            lap = time.perf_counter()
            try:
                result = section()
            except Exception as exc:  # noqa: BLE001 - the bench reports what it could not measure
                result = {f"job_{name}_error": f"not measured: {type(exc).__name__}: {str(exc)[:300]}"}
            out.update(result)
            out.setdefault("job_section_seconds", {})[name] = round(time.perf_counter() - lap, 1)
            print(f"bench.jobs {name} ({time.perf_counter() - lap:.0f} s): {json.dumps(result)}", file=sys.stderr, flush=True)
    except Exception as exc:  # noqa: BLE001
        out["job_note"] = f"the app stack failed: {type(exc).__name__}: {str(exc)[:300]}"
    finally:
        stack.stop()
    for key, value in JOB_NULLS.items():
        out.setdefault(key, value)
    out.setdefault("job_note", f"app stack logs under {stack.log_dir.relative_to(REPO_ROOT)}; the machine is shared, "
                               "so timings carry its load")
    out["job_seconds"] = time.perf_counter() - started
    return out


if __name__ == "__main__":  # python -m bench.jobs [--quick] [default] [scaling] [recovery]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped bench still stops its stack
    args = sys.argv[1:]
    json.dump(job_sections("--quick" in args, {a for a in args if not a.startswith("--")} or None), sys.stdout, indent=1)
    print()
