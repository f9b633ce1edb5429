"""The bench's user-facing job keys: the pure parts (the notebook script, stage seconds, the recovery check).

The sections themselves start a real stack and run whole jobs (minutes), so they run in ``python -m bench`` only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from bench.__main__ import GOALS, table_text
from bench.jobs import (
    ADULT_FEATURES,
    JOB_NULLS,
    batches_summary,
    duplicates_of,
    lost_work_running,
    run_stage,
    stage_key,
    stage_seconds,
)
from bench.notebook import notebook_run
from bench.tables import ADULT_CATEGORICAL
from tests.stack import DATASETS_DIR


@pytest.fixture(scope="module")
def adult_50() -> pd.DataFrame:
    return pd.read_csv(DATASETS_DIR / "adult.csv", skipinitialspace=True, na_values="?", nrows=50)


def test_notebook_explains_every_row_with_every_library_and_keeps_those_rows_out_of_training(adult_50):
    rows = [3, 10, 20]
    out = notebook_run(adult_50, label="income", features=ADULT_FEATURES, categorical=ADULT_CATEGORICAL, rows=rows,
                       n_estimators=10)
    assert out["explanations"] == 2 * 3 * len(rows)  # two models x lime, anchor-exp, shap x rows
    assert 0 < out["first_explanation_s"] <= out["seconds"]
    assert set(out["stages"]) == {"prepare", "train random_forest", "train logistic_regression",
                                  *(f"{method} {model}" for method in ("lime", "anchor", "shap")
                                    for model in ("random_forest", "logistic_regression"))}
    assert sum(out["stages"].values()) == pytest.approx(out["seconds"], abs=0.1)
    train, _ = train_test_split(np.arange(50), test_size=0.25, random_state=0)
    assert out["train_rows"] == len(set(train.tolist()) - set(rows)) < len(train)  # the explained rows were not trained on


def test_stage_seconds_add_up_each_line_and_merge_batches_of_one_explainer():
    transitions = [(0.0, "job", "Waiting for a worker"), (1.0, "random_forest", "Training Random forest"),
                   (4.0, "random_forest", "Explaining rows 1–16 of 32 with LIME — Random forest"),
                   (6.0, "random_forest", "Explaining rows 17–32 of 32 with LIME — Random forest"),
                   (9.0, "random_forest", "Drawing the global views for Random forest"), (9.5, "job", "Done")]
    out = stage_seconds(transitions, end=10.0)
    assert out["random_forest"] == {"Training Random forest": 3.0, "Explaining rows with LIME — Random forest": 5.0,
                                    "Drawing the global views for Random forest": 1.0}
    assert out["job"] == {"Waiting for a worker": 9.5, "Done": 0.5}
    assert stage_key("Explaining rows 1-3 of 3 with SHAP") == "Explaining rows with SHAP"
    assert stage_key("Drawing what-if curves for row 98 (1 of 48)") == "Drawing what-if curves for each row"
    # a finished run keeps its last stage text: it must stop counting there
    assert run_stage({"status": "done", "stage": "Drawing the global views for Random forest"}) == "(done)"
    assert run_stage({"status": "pending", "stage": ""}) == "(waiting for a worker)"


def run(stage: str, progress: float, status: str = "running") -> dict:
    return {"classifier": "random_forest", "status": status, "stage": stage, "progress": progress}


def test_lost_work_counts_as_running_again_only_once_the_run_moves_on():
    at_kill = {"status": "running", "runs": [run("Explaining rows 17–32 of 200 with LIME", 0.1)]}
    assert not lost_work_running(at_kill, at_kill, "w1@h")
    stuck = {"status": "running", "stage": "Random forest: its worker stopped responding; queued again",
             "runs": [run("Explaining rows 17–32 of 200 with LIME", 0.1)]}
    assert not lost_work_running(at_kill, stuck, "w1@h")
    assert not lost_work_running(at_kill, {"status": "running", "runs": [run("Paused to let others go", 0.1)]}, "w1@h")
    assert lost_work_running(at_kill, {"status": "running", "runs": [run("Preparing the data for Random forest", 0.1)]}, "w1@h")
    assert lost_work_running(at_kill, {"status": "running", "runs": [run("Explaining rows 17–32 of 200 with LIME", 0.2)]}, "w1@h")
    assert lost_work_running(at_kill, {"status": "succeeded", "runs": [run("Done", 1.0, "done")]}, "w1@h")


def batch(rows: list[int], status: str, worker: str, attempts: int = 1) -> dict:
    return {"classifier": "random_forest", "explainer": "lime", "rows": rows, "status": status, "worker": worker,
            "seconds": 1.5, "attempts": attempts}


def test_lost_batches_must_each_run_again_on_another_worker():
    at_kill = {"status": "running", "runs": [], "batches": [batch([0, 1], "done", "w1@h"), batch([2, 3], "running", "w1@h"),
                                                           batch([4, 5], "running", "w2@h")]}
    assert not lost_work_running(at_kill, at_kill, "w1@h")
    half = {**at_kill, "batches": [batch([0, 1], "done", "w1@h"), batch([2, 3], "queued", "", 1), batch([4, 5], "done", "w2@h")]}
    assert not lost_work_running(at_kill, half, "w1@h")
    moved = {**at_kill, "batches": [batch([0, 1], "done", "w1@h"), batch([2, 3], "running", "w2@h", 2), batch([4, 5], "done", "w2@h")]}
    assert lost_work_running(at_kill, moved, "w1@h")
    assert batches_summary(moved) == {"random_forest/lime": {"batches": 3, "rows": 6, "seconds": 4.5, "attempts": 4, "workers": 2}}
    assert batches_summary({"status": "running"}) is None


def test_duplicates_count_every_extra_record_of_one_classifier_explainer_row():
    records = [{"classifier": "rf", "explainer": "lime", "row": 1}, {"classifier": "rf", "explainer": "lime", "row": 1},
               {"classifier": "rf", "explainer": "shap", "row": 1}, {"classifier": "rf", "explainer": "lime", "row": 2}]
    assert duplicates_of(records) == 1
    assert duplicates_of(records[2:]) == 0


def test_the_new_keys_have_goals_and_print_when_not_measured():
    assert {key: GOALS[key] for key in JOB_NULLS} == {
        "job_default_vs_notebook": ("<=", 1.0), "job_first_explanation_vs_notebook": ("<=", 1.0),
        "job_whole_test_scaling": (">=", 1.8), "recovery_s": ("<=", 120)}
    text = table_text({**JOB_NULLS, "recovery_s": 130.0, "job_whole_test_scaling": 1.9})
    lines = {line.split()[0]: line.split() for line in text.splitlines()[1:]}
    assert lines["job_default_vs_notebook"][1] == "null"
    assert lines["recovery_s"][-1] == "NO" and lines["job_whole_test_scaling"][-1] == "yes"
