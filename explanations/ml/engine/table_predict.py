"""The fitted table pipelines' ``predict_proba`` without scikit-learn's cost per call, same numbers to the bit.

The explainers ask a model about their samples hundreds of times per row: Anchors on a 200-tree forest makes
about 400 calls for a hard Adult row, and each call through the pipeline paid ~11 ms in ``ColumnTransformer``
(validation, pandas output machinery, one ``SimpleImputer`` and ``OneHotEncoder`` call each) and ~80 ms in the
forest, whose ``predict_proba`` walks its trees one Python-level call per tree (joblib's dispatch, a lock, an
``out +=``). Here:

* ``TablePrep`` does the ``prep`` step of ``explanations.ml.pipelines.table_pipeline`` with plain numpy: the
  one-hot columns over the fixed category lists (a code that is not one of them, NaN included, sets none, as
  ``handle_unknown="ignore"``), then the numeric columns with NaN replaced by the imputer's medians and, where
  the pipeline scales, ``(x - mean_) / scale_``: the same operations in the same order as scikit-learn's, so the
  same floats.
* ``ForestPredict`` walks every tree of a fitted ``RandomForestClassifier`` or ``DecisionTreeClassifier`` in one
  compiled loop over the trees' own arrays (thresholds, children, missing-value directions). Rows are cast to
  float32 as scikit-learn's trees do, each leaf's class fractions are normalised by the same division, and the
  trees are summed in their order and divided by their number, as ``ForestClassifier.predict_proba`` does.
  The loop holds no GIL, so a call of thousands of rows (an Anchors round, LIME's samples) is split over the
  engine's threads by rows, which changes no row's sum.
* ``ForestPredict.labels`` answers only the class (what Anchors, the counterfactual search and the trust reruns
  ask for): a row stops walking trees once no remaining tree can change its vote. Each tree adds at most 1 to a
  class (its leaf's fractions sum to 1), so a lead larger than the number of trees left decides the argmax; on
  the samples Anchors draws around Adult rows a 200-tree forest then walks about two thirds of its trees per
  sample. Rows not decided early are summed over every tree in order, as ``predict_proba`` sums them.

``table_predictor`` returns a ``TablePredict`` for a pipeline it covers and None for anything else (the caller
keeps the pipeline's own methods); ``tests/explanations/test_table_predict.py`` holds it to scikit-learn's answers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from explanations.ml.engine import engine_threads
from explanations.ml.engine.compiled import njit as _njit
from explanations.ml.engine.compiled import numba

CHUNK_ROWS = 4096  # rows per compiled call: a bounded scratch array, whatever the call's size
THREAD_ROWS = 1024  # a call with at least this many rows per thread is split over the engine's threads
LABEL_BLOCK = 4  # trees walked between two checks of which rows' votes are decided (4-16 measured alike)


class TablePrep:
    """``ColumnTransformer([("categorical", OneHotEncoder), ("numeric", [SimpleImputer, StandardScaler?])])``."""

    def __init__(self, prep: Any) -> None:
        self.n_features = int(prep.n_features_in_)
        self.categorical: list[tuple[int, int, np.ndarray]] = []  # (column, first output column, categories)
        self.numeric_columns = np.zeros(0, dtype=np.int64)
        self.fill = self.mean = self.scale = None
        start = 0
        for name, transformer, columns in prep.transformers_:
            if name == "remainder":
                continue
            if name == "categorical":
                for column, categories in zip(columns, transformer.categories_, strict=True):
                    self.categorical.append((int(column), start, np.asarray(categories, dtype=np.float64)))
                    start += len(categories)
            else:
                self.numeric_start = start
                self.numeric_columns = np.asarray(columns, dtype=np.int64)
                self.fill = np.asarray(transformer.named_steps["impute"].statistics_, dtype=np.float64)
                if "scale" in transformer.named_steps:
                    scaler = transformer.named_steps["scale"]
                    self.mean, self.scale = scaler.mean_, scaler.scale_
                start += len(columns)
        self.width = start

    @classmethod
    def covers(cls, prep: Any) -> bool:
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        if type(prep) is not ColumnTransformer or getattr(prep, "sparse_output_", False):
            return False
        for name, transformer, _ in prep.transformers_:
            if name == "remainder":
                if transformer != "drop":
                    return False
            elif name == "categorical":
                if (type(transformer) is not OneHotEncoder or transformer.handle_unknown != "ignore"
                        or transformer.drop_idx_ is not None or getattr(transformer, "_infrequent_enabled", False)):
                    return False
                if any(np.asarray(c).dtype.kind != "f" for c in transformer.categories_):
                    return False
            elif name == "numeric":
                steps = getattr(transformer, "named_steps", {})
                impute, scale = steps.get("impute"), steps.get("scale")
                if (len(steps) != (2 if scale is not None else 1) or type(impute) is not SimpleImputer
                        or impute.strategy != "median" or impute.add_indicator
                        or not np.isnan(impute.missing_values)):
                    return False
                if scale is not None and (type(scale) is not StandardScaler or not scale.with_mean or not scale.with_std):
                    return False
            else:
                return False
        return True

    def __call__(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X has {X.shape[-1] if X.ndim else 0} features, but the model expects {self.n_features}.")
        out = np.zeros((X.shape[0], self.width), dtype=np.float64)
        rows = np.arange(X.shape[0])
        for column, start, categories in self.categorical:
            values = X[:, column]
            index = np.searchsorted(categories, values)
            found = index < len(categories)
            found[found] = categories[index[found]] == values[found]  # NaN and codes not listed set no column
            out[rows[found], start + index[found]] = 1.0
        if len(self.numeric_columns):
            numbers = X[:, self.numeric_columns]
            if not np.isfinite(numbers[~np.isnan(numbers)]).all():
                raise ValueError("Input X contains infinity or a value too large for dtype('float64').")
            numbers = np.where(np.isnan(numbers), self.fill, numbers)
            if self.scale is not None:
                numbers -= self.mean
                numbers /= self.scale
            out[:, self.numeric_start:self.numeric_start + len(self.numeric_columns)] = numbers
        return out


NODE = np.dtype([("left", np.int32), ("right", np.int32), ("feature", np.int32), ("nan_left", np.int32),
                 ("threshold", np.float64)], align=True)  # one node in 24 bytes: one cache line holds its test


@_njit
def _leaf(X, i, node, nodes):
    """The leaf row ``i`` of ``X`` reaches from ``node``: left where ``x <= threshold`` (or missing, where the
    split learnt to send missing values left), else right, as scikit-learn's trees decide."""
    while nodes[node].left >= 0:
        x = X[i, nodes[node].feature]
        if x <= nodes[node].threshold:
            node = nodes[node].left
        elif np.isnan(x) and nodes[node].nan_left != 0:
            node = nodes[node].left
        else:
            node = nodes[node].right
    return node


@_njit
def _forest_sum(X, roots, nodes, values, out):
    """Adds each tree's leaf values for every row of ``X`` (float32) into ``out``, tree by tree in order."""
    for t in range(roots.shape[0]):
        for i in range(X.shape[0]):
            node = _leaf(X, i, roots[t], nodes)
            for k in range(values.shape[1]):
                out[i, k] += values[node, k]


@_njit
def _top_two(acc, i):
    """The first class with the largest sum in row ``i`` (numpy's argmax), and the largest sum of the others."""
    best = 0
    for k in range(1, acc.shape[1]):
        if acc[i, k] > acc[i, best]:
            best = k
    second = -np.inf
    for k in range(acc.shape[1]):
        if k != best and acc[i, k] > second:
            second = acc[i, k]
    return best, second


@_njit
def _forest_labels(X, roots, nodes, values, block, acc, out):
    """``argmax`` of the trees' summed leaf values for each row, a row dropping out once its vote is decided.

    ``acc`` (rows, classes) starts at zero; rows summed to the last tree hold the same sums as ``_forest_sum``'s.
    Returns how many (row, tree) walks it made.
    """
    n_trees, n_classes = roots.shape[0], values.shape[1]
    active = np.arange(X.shape[0])
    n_active, t = X.shape[0], 0
    margin = 1e-9 * n_trees  # far above the rounding of a sum of n_trees fractions
    walks = 0
    while t < n_trees and n_active > 0:
        end = min(t + block, n_trees)
        walks += (end - t) * n_active
        for tree in range(t, end):
            for a in range(n_active):
                i = active[a]
                node = _leaf(X, i, roots[tree], nodes)
                for k in range(n_classes):
                    acc[i, k] += values[node, k]
        t = end
        left = n_trees - t
        kept = 0
        for a in range(n_active):
            i = active[a]
            best, second = _top_two(acc, i)
            if acc[i, best] - second > left + margin:
                out[i] = best
            else:
                active[kept] = i
                kept += 1
        n_active = kept
    for a in range(n_active):
        out[active[a]] = _top_two(acc, active[a])[0]
    return walks


class ForestPredict:
    """Class probabilities of a fitted forest or single tree from the trees' arrays, concatenated."""

    def __init__(self, estimator: Any) -> None:
        trees = list(getattr(estimator, "estimators_", [estimator]))
        self.n_trees = len(trees) if hasattr(estimator, "estimators_") else 0  # 0: a single tree, no average
        self.n_features = int(estimator.n_features_in_)
        self.n_classes = int(estimator.n_classes_)
        roots, nodes, values = [], [], []
        offset = 0
        for tree in trees:
            t = tree.tree_
            roots.append(offset)
            is_leaf = t.children_left < 0
            part = np.zeros(t.node_count, dtype=NODE)
            part["left"] = np.where(is_leaf, -1, t.children_left + offset)
            part["right"] = np.where(is_leaf, -1, t.children_right + offset)
            part["feature"] = np.where(is_leaf, 0, t.feature)
            part["nan_left"] = getattr(t, "missing_go_to_left", np.ones(t.node_count))
            part["threshold"] = t.threshold
            nodes.append(part)
            proba = t.value[:, 0, : self.n_classes].copy()  # DecisionTreeClassifier.predict_proba, node by node
            normalizer = proba.sum(axis=1)[:, np.newaxis]
            normalizer[normalizer == 0.0] = 1.0
            proba /= normalizer
            values.append(proba)
            offset += t.node_count
        self.roots = np.asarray(roots, dtype=np.int64)
        self.nodes = np.concatenate(nodes)
        self.values = np.ascontiguousarray(np.concatenate(values), dtype=np.float64)

    @classmethod
    def covers(cls, estimator: Any) -> bool:
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.tree import DecisionTreeClassifier

        if type(estimator) not in (RandomForestClassifier, DecisionTreeClassifier) or numba is None:
            return False
        if getattr(estimator, "n_outputs_", 1) != 1:
            return False
        trees = getattr(estimator, "estimators_", [estimator])
        return (all(type(tree) is DecisionTreeClassifier for tree in trees)
                and sum(tree.tree_.node_count for tree in trees) < 2**31)  # node numbers are 32-bit

    def __call__(self, X: np.ndarray) -> np.ndarray:
        X32 = self._rows(X)
        out = np.zeros((X32.shape[0], self.n_classes), dtype=np.float64)
        self._spread(self._sum, X32, out)
        if self.n_trees:
            out /= self.n_trees
        return out

    def labels(self, X: np.ndarray) -> np.ndarray:
        """``argmax`` of ``self(X)``, row by row: indices into the estimator's ``classes_``.

        ``walks_`` then says how many (row, tree) walks the call made (``len(X) * n_trees`` without stopping early).
        """
        X32 = self._rows(X)
        out = np.zeros(X32.shape[0], dtype=np.int64)
        if not self.n_trees:  # one tree: its leaf decides, there is nothing to stop early
            self.walks_ = X32.shape[0]
            return np.argmax(self(X32), axis=1)
        walks: list[int] = []
        self._spread(lambda part, into: walks.append(self._labels(part, into)), X32, out)
        self.walks_ = sum(walks)
        return out

    def _rows(self, X: np.ndarray) -> np.ndarray:
        X32 = np.ascontiguousarray(X, dtype=np.float32)  # as BaseDecisionTree._validate_X_predict
        if X32.ndim != 2 or X32.shape[1] != self.n_features:
            raise ValueError(f"X has {X32.shape[-1] if X32.ndim else 0} features, but the model expects {self.n_features}.")
        return X32

    @staticmethod
    def _spread(work: Callable[[np.ndarray, np.ndarray], None], X32: np.ndarray, out: np.ndarray) -> None:
        threads = min(engine_threads(), X32.shape[0] // THREAD_ROWS)
        if threads > 1 and threading.current_thread() is threading.main_thread():
            # The loop holds no GIL: a big call's rows are split over threads (each row summed as alone, so the
            # same bits), unless the caller already spreads its own work over threads (Kernel SHAP, TreeSHAP).
            bounds = np.linspace(0, X32.shape[0], threads + 1).astype(int)
            with ThreadPoolExecutor(threads, thread_name_prefix="forest") as pool:
                list(pool.map(lambda k: work(X32[bounds[k]:bounds[k + 1]], out[bounds[k]:bounds[k + 1]]), range(threads)))
        else:
            work(X32, out)

    def _sum(self, X32: np.ndarray, out: np.ndarray) -> None:
        for start in range(0, X32.shape[0], CHUNK_ROWS):
            part = slice(start, start + CHUNK_ROWS)
            _forest_sum(X32[part], self.roots, self.nodes, self.values, out[part])

    def _labels(self, X32: np.ndarray, out: np.ndarray) -> int:
        walks = 0
        for start in range(0, X32.shape[0], CHUNK_ROWS):
            part = slice(start, start + CHUNK_ROWS)
            acc = np.zeros((len(X32[part]), self.n_classes), dtype=np.float64)
            walks += _forest_labels(X32[part], self.roots, self.nodes, self.values, LABEL_BLOCK, acc, out[part])
        return walks


@dataclass(frozen=True)
class TablePredict:
    """A covered pipeline's calls: ``transform`` (its ``prep``), ``predict_proba`` in the order of ``classes_``, as
    the pipeline's own, and ``predict_label`` (indices into ``classes_``) where it is faster than argmax of that."""

    transform: Callable[[np.ndarray], np.ndarray]
    predict_proba: Callable[[np.ndarray], np.ndarray]
    predict_label: Callable[[np.ndarray], np.ndarray] | None = None


def table_predictor(model: Any) -> TablePredict | None:
    """The compiled calls of a fitted ``prep`` + ``model`` pipeline this module covers, else None."""
    steps = getattr(model, "named_steps", None)
    if not steps or list(steps) != ["prep", "model"] or not TablePrep.covers(steps["prep"]):
        return None
    prep = TablePrep(steps["prep"])
    estimator = steps["model"]
    if ForestPredict.covers(estimator) and estimator.n_features_in_ == prep.width:
        forest = ForestPredict(estimator)
        return TablePredict(prep, lambda X: forest(prep(X)), lambda X: forest.labels(prep(X)))
    return TablePredict(prep, lambda X: estimator.predict_proba(prep(X)))
