"""One function per bench section; each returns its JSON keys. Reference and project run here, on the same
table, model, parameters and sample counts, one after the other in this process."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from bench.tables import Table, forest_predictor, registry_predictor
from bench.timing import clocked, stopwatch
from explanations.engine import rows_in_threads
from explanations.explainers.anchors import COVERAGE_SAMPLES, AnchorExplainer
from explanations.explainers.base import Predictor, numpy_global_seed, row_seed
from explanations.explainers.lime import LimeExplainer
from explanations.explainers.shap import ShapExplainer

LIME_SAMPLES, LIME_FEATURES = 5000, 5
ANCHOR_THRESHOLD = 0.95
FRESH_SAMPLES = 2000
BACKGROUND_MAX = 10_000  # as a job's JobData.background


@contextmanager
def engine_threads_set(threads: int) -> Iterator[None]:
    before = os.environ.get("EXPLAINER_ENGINE_THREADS")
    os.environ["EXPLAINER_ENGINE_THREADS"] = str(threads)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("EXPLAINER_ENGINE_THREADS", None)
        else:
            os.environ["EXPLAINER_ENGINE_THREADS"] = before


def batch_size() -> int:
    """The app's batch size: what ``explainer_rows_run`` hands an explainer at a time."""
    try:
        from explainer_site.settings import base

        return int(base.EXPLAINER_BATCH_SIZE)
    except Exception:  # settings need Django's extras; the environment variable is what they read
        return int(os.environ.get("EXPLAINER_BATCH_SIZE", "16"))


def background(table: Table, seed: int = 0) -> np.ndarray:
    X = table.X_train
    if len(X) > BACKGROUND_MAX:
        X = X[np.sort(np.random.default_rng(seed).choice(len(X), BACKGROUND_MAX, replace=False))]
    return X


def _batches(n: int, size: int) -> list[list[int]]:
    return [list(range(start, min(start + size, n))) for start in range(0, n, size)]


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


# ---------------------------------------------------------------- LIME


def _lime_reference(explainer: LimeExplainer, predict, X: np.ndarray, labels: np.ndarray, seed: int) -> list[set[int]]:
    """lime's own ``explain_instance``, one row at a time, on the explainer's own ``LimeTabularExplainer``."""
    lime = explainer.lime_
    tops = []
    for i, (x, label) in enumerate(zip(X, labels)):
        state = np.random.RandomState(row_seed(seed, i))
        lime.random_state = lime.base.random_state = state
        if lime.discretizer is not None:
            lime.discretizer.random_state = state
        explained = lime.explain_instance(x, predict, labels=(int(label),), num_features=LIME_FEATURES, num_samples=LIME_SAMPLES)
        tops.append({int(j) for j, _ in explained.local_exp[int(label)]})
    return tops


def lime_section(table: Table, predictor: Predictor, rows: int, *, suffix: str = "") -> dict[str, Any]:
    X = table.X_test[:rows]
    timed, clock = clocked(predictor, keep_inputs=True)
    explainer = LimeExplainer(num_samples=LIME_SAMPLES, num_features=LIME_FEATURES).fit(
        background(table), timed, table.space, seed=0)
    with engine_threads_set(1), stopwatch() as one_thread:
        results = [e for batch in _batches(rows, batch_size()) for e in explainer.explain(X[batch], batch)]
    inputs, clock.inputs, clock.keep_inputs = clock.inputs, [], False
    with stopwatch() as inference:  # the same inputs, in the same calls, and nothing else
        for chunk in inputs:
            predictor.predict_proba(chunk)
    with stopwatch() as project:  # as a job runs it: the batch's rows spread over the engine's threads
        threaded = [e for batch in _batches(rows, batch_size()) for e in explainer.explain(X[batch], batch)]
    assert [e.data for e in threaded] == [e.data for e in results], "threads changed the explanations"
    labels = np.array([e.predicted for e in results])
    with stopwatch() as reference:
        ref = _lime_reference(explainer, predictor.predict_proba, X, labels, seed=1)
    names = table.space.feature_names
    project_tops = [{names.index(f) for f in e.data["feature_of"]} for e in results]
    out = {
        f"lime_speedup{suffix}": reference[0] / project[0],
        f"lime_speedup_1thread{suffix}": reference[0] / one_thread[0],
        # Our time on one thread over the model's own time on the same inputs, in the same calls.
        f"lime_overhead{suffix}": one_thread[0] / inference[0],
        # The most any single-thread engine can reach here: the reference's time over the model's own time.
        f"lime_speedup_bound{suffix}": reference[0] / inference[0],
        f"lime_seconds_per_row{suffix}": {"project": project[0] / rows, "project_1thread": one_thread[0] / rows,
                                          "reference": reference[0] / rows, "model_only": inference[0] / rows},
    }
    if not suffix:
        ref_other = _lime_reference(explainer, predictor.predict_proba, X, labels, seed=2)
        out["lime_agreement"] = float(np.mean([_jaccard(a, b) for a, b in zip(project_tops, ref)]))
        out["lime_self_agreement"] = float(np.mean([_jaccard(a, b) for a, b in zip(ref_other, ref)]))
    return out


# ---------------------------------------------------------------- Anchors


def anchor_section(table: Table, predictor: Predictor, rows: int) -> dict[str, Any]:
    X = table.X_test[:rows]
    explainer = AnchorExplainer(threshold=ANCHOR_THRESHOLD).fit(background(table), predictor, table.space, seed=0)
    found: list = []
    engine_explain = explainer.engine_.explain

    def recording(*args, **kwargs):
        anchors = engine_explain(*args, **kwargs)
        found.extend(anchors)
        return anchors

    explainer.engine_.explain = recording  # keep the anchors to re-measure their precision
    with stopwatch() as project:
        results = [e for batch in _batches(rows, batch_size()) for e in explainer.explain(X[batch], batch)]
    labels = [e.predicted for e in results]

    def predict_label(Z: np.ndarray) -> np.ndarray:
        return np.argmax(predictor.predict_proba(Z), axis=1)

    from anchor import anchor_base

    beam = anchor_base.AnchorBaseBeam.anchor_beam
    reference_present: list[list[int]] = []

    def beam_recording(*args, **kwargs):  # anchor-exp's rule as mapping indices, before it renames them
        found_rule = beam(*args, **kwargs)
        reference_present.append(list(found_rule["feature"]))
        return found_rule

    reference_anchors = []
    anchor_base.AnchorBaseBeam.anchor_beam = staticmethod(beam_recording)
    try:
        with stopwatch() as reference:
            for i, (x, label) in enumerate(zip(X, labels)):
                with numpy_global_seed(row_seed(1, i)):
                    reference_anchors.append(explainer.anchor_.explain_instance(
                        x, predict_label, threshold=ANCHOR_THRESHOLD, batch_size=100, beam_size=4,
                        desired_label=int(label), coverage_samples=COVERAGE_SAMPLES))
    finally:
        anchor_base.AnchorBaseBeam.anchor_beam = beam
    fresh, fresh_reference = [], []
    for i, (x, label, anchor, present) in enumerate(zip(X, labels, found, reference_present)):
        sample_fn, _ = explainer.anchor_.get_sample_fn(x, predict_label, desired_label=int(label))  # anchor-exp judges
        with numpy_global_seed(row_seed(99, i)):
            fresh.append(float(np.mean(sample_fn(list(anchor.present), FRESH_SAMPLES)[2])))
        with numpy_global_seed(row_seed(98, i)):
            fresh_reference.append(float(np.mean(sample_fn(present, FRESH_SAMPLES)[2])))
    project_coverage = float(np.mean([e.data["coverage"] for e in results]))
    reference_coverage = float(np.mean([a.coverage() for a in reference_anchors]))
    return {
        "anchor_speedup": reference[0] / project[0],
        "anchor_precision": float(np.mean(fresh)),
        "anchor_coverage_ratio": project_coverage / reference_coverage,
        "anchor_detail": {
            "threshold": ANCHOR_THRESHOLD,
            "seconds_per_row": {"project": project[0] / rows, "reference": reference[0] / rows},
            "reported_precision": {"project": float(np.mean([e.data["precision"] for e in results])),
                                   "reference": float(np.mean([a.precision() for a in reference_anchors]))},
            "fresh_precision": {"project": float(np.mean(fresh)), "reference": float(np.mean(fresh_reference)),
                                "project_min": float(np.min(fresh)), "reference_min": float(np.min(fresh_reference))},
            "coverage": {"project": project_coverage, "reference": reference_coverage},
            "rule_length": {"project": float(np.mean([len(e.data["rule"]) for e in results])),
                            "reference": float(np.mean([len(a.names()) for a in reference_anchors]))},
        },
    }


# ---------------------------------------------------------------- SHAP


def kernel_shap_section(table: Table, rows: int, *, svm_train_rows: int, nsamples: int = 500) -> dict[str, Any]:
    """RBF SVM (trained on a subsample: SVC's probability calibration is quadratic) against a 10-centre k-means background."""
    import shap

    from explanations.engine.kernel_shap import KernelShapBatch

    pick = np.sort(np.random.default_rng(0).choice(len(table.X_train), min(svm_train_rows, len(table.X_train)), replace=False))
    small = Table(table.name, table.space, table.X_train[pick], table.y_train[pick], table.X_test, table.y_test)
    predictor = registry_predictor(small, "svm")
    predict = predictor.predict_proba
    centres = shap.kmeans(small.X_train, 10)
    X = table.X_test[:rows]
    engine = KernelShapBatch(centres.data, predict, weights=centres.weights, seed=0)
    with stopwatch() as project:  # as ShapExplainer runs it: the rows spread over the engine's threads
        ours = np.stack(rows_in_threads(lambda i: list(engine.explain(X[i], predict(X[i]), nsamples)), len(X)))
    kernel = shap.KernelExplainer(predict, centres)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with stopwatch() as reference:
            theirs = []
            for i, x in enumerate(X):
                with numpy_global_seed(row_seed(1, i)):
                    theirs.append(np.asarray(kernel.shap_values(x[None, :], nsamples=nsamples, silent=True))[0])
        exact = []  # every coalition, no L1: Kernel SHAP's exact answer for this background
        for x in X:
            exact.append(np.asarray(kernel.shap_values(x[None, :], nsamples=2**20, l1_reg=False, silent=True))[0])
    theirs, exact = np.stack(theirs), np.stack(exact)
    return {
        "shap_kernel_speedup": reference[0] / project[0],
        "shap_max_abs_diff": {"project": float(np.abs(ours - exact).max()), "reference": float(np.abs(theirs - exact).max())},
        "shap_mean_abs_diff": {"project": float(np.abs(ours - exact).mean()), "reference": float(np.abs(theirs - exact).mean())},
        "shap_kernel_seconds_per_row": {"project": project[0] / rows, "reference": reference[0] / rows},
    }


def treeshap_section(table: Table, predictor: Predictor, rows: int) -> dict[str, Any]:
    import shap

    X = table.X_test[:rows]
    explainer = ShapExplainer(algorithm="tree").fit(background(table), predictor, table.space, seed=0)
    with stopwatch() as project:  # as a job runs it: batch after batch, each spread over the (reused) processes
        for batch in _batches(rows, batch_size()):
            explainer.explain(X[batch], batch)
    tree = shap.TreeExplainer(predictor.tree_model)
    with stopwatch() as reference:
        tree.shap_values(predictor.transform(X))
    return {
        "treeshap_speedup": reference[0] / project[0],
        "treeshap_rows_per_s": len(X) / project[0],
        "treeshap_rows": len(X),
    }


# ---------------------------------------------------------------- GPU


def gpu_section(table: Table) -> dict[str, Any]:
    """The MLP's predictions on one batch of LIME samples, on the GPU and on the CPU."""
    import torch

    if not torch.cuda.is_available():
        return {"gpu_speedup": None, "gpu_note": "no CUDA device in this process"}
    predictor = registry_predictor(table, "mlp", {"epochs": 5})
    explainer = LimeExplainer(num_samples=LIME_SAMPLES).fit(background(table), predictor, table.space, seed=0)
    rows = batch_size()
    drawn = [explainer.engine_.sample(x, LIME_SAMPLES, np.random.default_rng(i))[1].T for i, x in enumerate(table.X_test[:rows])]
    inputs = np.concatenate(drawn)
    model, estimator = predictor.predict_proba, _mlp_estimator(predictor)
    times = {}
    for device in ("cuda", "cpu"):
        estimator.module_.to(device)
        estimator.device_ = torch.device(device)
        model(inputs)  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        with stopwatch() as elapsed:
            for _ in range(5):
                model(inputs)
            if device == "cuda":
                torch.cuda.synchronize()
        times[device] = elapsed[0] / 5
    return {"gpu_speedup": times["cpu"] / times["cuda"], "gpu_seconds": times}


def _mlp_estimator(predictor: Predictor):
    closure = predictor.predict_proba.__closure__ or ()
    for cell in closure:
        pipeline = cell.cell_contents
        if hasattr(pipeline, "named_steps"):
            return pipeline.named_steps["model"]
    raise RuntimeError("the MLP predictor does not expose its pipeline")


def lime_tables(quick: bool) -> list[tuple[Table, Predictor, str]]:
    from bench.tables import adult_table, breast_cancer_table

    out = []
    adult = adult_table()
    if adult is not None:
        out.append((adult, forest_predictor(adult, min_samples_leaf=3), ""))
    cancer = breast_cancer_table()
    out.append((cancer, forest_predictor(cancer), "_bc"))
    return out
