"""The engines' use of both cores: threads for LIME and Kernel SHAP rows, processes for TreeSHAP inside Celery."""

from __future__ import annotations

import os

import billiard
import numpy as np
import pytest
from joblib import Parallel, delayed

from explanations.classifiers import classifier_fit, predictor_build
from explanations.engine import child_processes_allowed, engine_threads, rows_in_threads
from explanations.explainers.lime import LimeExplainer
from explanations.explainers.shap import ShapExplainer


@pytest.fixture(scope="module")
def svm(heart_table):
    model = classifier_fit("svm", {}, heart_table.space, heart_table.X_train, heart_table.y_train, seed=0)
    return predictor_build("svm", model, heart_table.space)


def test_engine_threads_come_from_the_environment_else_the_usable_cores(monkeypatch) -> None:
    monkeypatch.setenv("EXPLAINER_ENGINE_THREADS", "3")
    assert engine_threads() == 3
    monkeypatch.setenv("EXPLAINER_ENGINE_THREADS", "0")
    assert engine_threads() == len(os.sched_getaffinity(0))


def test_rows_in_threads_keeps_row_order_and_uses_threads() -> None:
    import threading

    seen: list[tuple[int, str]] = []
    together = threading.Barrier(3, timeout=30)  # passes only if three slices run at the same time

    def work(indices: np.ndarray) -> list[int]:
        if len(seen) < 7:
            together.wait()
        seen.extend((int(i), threading.current_thread().name) for i in indices)
        return [int(i) * 10 for i in indices]

    assert rows_in_threads(work, 7, threads=3) == [0, 10, 20, 30, 40, 50, 60]
    assert len({name for _, name in seen}) == 3 and all(name.startswith("explain") for _, name in seen)
    assert rows_in_threads(work, 2, threads=1) == [0, 10]


@pytest.mark.parametrize("key", ["lime", "shap"])
def test_explanations_do_not_depend_on_the_number_of_threads(heart_table, svm, monkeypatch, key: str) -> None:
    """Each row draws from its own random stream, so two threads give exactly the one-thread answer."""
    explainer_cls = LimeExplainer if key == "lime" else ShapExplainer
    params = {"num_samples": 300} if key == "lime" else {"algorithm": "kernel", "background_size": 10, "nsamples": 100}
    explainer = explainer_cls(**params).fit(heart_table.X_train, svm, heart_table.space, seed=3)
    X, rows = heart_table.X_test[:5], [4, 8, 15, 16, 23]
    monkeypatch.setenv("EXPLAINER_ENGINE_THREADS", "1")
    one = explainer.explain(X, rows)
    monkeypatch.setenv("EXPLAINER_ENGINE_THREADS", "2")
    two = explainer.explain(X, rows)
    assert explainer._parallel_rows()
    assert [e.row for e in two] == rows
    assert [e.data for e in two] == [e.data for e in one]


def _loky_pids(queue) -> None:
    with child_processes_allowed():
        pids = Parallel(n_jobs=2, backend="loky")(delayed(os.getpid)() for _ in range(8))
    queue.put((os.getpid(), sorted(set(pids)), billiard.current_process().daemon))


def test_treeshap_processes_start_inside_a_celery_prefork_worker() -> None:
    """Celery's pool processes are daemonic; without lifting that flag joblib would run everything in-process."""
    # Spawned, not forked: a fork of this test process would inherit the executor an earlier test started.
    context = billiard.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_loky_pids, args=(queue,), daemon=True)
    child.start()
    try:
        pid, pids, daemon = queue.get(timeout=120)
    finally:
        child.join(30)
        if child.is_alive():
            child.terminate()
    assert daemon is True
    assert pid not in pids and len(pids) >= 1  # the work ran in loky's processes, not in the daemonic one

