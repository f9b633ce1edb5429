"""The engines' use of both cores: threads for LIME, Kernel SHAP and TreeSHAP rows, with the one-thread answers."""

from __future__ import annotations

import os

import numpy as np
import pytest

from explanations.ml.classifiers import classifier_fit, predictor_build
from explanations.ml.engine import engine_threads, rows_in_threads
from explanations.ml.explainers.lime import LimeExplainer
from explanations.ml.explainers.shap import ShapExplainer


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


def test_tree_shap_rows_on_threads_give_the_one_thread_values(heart_table, monkeypatch) -> None:
    """The TreeSHAP kernel splits a batch's rows over the engine's threads; each row's values stay bit for bit."""
    model = classifier_fit("random_forest", {"n_estimators": 20}, heart_table.space, heart_table.X_train,
                           heart_table.y_train, seed=0)
    forest = predictor_build("random_forest", model, heart_table.space)
    explainer = ShapExplainer(algorithm="tree").fit(heart_table.X_train, forest, heart_table.space, seed=0)
    rows = forest.transform(heart_table.X_test[:9])
    one = explainer.tree_kernel_.values(rows, threads=1)
    two = explainer.tree_kernel_.values(rows, threads=2)
    np.testing.assert_array_equal(two, one)
    monkeypatch.setenv("EXPLAINER_ENGINE_THREADS", "1")
    alone = [e.data for e in explainer.explain(heart_table.X_test[:9], list(range(9)))]
    monkeypatch.setenv("EXPLAINER_ENGINE_THREADS", "2")
    assert [e.data for e in explainer.explain(heart_table.X_test[:9], list(range(9)))] == alone
