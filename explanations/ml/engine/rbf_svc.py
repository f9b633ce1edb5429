"""An RBF support vector classifier's probabilities on every Kernel SHAP coalition, from per-feature distances.

Kernel SHAP asks the model about inputs that take each feature either from the explained row ``x`` or from a
background row ``b``. For an RBF kernel the squared distance to a support vector is a sum over features, so
with ``dx[v, j]`` and ``db[v, j]`` (feature ``j``'s share of the distance from support vector ``v`` to ``x``
and to ``b``) every coalition's distance is one matrix product::

    dist(mask) = sum_j db[:, j] + mask @ (dx - db).T

and the kernel values, the one-vs-one decision values, libsvm's Platt sigmoids and its pairwise coupling
(``multiclass_probability``, used by scikit-learn for two classes too) follow in numpy. The answer is the
model's own ``predict_proba`` to about 1e-13; ``RbfSvcCoalitions.build`` checks that on real inputs and
returns ``None`` (plain model calls) for anything else: another kernel, no probabilities, or a preprocessing
step that does not act on each column separately.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

MIN_PROB = 1e-7  # libsvm's clamp of each pairwise probability
AGREEMENT = 1e-9  # the largest difference from predict_proba that ``build`` accepts
SHARE_CELLS_MAX = 40_000_000  # background rows x support vectors x features kept in memory (320 MB)


def pairwise_coupling(r: np.ndarray) -> np.ndarray:
    """libsvm's ``multiclass_probability`` for many samples at once: ``r`` (n, k, k) -> p (n, k).

    Every sample goes through the same operations in the same order as the C code, and stops iterating
    when the C code would, so the result is the same to rounding.
    """
    n, k, _ = r.shape
    Q = np.zeros((n, k, k))
    for t in range(k):
        for j in range(t):
            Q[:, t, t] += r[:, j, t] * r[:, j, t]
            Q[:, t, j] = Q[:, j, t]
        for j in range(t + 1, k):
            Q[:, t, t] += r[:, j, t] * r[:, j, t]
            Q[:, t, j] = -r[:, j, t] * r[:, t, j]
    p = np.full((n, k), 1.0 / k)
    active = np.arange(n)
    eps = 0.005 / k
    for _ in range(max(100, k)):
        if not len(active):
            break
        Qa, pa = Q[active], p[active]
        Qp = np.zeros((len(active), k))
        for t in range(k):
            for j in range(k):
                Qp[:, t] = Qp[:, t] + Qa[:, t, j] * pa[:, j]
        pQp = np.zeros(len(active))
        for t in range(k):
            pQp = pQp + pa[:, t] * Qp[:, t]
        max_error = np.zeros(len(active))
        for t in range(k):
            max_error = np.maximum(max_error, np.abs(Qp[:, t] - pQp))
        going = max_error >= eps
        active, Qa, pa, Qp, pQp = active[going], Qa[going], pa[going], Qp[going], pQp[going]
        for t in range(k):
            diff = (-Qp[:, t] + pQp) / Qa[:, t, t]
            pa[:, t] += diff
            pQp = (pQp + diff * (diff * Qa[:, t, t] + 2 * Qp[:, t])) / (1 + diff) / (1 + diff)
            for j in range(k):
                Qp[:, j] = (Qp[:, j] + diff * Qa[:, t, j]) / (1 + diff)
                pa[:, j] /= 1 + diff
        p[active] = pa
    return p


class RbfSvcCoalitions:
    """Probabilities of a fitted ``SVC(kernel="rbf", probability=True)`` behind a per-column ``transform``."""

    def __init__(self, svc, transform: Callable[[np.ndarray], np.ndarray], groups: Sequence[Sequence[int]],
                 n_classes: int) -> None:
        self.transform_ = transform
        self.sv_ = np.asarray(svc.support_vectors_, dtype=np.float64)
        self.gamma_ = float(svc._gamma)
        self.groups_ = [np.asarray(g, dtype=np.intp) for g in groups]
        self.classes_ = np.asarray(svc.classes_, dtype=int)
        self.n_classes_ = n_classes
        k = len(self.classes_)
        starts = np.r_[0, np.cumsum(svc.n_support_)]
        dual, rho = np.asarray(svc._dual_coef_), -np.asarray(svc._intercept_)
        # One column per class pair (i < j) in libsvm's order: decision = K @ W[:, p] - rho[p].
        W = np.zeros((len(self.sv_), k * (k - 1) // 2))
        pair = 0
        for i in range(k):
            for j in range(i + 1, k):
                W[starts[i] : starts[i + 1], pair] = dual[j - 1, starts[i] : starts[i + 1]]
                W[starts[j] : starts[j + 1], pair] = dual[i, starts[j] : starts[j + 1]]
                pair += 1
        self.W_, self.rho_ = W, rho
        self.prob_a_, self.prob_b_ = np.asarray(svc._probA), np.asarray(svc._probB)

    @classmethod
    def build(cls, pipeline, groups: Sequence[Sequence[int]], n_classes: int,
              background: np.ndarray) -> RbfSvcCoalitions | None:
        """The evaluator for ``pipeline`` (steps ``prep`` and ``model``) and ``background``, or None unless it
        reproduces ``predict_proba`` on coalitions of the background rows and fits in memory."""
        from sklearn.svm import SVC

        svc = pipeline.named_steps.get("model")
        if not isinstance(svc, SVC) or svc.kernel != "rbf" or not getattr(svc, "probability", False):
            return None
        background = np.asarray(background, dtype=np.float64)
        if len(getattr(svc, "_probA", ())) == 0 or len(background) < 2:
            return None
        if len(background) * len(svc.support_vectors_) * len(groups) > SHARE_CELLS_MAX:
            return None
        try:
            evaluator = cls(svc, pipeline.named_steps["prep"].transform, groups, n_classes)
            x, background = background[0], background[1:9]
            varying = np.arange(len(evaluator.groups_))
            masks = np.random.default_rng(0).random((6, len(varying))) < 0.5
            fast = evaluator.coalition_proba(x, varying, masks, evaluator.background_prepare(background))
            inputs = np.where(masks[:, None, :], x[None, None, :], background[None, :, :]).reshape(-1, x.shape[0])
            full = np.zeros((len(inputs), n_classes))
            full[:, evaluator.classes_] = pipeline.predict_proba(inputs)
            if np.max(np.abs(fast.reshape(-1, n_classes) - full)) > AGREEMENT:
                return None
        except Exception:  # noqa: BLE001 - any surprise means plain model calls, never a wrong answer
            return None
        return evaluator

    def _shares(self, transformed: np.ndarray) -> np.ndarray:
        """Each feature's part of the squared distance to every support vector: (n, n_sv, d)."""
        out = np.empty((len(transformed), len(self.sv_), len(self.groups_)))
        for j, group in enumerate(self.groups_):
            diff = self.sv_[None, :, group] - transformed[:, None, group]
            out[:, :, j] = np.einsum("nvg,nvg->nv", diff, diff)
        return out

    def background_prepare(self, background: np.ndarray) -> np.ndarray:
        """What ``coalition_proba`` needs of the background rows (computed once per explainer)."""
        return self._shares(np.asarray(self.transform_(np.asarray(background, dtype=np.float64)), dtype=np.float64))

    def proba(self, K: np.ndarray) -> np.ndarray:
        """Probabilities over the whole class space from kernel values ``K`` (n, n_sv)."""
        k = len(self.classes_)
        f = (K @ self.W_ - self.rho_) * self.prob_a_ + self.prob_b_
        with np.errstate(over="ignore"):
            s = np.where(f >= 0, np.exp(-np.abs(f)) / (1 + np.exp(-np.abs(f))), 1 / (1 + np.exp(f)))
        s = np.minimum(np.maximum(s, MIN_PROB), 1 - MIN_PROB)
        r = np.zeros((len(K), k, k))
        pair = 0
        for i in range(k):
            for j in range(i + 1, k):
                r[:, i, j], r[:, j, i] = s[:, pair], 1 - s[:, pair]
                pair += 1
        full = np.zeros((len(K), self.n_classes_))
        full[:, self.classes_] = pairwise_coupling(r)
        return full

    def coalition_proba(self, x: np.ndarray, varying: np.ndarray, masks: np.ndarray,
                        background_shares: np.ndarray) -> np.ndarray:
        """(S, m, n_classes): the model's probabilities where each mask row takes ``x`` on the ``varying``
        features it sets and background row ``m`` everywhere else."""
        dx = self._shares(np.asarray(self.transform_(np.asarray(x, dtype=np.float64)[None, :]), dtype=np.float64))[0]
        masks_f = masks.astype(np.float64)
        out = np.empty((len(masks), len(background_shares), self.n_classes_))
        for b, db in enumerate(background_shares):
            dist = db.sum(axis=1)[None, :] + masks_f @ (dx[:, varying] - db[:, varying]).T
            out[:, b] = self.proba(np.exp(-self.gamma_ * dist))
        return out
