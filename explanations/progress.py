"""Where a running job stands: progress by expected seconds, the stage running now, and an ETA measured on the job.

Each phase of each classifier (training, every explainer's rows, the global views) and the job's finish (what-if
curves, the ZIP) weighs its expected seconds (``estimates``), so the bar moves with time and never reaches 100 %
while a phase remains. The ETA divides the work left by the rate this job has shown so far: per classifier, the
expected seconds it has finished per second since it started (a classifier that has not finished anything yet
is assumed to run as estimated).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from django.utils import timezone

from explanations.estimates import JobPlan, job_plan
from explanations.models import FINAL_STATUSES, Job, JobStatus, ModelRunStatus
from uploaded_models.job_classifiers import classifier_label_of

MIN_MEASURED_SECONDS = 2.0  # a rate from less work than this is noise: the estimate stands instead
RUNNING_CAP = 0.99  # the bar's ceiling while anything remains


@dataclass
class RunState:
    classifier: str
    label: str
    status: str
    stage: str
    done: float  # expected seconds finished
    total: float
    started: bool
    elapsed: float  # seconds since the run started
    remaining: float | None = None


def run_states(job: Job, plan: JobPlan, now) -> list[RunState]:
    counts = Counter((c, e) for c, e in job.explanations.values_list("classifier", "explainer"))
    states = []
    for run in job.runs.all():
        runplan = plan.runs.get(run.classifier)
        if runplan is None:
            continue
        if run.status == ModelRunStatus.DONE:
            done = runplan.total
        else:
            done = runplan.train if run.status == ModelRunStatus.TRAINED else 0.0
            done += sum(min(counts[(run.classifier, e)], runplan.rows) * s for e, s in runplan.row_seconds.items())
        started_at = run.started_at or (job.started_at if run.status != ModelRunStatus.PENDING else None)
        elapsed = max((now - started_at).total_seconds(), 0.0) if started_at else 0.0
        states.append(RunState(classifier=run.classifier, label=classifier_label_of(run.classifier), status=run.status,
                               stage=run.stage, done=min(done, runplan.total), total=runplan.total,
                               started=started_at is not None, elapsed=elapsed))
    return states


def run_remaining(state: RunState, factor: float) -> float:
    """Seconds this classifier still needs, at the rate it has shown (or the estimate's, scaled by history)."""
    left = state.total - state.done
    if left <= 0:
        return 0.0
    if state.started and state.done >= MIN_MEASURED_SECONDS and state.elapsed > 0:
        return left / (state.done / state.elapsed)
    expected = state.total * factor
    return max(expected - state.elapsed, 0.1 * expected) if state.started else expected


def job_live_status(*, job: Job, now=None) -> dict:
    """``progress`` (0..1), ``eta_seconds`` (None when unknown or final), ``headline``, and ``runs`` with their own."""
    now = now or timezone.now()
    if job.status in FINAL_STATUSES:
        return {"progress": 1.0 if job.status == JobStatus.SUCCEEDED else final_progress(job), "eta_seconds": None,
                "headline": job.stage, "runs": [], "explained": job.explanations.count()}
    plan = job_plan(job)
    states = run_states(job, plan, now)
    if not states:
        return {"progress": 0.0, "eta_seconds": None, "headline": job.stage, "runs": [], "explained": 0}
    for state in states:
        state.remaining = run_remaining(state, plan.factor)
    running = [s for s in states if s.started and s.remaining > 0]
    waiting = [s for s in states if not s.started]
    # Started classifiers run side by side; those not started wait for one of those workers to come free.
    eta = max((s.remaining for s in running), default=0.0) + sum(s.remaining for s in waiting) / max(len(running), 1)
    speeds = [s.done / s.elapsed for s in states if s.started and s.done >= MIN_MEASURED_SECONDS and s.elapsed > 0]
    speed = sum(speeds) / len(speeds) if speeds else 1 / plan.factor
    all_done = all(s.status == ModelRunStatus.DONE for s in states)
    finish_done = 0.0
    if all_done:  # what-if curves and packing: how far is told by the stage; half-way is as good a guess as any
        finish_done = plan.finish * 0.5
    eta += (plan.finish - finish_done) / max(speed, 1e-3)
    total = sum(s.total for s in states) + plan.finish
    done = sum(s.done for s in states) + finish_done
    progress = min(done / total if total else 0.0, RUNNING_CAP)
    return {"progress": round(progress, 4), "eta_seconds": round(eta), "headline": headline(job, states),
            "explained": job.explanations.count(),
            "runs": [{"classifier": s.classifier, "progress": round(min(s.done / s.total, 1.0) if s.total else 0.0, 4),
                      "eta_seconds": round(s.remaining) if s.remaining is not None else None} for s in states]}


def final_progress(job: Job) -> float:
    """A cancelled or failed job's bar stays where the work stopped."""
    runs = list(job.runs.all())
    if not runs:
        return 0.0
    return round(sum(min(r.units_done / max(r.units_total, 1), 1.0) for r in runs) / len(runs), 4)


def headline(job: Job, states: list[RunState]) -> str:
    """The stage running now: one classifier's, or each of those running side by side; the job's once all are done."""
    active = [s for s in states if s.status != ModelRunStatus.DONE and s.started and s.stage]
    if not active:
        return job.stage
    if len(active) == 1:
        return active[0].stage
    return " · ".join(f"{s.label}: {stage_without_label(s.stage, s.label)}" for s in active)


def stage_without_label(stage: str, label: str) -> str:
    """``Explaining rows 1–3 of 3 with LIME — Random forest`` reads ``Explaining rows 1–3 of 3 with LIME`` after
    ``Random forest:``; ``Training Random forest`` reads ``Training``."""
    for suffix in (f" — {label}", f" for {label}", f" {label}"):
        if stage.endswith(suffix):
            return stage[: -len(suffix)]
    return stage


def eta_words(seconds: int | None) -> str:
    if seconds is None:
        return ""
    if seconds < 10:
        return "a few seconds left"
    if seconds < 90:
        return f"about {round(seconds / 5) * 5} s left"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} min left"
    return f"about {seconds / 3600:.1f} h left"

