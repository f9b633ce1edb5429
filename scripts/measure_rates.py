"""Measure the seconds the job phases take on this machine: the numbers behind ``explanations/estimates.py``.

Runs jobs in-process (eager Celery, a throwaway SQLite and media root) on the shared datasets and prints, per
classifier, the training seconds per 1,000 training rows, the wall seconds per explained row for each explainer
(trust included) and the seconds of the global views; and the job's what-if and packing seconds.

    .venv/bin/python scripts/measure_rates.py [adult.csv] [rows]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
work = tempfile.mkdtemp(prefix="explainer-rates-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "explainer_site.settings.test")
os.environ["DATABASE_URL"] = f"sqlite:///{work}/db.sqlite3"
os.environ["EXPLAINER_VAR_DIR"] = work

import django  # noqa: E402

django.setup()
from django.conf import settings  # noqa: E402
from django.core.files import File  # noqa: E402
from django.core.management import call_command  # noqa: E402

settings.EXPLAINER_TRUST_STABILITY_RUNS = int(os.environ.get("STABILITY_RUNS", "5"))  # production's default
call_command("migrate", verbosity=0)

from django.contrib.auth import get_user_model  # noqa: E402

from datasets.services import dataset_create, dataset_schema_default, dataset_schema_set  # noqa: E402
from explanations import job_steps  # noqa: E402
from explanations.services import job_create as job_creation  # noqa: E402

name = sys.argv[1] if len(sys.argv) > 1 else "adult.csv"
n_rows = int(sys.argv[2]) if len(sys.argv) > 2 else 3
classifiers = os.environ.get("CLASSIFIERS", "random_forest,logistic_regression").split(",")
user = get_user_model().objects.create_user("rates", password="x-long-password-1")
with open(ROOT.parent / "shared" / "datasets" / name, "rb") as handle:
    dataset = dataset_create(owner=user, file=File(handle, name=name), name=name)
dataset = dataset_schema_set(dataset=dataset, **dataset_schema_default(dataset=dataset))

transitions: list[tuple[float, str]] = []
original = job_steps.job_stage_set


def stage_logged(job_id, stage, *, run_id=None):
    transitions.append((time.perf_counter(), stage))
    return original(job_id, stage, run_id=run_id)


job_steps.job_stage_set = stage_logged
started = time.perf_counter()
job = job_creation.job_create(owner=user, dataset=dataset, classifiers=classifiers, explainers=["lime", "anchor", "shap"],
                              rows={"random": n_rows, "seed": 0}, params={})
job_creation.job_enqueue(job=job)
end = time.perf_counter()
job.refresh_from_db()
transitions.append((end, "end"))
phases: dict[str, float] = {}
for (at, stage), (nxt, _) in zip(transitions, transitions[1:]):
    phases[stage] = round(phases.get(stage, 0.0) + nxt - at, 2)
runs = {r.classifier: {"fit_seconds": r.metrics.get("fit_seconds"), "n_train": r.metrics.get("n_train")}
        for r in job.runs.all()}
print(json.dumps({"dataset": name, "rows": n_rows, "status": job.status, "error": job.error,
                  "total_seconds": round(end - started, 1), "runs": runs, "phases": phases}, indent=1))
