"""The engines' use of both cores: threads for LIME and Kernel SHAP rows, processes for TreeSHAP inside Celery."""

from __future__ import annotations

import os

import billiard
import numpy as np
import pytest

from explanations.classifiers import classifier_fit, predictor_build
from explanations.engine import engine_threads, rows_in_threads
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


@pytest.mark.parametrize("key", ["lime", "lime_fresh", "shap"])
def test_explanations_do_not_depend_on_the_number_of_threads(heart_table, svm, monkeypatch, key: str) -> None:
    """Each row draws from its own random stream or reads the shared draw, so two threads give the one-thread answer."""
    explainer_cls = ShapExplainer if key == "shap" else LimeExplainer
    params = {"algorithm": "kernel", "background_size": 10, "nsamples": 100} if key == "shap" else {"num_samples": 300}
    if key == "lime_fresh":
        params["shared_samples"] = False
    explainer = explainer_cls(**params).fit(heart_table.X_train, svm, heart_table.space, seed=3)
    X, rows = heart_table.X_test[:5], [4, 8, 15, 16, 23]
    monkeypatch.setenv("EXPLAINER_ENGINE_THREADS", "1")
    one = explainer.explain(X, rows)
    monkeypatch.setenv("EXPLAINER_ENGINE_THREADS", "2")
    two = explainer.explain(X, rows)
    assert explainer._parallel_rows()
    assert [e.row for e in two] == rows
    assert [e.data for e in two] == [e.data for e in one]


_RECORDED: dict = {}


def _recording_chunk(bounds):
    """Stands in for ``_tree_chunk`` in the daemonic process; its forked children inherit the patch."""
    (_RECORDED["folder"] / str(os.getpid())).touch()
    return _RECORDED["chunk"](bounds)


def _treeshap_pids(queue, folder) -> None:
    """In a daemonic process: TreeSHAP on two processes; which pids explained a chunk, and the values."""
    import shap
    from sklearn.ensemble import RandomForestClassifier

    from explanations.explainers import shap as shap_module

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 5)), rng.integers(0, 2, 200)
    explainer = shap.TreeExplainer(RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y))
    _RECORDED.update(folder=folder, chunk=shap_module._tree_chunk)
    shap_module._tree_chunk = _recording_chunk
    shap_module.TREE_PARALLEL_NODE_ROWS = 1
    os.environ["EXPLAINER_TREE_PROCESSES"] = "2"
    parallel = shap_module.tree_values_parallel(explainer, X[:20])
    queue.put((os.getpid(), billiard.current_process().daemon, np.asarray(parallel), np.asarray(explainer.shap_values(X[:20]))))


def test_treeshap_processes_start_inside_a_celery_prefork_worker(tmp_path) -> None:
    """Celery's pool processes are daemonic, and a daemonic process may not start children unless the flag is lifted."""
    # Spawned, not forked: a clean interpreter, as a Celery pool process is before its first task.
    context = billiard.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_treeshap_pids, args=(queue, tmp_path), daemon=True)
    child.start()
    try:
        pid, daemon, parallel, serial = queue.get(timeout=120)
    finally:
        child.join(30)
        if child.is_alive():
            child.terminate()
    assert daemon is True
    pids = {int(p.name) for p in tmp_path.iterdir()}
    assert pids and pid not in pids  # the second chunk ran in a forked child, not in the daemonic process
    np.testing.assert_allclose(parallel, serial, atol=1e-12)
