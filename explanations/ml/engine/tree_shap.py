"""Exact path-dependent TreeSHAP in O(nodes x K) per row instead of O(leaves x depth²), compiled with numba.

shap's ``TreeExplainer(model).shap_values`` (``feature_perturbation="tree_path_dependent"``) runs Lundberg's
recursive algorithm in C++: per row it extends and unwinds a path of up to ``depth`` elements at every node,
which on deep forests (a 100-tree Adult forest with ``min_samples_leaf=3`` reaches depth 50) costs
~0.14 s per row on these machines, and its C++ holds the GIL. Here the same values come from the leaf-wise
form of path-dependent SHAP (the one behind Linear TreeSHAP, Yu et al., 2022): for a leaf ``l`` whose path
tests the features ``F_l``, with ``z_j`` the product of the cover fractions of the edges on feature ``j`` and
``o_j`` whether the row follows all of them,

    phi_i += v_l (o_i - z_i) ∫_0^1 prod_{j in F_l, j != i} (z_j + t (o_j - z_j)) dt.

The integrand is a polynomial of degree < |F_l|, so Gauss-Legendre quadrature with ``ceil(U / 2)`` points (``U``
the most distinct features on any path of the tree) gives it exactly. One depth-first walk per row and tree
carries the product ``P(t_k)`` down the path (a repeated feature's factor is divided out and its merged factor
multiplied in) and sums ``S(t_k) = sum v_l P_l(t_k)`` back up; each edge then adds its feature's share, and takes
it back from the same feature's previous edge on the path for the leaves it now owns. Every node costs O(K).

The walk reads shap's own ``TreeEnsemble`` arrays (the ones its C++ reads), so thresholds, covers, leaf values
and missing-value directions are shap's; ``build`` returns None for anything this does not cover, and the
caller keeps shap. The kernel releases the GIL, so rows are split over threads.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from explanations.ml.engine import rows_in_threads, stop_check
from explanations.ml.engine.compiled import njit as _njit
from explanations.ml.engine.compiled import numba  # without numba the caller keeps shap's own C++

ROWS_PER_CHUNK = 512  # rows between two stop checks


@_njit
def _unique_depth(left, right, feature, n_features):
    """The most distinct features on any root-to-leaf path of each tree."""
    trees, nodes = left.shape
    out = np.zeros(trees, dtype=np.int64)
    node = np.zeros(nodes + 1, dtype=np.int64)
    state = np.zeros(nodes + 1, dtype=np.int64)
    count = np.zeros(n_features, dtype=np.int64)
    for t in range(trees):
        d, node[0], state[0], distinct = 0, 0, 0, 0
        while d >= 0:
            u = node[d]
            if left[t, u] < 0 or state[d] == 2:
                if left[t, u] < 0 and distinct > out[t]:
                    out[t] = distinct
                if d > 0:
                    f = feature[t, node[d - 1]]
                    count[f] -= 1
                    if count[f] == 0:
                        distinct -= 1
                d -= 1
                continue
            f = feature[t, u]
            if count[f] == 0:
                distinct += 1
            count[f] += 1
            node[d + 1] = left[t, u] if state[d] == 0 else right[t, u]
            state[d] += 1
            state[d + 1] = 0
            d += 1
    return out


@_njit
def _tree_shap_rows(X, left, right, default, feature, threshold, values, cover, points, gl_t, gl_w, phi):
    """Adds every row's path-dependent SHAP values into ``phi`` (rows, features, outputs)."""
    rows = X.shape[0]
    trees, nodes = left.shape
    outputs = values.shape[2]
    kmax = gl_t.shape[1]
    P = np.empty((nodes + 1, kmax))
    S = np.empty((nodes + 1, kmax, outputs))
    node = np.zeros(nodes + 1, dtype=np.int64)
    state = np.zeros(nodes + 1, dtype=np.int64)
    lvl_f = np.zeros(nodes + 1, dtype=np.int64)
    lvl_z = np.zeros(nodes + 1)
    lvl_o = np.zeros(nodes + 1)
    lvl_prev = np.zeros(nodes + 1, dtype=np.int64)
    last = np.full(X.shape[1], -1, dtype=np.int64)
    q = np.empty(kmax)
    for r in range(rows):
        for t in range(trees):
            K = points[t]
            tk = gl_t[K - 1]
            wk = gl_w[K - 1]
            d = 0
            node[0] = 0
            state[0] = 0
            for k in range(K):
                P[0, k] = 1.0
            while True:
                u = node[d]
                if state[d] == 0 and left[t, u] < 0:  # a leaf: its value times the path's product
                    for k in range(K):
                        for o in range(outputs):
                            S[d, k, o] = values[t, u, o] * P[d, k]
                    state[d] = 2
                if state[d] == 2:  # done below this node: hand its sum to the edge above
                    if d == 0:
                        break
                    f, z, o_, a = lvl_f[d], lvl_z[d], lvl_o[d], lvl_prev[d]
                    # w_k (o - z) / g(t_k) for this edge, minus the same for the feature's previous edge, whose
                    # leaves below here now are this edge's.
                    for k in range(K):
                        q[k] = wk[k] * (o_ - z) / (z + tk[k] * (o_ - z))
                    if a >= 0:
                        za, oa = lvl_z[a], lvl_o[a]
                        for k in range(K):
                            q[k] -= wk[k] * (oa - za) / (za + tk[k] * (oa - za))
                    for o in range(outputs):
                        share = 0.0
                        for k in range(K):
                            share += q[k] * S[d, k, o]
                            S[d - 1, k, o] += S[d, k, o]
                        phi[r, f, o] += share
                    last[f] = a
                    d -= 1
                    continue
                if state[d] == 0:
                    for k in range(K):
                        for o in range(outputs):
                            S[d, k, o] = 0.0
                    child = left[t, u]
                else:
                    child = right[t, u]
                state[d] += 1
                f = feature[t, u]
                value = X[r, f]
                if np.isnan(value):
                    hot = default[t, u]
                else:
                    hot = left[t, u] if value <= threshold[t, u] else right[t, u]
                one = 1.0 if child == hot else 0.0
                ratio = cover[t, child] / cover[t, u]
                a = last[f]
                if a >= 0:
                    z, o_ = lvl_z[a] * ratio, lvl_o[a] * one
                    za, oa = lvl_z[a], lvl_o[a]
                    for k in range(K):
                        P[d + 1, k] = P[d, k] * (z + tk[k] * (o_ - z)) / (za + tk[k] * (oa - za))
                else:
                    z, o_ = ratio, one
                    for k in range(K):
                        P[d + 1, k] = P[d, k] * (z + tk[k] * (o_ - z))
                lvl_f[d + 1], lvl_z[d + 1], lvl_o[d + 1], lvl_prev[d + 1] = f, z, o_, a
                last[f] = d + 1
                node[d + 1] = child
                state[d + 1] = 0
                d += 1


class PathDependentTreeShap:
    """``TreeExplainer.shap_values`` for tree-path-dependent explainers, from shap's own tree arrays.

    ``values(X)`` returns what shap returns: (rows, features, outputs), or (rows, features) for one output.
    """

    def __init__(self, model: Any) -> None:
        self.left_ = np.ascontiguousarray(model.children_left, dtype=np.int64)
        self.right_ = np.ascontiguousarray(model.children_right, dtype=np.int64)
        self.default_ = np.ascontiguousarray(model.children_default, dtype=np.int64)
        self.feature_ = np.ascontiguousarray(np.where(self.left_ < 0, 0, model.features), dtype=np.int64)
        self.threshold_ = np.ascontiguousarray(model.thresholds, dtype=np.float64)
        self.values_ = np.ascontiguousarray(model.values, dtype=np.float64)
        self.cover_ = np.ascontiguousarray(model.node_sample_weight, dtype=np.float64)
        self.n_features_ = int(self.feature_.max()) + 1
        unique = _unique_depth(self.left_, self.right_, self.feature_, self.n_features_)
        self.points_ = np.maximum(1, (unique + 1) // 2).astype(np.int64)
        kmax = int(self.points_.max())
        self.gl_t_, self.gl_w_ = np.zeros((kmax, kmax)), np.zeros((kmax, kmax))
        for k in range(1, kmax + 1):  # Gauss-Legendre on [0, 1]: exact for polynomials of degree < 2k
            t, w = np.polynomial.legendre.leggauss(k)
            self.gl_t_[k - 1, :k], self.gl_w_[k - 1, :k] = (t + 1) / 2, w / 2
        self.single_output_ = self.values_.shape[2] == 1
        # Rows are compared with thresholds in the trees' own precision (float32 for scikit-learn), as shap and
        # the model itself compare them: 57.0 against a threshold of 57.0 stored from float32 goes the same way.
        self.input_dtype_ = np.dtype(getattr(model, "input_dtype", np.float64))

    @classmethod
    def build(cls, explainer: Any) -> PathDependentTreeShap | None:
        """The kernel for a ``shap.TreeExplainer``, or None where it would not give shap's exact answer."""
        model = getattr(explainer, "model", None)
        if numba is None or model is None or getattr(explainer, "feature_perturbation", "") != "tree_path_dependent":
            return None
        if getattr(model, "model_output", "") != "raw" or getattr(model, "model_type", "") != "internal":
            return None  # xgboost/lightgbm/catboost answer through their own libraries; other outputs transform
        if getattr(model, "tree_limit", None) not in (None, len(model.children_left)):
            return None
        types = getattr(model, "threshold_types", None)
        if types is not None and np.any(np.asarray(types) != 0):
            return None  # categorical splits: shap's C++ only
        internal = np.asarray(model.children_left) >= 0
        cover = np.asarray(model.node_sample_weight, dtype=np.float64)
        if np.any(cover[internal] <= 0) or not np.all(np.isfinite(cover)):
            return None
        try:
            return cls(model)
        except Exception:  # an ensemble laid out in a way this does not read: shap answers
            return None

    def tree(self, index: int) -> PathDependentTreeShap:
        """The same kernel on one tree of the ensemble (its values summed over trees give the ensemble's)."""
        one = copy.copy(self)
        for name in ("left_", "right_", "default_", "feature_", "threshold_", "values_", "cover_", "points_"):
            setattr(one, name, np.ascontiguousarray(getattr(self, name)[index : index + 1]))
        return one

    def values(self, X: np.ndarray, *, threads: int | None = None) -> np.ndarray:
        X = np.ascontiguousarray(np.asarray(X, dtype=self.input_dtype_), dtype=np.float64)
        if X.shape[1] < self.n_features_:
            raise ValueError(f"The trees test feature {self.n_features_ - 1} but rows have {X.shape[1]} columns.")
        phi = np.zeros((len(X), X.shape[1], self.values_.shape[2]))

        def work(rows: np.ndarray) -> list[None]:
            if len(rows):
                part = np.zeros((len(rows), X.shape[1], self.values_.shape[2]))
                _tree_shap_rows(X[rows], self.left_, self.right_, self.default_, self.feature_, self.threshold_,
                                self.values_, self.cover_, self.points_, self.gl_t_, self.gl_w_, part)
                phi[rows] = part
            return []

        for start in range(0, len(X), ROWS_PER_CHUNK):  # chunk by chunk, so a cancelled job stops between them
            stop_check()
            stop = min(start + ROWS_PER_CHUNK, len(X))
            rows_in_threads(lambda rows, start=start: work(rows + start), stop - start, threads=threads)
        return phi[:, :, 0] if self.single_output_ else phi
