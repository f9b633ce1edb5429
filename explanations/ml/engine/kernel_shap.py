"""Kernel SHAP (Lundberg & Lee, 2017) for many rows at once, with ``shap.KernelExplainer``'s coalitions.

Per row, shap's explainer builds ``nsamples`` coalitions (whole subset sizes enumerated while the budget
allows, the rest drawn in complementary pairs), evaluates the model on every coalition x background row,
and solves a weighted least squares with the efficiency constraint. Here:

- coalitions depend only on the seed and the number of varying features, so rows with the same count
  share one coalition matrix and one factorisation of the least-squares system (all classes at once);
- a background row that already equals the explained row on some features makes coalitions that differ
  only there identical inputs: each distinct input is evaluated once (exactly the same values);
- the model is called once per chunk of rows on all their distinct inputs stacked;
- for an RBF SVM the outputs on all coalitions come from per-feature kernel distances instead
  (``engine.rbf_svc``: the model's own probabilities to about 1e-13, without building the inputs);
- no L1 feature selection (shap's ``num_features(10)`` default), so every varying feature gets a value.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from math import comb
from typing import Any

import numpy as np

from explanations.ml.engine import stop_check

INPUT_CELLS_PER_CHUNK = 8_000_000


def coalitions(M: int, nsamples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """shap's coalition design for ``M`` varying features: masks (S, M) and kernel weights (S,)."""
    max_samples = 2**M - 2 if M <= 30 else 2**30
    nsamples = min(nsamples, max_samples)
    num_subset_sizes = int(np.ceil((M - 1) / 2.0))
    num_paired = int(np.floor((M - 1) / 2.0))
    weight_vector = np.array([(M - 1.0) / (i * (M - i)) for i in range(1, num_subset_sizes + 1)])
    weight_vector[:num_paired] *= 2
    weight_vector /= weight_vector.sum()
    masks: list[np.ndarray] = []
    weights: list[float] = []
    num_full, left = 0, nsamples
    remaining = weight_vector.copy()
    for size in range(1, num_subset_sizes + 1):
        nsubsets = comb(M, size) * (2 if size <= num_paired else 1)
        if left * remaining[size - 1] / nsubsets < 1.0 - 1e-8:
            break
        num_full += 1
        left -= nsubsets
        if remaining[size - 1] < 1.0:
            remaining /= 1 - remaining[size - 1]
        w = weight_vector[size - 1] / comb(M, size) / (2.0 if size <= num_paired else 1.0)
        for inds in itertools.combinations(range(M), size):
            mask = np.zeros(M, dtype=bool)
            mask[list(inds)] = True
            masks.append(mask)
            weights.append(w)
            if size <= num_paired:
                masks.append(~mask)
                weights.append(w)
    n_fixed = len(masks)
    if num_full != num_subset_sizes and left > 0:
        sampled = weight_vector.copy()
        sampled[:num_paired] /= 2
        sampled = sampled[num_full:] / sampled[num_full:].sum()
        sizes = rng.choice(len(sampled), 4 * left, p=sampled) + num_full + 1
        seen: dict[bytes, int] = {}
        for size in sizes:
            if left <= 0:
                break
            mask = np.zeros(M, dtype=bool)
            mask[rng.permutation(M)[:size]] = True
            key = mask.tobytes()
            paired = size <= num_paired
            if key not in seen:
                seen[key] = len(masks)
                masks.append(mask)
                weights.append(1.0)
                left -= 1
                if left > 0 and paired:
                    masks.append(~mask)
                    weights.append(1.0)
                    left -= 1
            else:
                weights[seen[key]] += 1.0
                if left > 0 and paired and seen[key] + 1 < len(weights):
                    weights[seen[key] + 1] += 1.0
        weight_left = weight_vector[num_full:].sum()
        tail = np.asarray(weights[n_fixed:])
        weights[n_fixed:] = list(tail * weight_left / tail.sum())
    return np.array(masks, dtype=bool).reshape(-1, M), np.asarray(weights, dtype=np.float64)


class KernelShapBatch:
    """Kernel SHAP values for many rows against one weighted background."""

    def __init__(self, background: np.ndarray, predict: Callable[[np.ndarray], np.ndarray], *,
                 weights: np.ndarray | None = None, seed: int = 0, coalitions: Any = None) -> None:
        """``coalitions``: an exact shortcut for the model's outputs on every coalition (``RbfSvcCoalitions``),
        used instead of building and predicting the inputs; None for plain model calls."""
        self.background_ = np.asarray(background, dtype=np.float64)
        m = len(self.background_)
        self.weights_ = np.full(m, 1.0 / m) if weights is None else np.asarray(weights, float) / np.sum(weights)
        self.predict_ = predict
        self.seed_ = int(seed)
        self.expected_value_ = self.weights_ @ predict(self.background_)
        self.coalitions_ = coalitions
        self.background_shares_ = coalitions.background_prepare(self.background_) if coalitions is not None else None
        self._designs: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def _design(self, M: int, nsamples: int) -> tuple[np.ndarray, np.ndarray]:
        key = (M, nsamples)
        if key not in self._designs:
            rng = np.random.default_rng([self.seed_ & 0xFFFFFFFF, M, nsamples])
            self._designs[key] = coalitions(M, nsamples, rng)
        return self._designs[key]

    def _inputs(self, x: np.ndarray, varying: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distinct model inputs for one row, and for each (coalition, background row) the input it uses."""
        bg = self.background_
        m, S = len(bg), len(masks)
        differs = bg[:, varying] != x[varying]  # (m, M): where masking a feature changes the input
        bits = 1 << np.arange(masks.shape[1], dtype=np.int64) if masks.shape[1] <= 62 else None
        inputs, index = [], np.empty((S, m), dtype=np.intp)
        offset = 0
        for k in range(m):
            if bits is not None:
                keys = (masks & differs[k]) @ bits
                _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
                chosen = masks[first]
            else:
                chosen, inverse = masks, np.arange(S)
            block = np.repeat(bg[k][None, :], len(chosen), axis=0)
            rows, cols = np.nonzero(chosen)
            block[rows, varying[cols]] = x[varying[cols]]
            inputs.append(block)
            index[:, k] = offset + inverse.ravel()
            offset += len(chosen)
        return np.concatenate(inputs), index

    def explain(self, X: np.ndarray, fx: np.ndarray, nsamples: int) -> np.ndarray:
        """SHAP values (rows, d, classes) of ``X`` whose model outputs are ``fx`` (rows, classes)."""
        X = np.asarray(X, dtype=np.float64)
        n, d = X.shape
        k_out = fx.shape[1]
        phi = np.zeros((n, d, k_out))
        varying = [np.flatnonzero((self.background_ != x).any(axis=0)) for x in X]
        ey: list[np.ndarray | None] = [None] * n
        pending: list[tuple[int, np.ndarray, np.ndarray]] = []
        cells = 0

        def flush() -> None:
            nonlocal pending, cells
            if not pending:
                return
            out = self.predict_(np.concatenate([inputs for _, inputs, _ in pending]))
            start = 0
            for i, inputs, index in pending:
                part = out[start : start + len(inputs)]
                ey[i] = np.einsum("smk,m->sk", part[index], self.weights_)
                start += len(inputs)
            pending, cells = [], 0

        for i, x in enumerate(X):
            stop_check()
            M = len(varying[i])
            if M < 2:
                continue
            masks, _ = self._design(M, nsamples)
            if self.coalitions_ is not None:
                out = self.coalitions_.coalition_proba(x, varying[i], masks, self.background_shares_)
                ey[i] = np.einsum("smk,m->sk", out, self.weights_)
                continue
            inputs, index = self._inputs(x, varying[i], masks)
            pending.append((i, inputs, index))
            cells += inputs.size
            if cells >= INPUT_CELLS_PER_CHUNK:
                flush()
        flush()

        for i in range(n):
            V = varying[i]
            total = fx[i] - self.expected_value_
            if len(V) == 1:
                phi[i, V[0]] = total
            if len(V) < 2:
                continue
            masks, w = self._design(len(V), nsamples)
            m = masks.astype(np.float64)
            # Efficiency constraint: the last feature takes what the others leave of fx - E[f].
            X_ = m[:, :-1] - m[:, -1:]
            y = (ey[i] - self.expected_value_) - m[:, -1:] * total
            WX = w[:, None] * X_
            try:
                beta = np.linalg.solve(X_.T @ WX, WX.T @ y)
            except np.linalg.LinAlgError:
                sw = np.sqrt(w)[:, None]
                beta = np.linalg.lstsq(sw * X_, sw * y, rcond=None)[0]
            phi[i, V[:-1]] = beta
            phi[i, V[-1]] = total - beta.sum(axis=0)
        return phi
