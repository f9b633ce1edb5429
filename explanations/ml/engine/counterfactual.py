"""Diverse counterfactuals for many rows at once (no Django here).

A counterfactual of a row is a nearby row the model puts in another, desired class. The search is DiCE's
model-agnostic "random" method (Mothilal et al., 2020: random candidates, post-hoc sparsity, a diverse pick),
computed for a batch of rows with one model call per round instead of many small calls per row:

1. candidates: each changes a few of the features that may change (most change one to three) to the values of
   a *donor*, a training row the model already puts in the desired class; a numeric value moves all the way to
   the donor's or part of the way, inside the feature's bounds; a categorical one only takes codes seen in the
   training data. A row none of whose candidates reach the class tries candidates that take every free feature
   of a donor;
2. sparsity: the closest valid candidates give back, one pass at a time, the change that costs most while the
   model still says the desired class, then halve what numeric changes remain where that stays valid;
3. diversity: ``k`` are picked greedily, each the furthest from those already picked, minus half its distance
   from the row (DiCE's default weights of proximity and diversity).

Distances are in units of each feature's spread (a category swap counts 1), the metrics'
(``counterfactual_metrics``). Every counterfactual returned was predicted in the desired class by the model.
``python -m bench`` compares it with DiCE's own random method on the same model and rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from explanations.ml.engine import stop_check

PredictProba = Callable[[np.ndarray], np.ndarray]

MODEL_CHUNK_ROWS = 50_000  # rows per model call
SPARSE_POOL = 4  # candidates per counterfactual asked for that go through the sparsity passes
HALVING_PASSES = 3
PROXIMITY_WEIGHT = 0.5  # against 1.0 for diversity, as DiCE weighs them by default
SPARSITY_WEIGHT = 2.0  # a feature changed costs as much as two spreads of change


@dataclass
class CounterfactualBox:
    """Where counterfactuals may go: per feature its spread, bounds and whether it may change at all."""

    scales: np.ndarray  # (d,) a numeric feature's spread (median absolute deviation, else standard deviation); 1 for categories
    low: np.ndarray  # (d,) bounds of numeric features (-inf/inf where open)
    high: np.ndarray
    mutable: np.ndarray  # (d,) bool
    categorical: np.ndarray  # (d,) bool
    whole: np.ndarray  # (d,) bool: numeric features whose training values are whole numbers stay whole
    allowed: dict[int, np.ndarray]  # categorical feature -> codes it may take (seen in training)

    def changes(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """(n, d) each feature's change from ``x`` in units of its spread (a category swap is 1, no change 0)."""
        rows = np.atleast_2d(rows)
        diff = np.abs(rows - x[None, :])
        return np.where(self.categorical[None, :], (diff > 0.5).astype(np.float64), diff / self.scales[None, :])

    def distance(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return self.changes(x, rows).sum(axis=1)


def box_build(X_train: np.ndarray, categorical: Sequence[int], mutable: np.ndarray, *,
              bounds: dict[int, tuple[float | None, float | None]] | None = None,
              allowed: dict[int, np.ndarray] | None = None) -> CounterfactualBox:
    """Spreads and bounds from the training rows; ``bounds`` narrows (or widens) a numeric feature's observed range."""
    X_train = np.asarray(X_train, dtype=np.float64)
    d = X_train.shape[1]
    is_cat = np.zeros(d, dtype=bool)
    is_cat[list(categorical)] = True
    median = np.median(X_train, axis=0)
    mad = np.median(np.abs(X_train - median), axis=0)
    std = X_train.std(axis=0)
    scales = np.where(mad > 0, mad, np.where(std > 0, std, 1.0))
    scales[is_cat] = 1.0
    low, high = X_train.min(axis=0), X_train.max(axis=0)
    for j, (lo, hi) in (bounds or {}).items():
        low[j] = low[j] if lo is None else lo
        high[j] = high[j] if hi is None else hi
    whole = ~is_cat & np.all(X_train == np.round(X_train), axis=0)
    allowed = dict(allowed) if allowed is not None else {j: np.unique(X_train[:, j]) for j in categorical}
    return CounterfactualBox(scales, low, high, np.asarray(mutable, dtype=bool), is_cat, whole, allowed)


def _predict(predict_proba: PredictProba, rows: np.ndarray) -> np.ndarray:
    if not len(rows):
        return np.zeros((0, 0))
    parts = []
    for start in range(0, len(rows), MODEL_CHUNK_ROWS):
        stop_check()
        parts.append(np.asarray(predict_proba(rows[start:start + MODEL_CHUNK_ROWS]), dtype=np.float64))
    return np.concatenate(parts)


class CounterfactualSearch:
    """Counterfactual search over a ``CounterfactualBox``; ``donors[c]`` are training rows the model puts in class ``c``."""

    def __init__(self, box: CounterfactualBox, donors: Sequence[np.ndarray]) -> None:
        self.box = box
        self.donors = [np.asarray(rows, dtype=np.float64) for rows in donors]

    def _candidates(self, x: np.ndarray, target: int, n: int, rng: np.random.Generator, *, every: bool) -> np.ndarray:
        box = self.box
        free = np.flatnonzero(box.mutable)
        donors = self.donors[target]
        out = np.repeat(x[None, :], n, axis=0)
        if not len(free) or not len(donors):
            return out
        donor = donors[rng.integers(len(donors), size=n)]
        if every:
            chosen = np.ones((n, len(free)), dtype=bool)
        else:  # how many features change: mostly one to three (u² leans small), sometimes all of them
            counts = np.maximum(1, np.ceil(len(free) * rng.random(n) ** 3)).astype(int)
            order = np.argsort(rng.random((n, len(free))), axis=1)
            chosen = np.zeros((n, len(free)), dtype=bool)
            np.put_along_axis(chosen, order, np.arange(len(free))[None, :] < counts[:, None], axis=1)
        step = np.where(rng.random((n, len(free))) < 0.5, 1.0, rng.random((n, len(free))))  # all the way, or part
        values = x[free][None, :] + step * (donor[:, free] - x[free][None, :])
        values = np.clip(values, box.low[free], box.high[free])
        values = np.where(box.whole[free], np.round(values), values)
        cat = box.categorical[free]
        values[:, cat] = donor[:, free][:, cat]  # categories are never moved part of the way
        for position, j in enumerate(free):  # a donor's category the user's bounds leave out: keep the row's own
            if box.categorical[j]:
                ok = np.isin(values[:, position], box.allowed.get(j, np.array([])))
                values[~ok, position] = x[j]
        out[:, free] = np.where(chosen, values, x[free][None, :])
        return out

    def search(self, X: np.ndarray, targets: Sequence[int], predict_proba: PredictProba, *, k: int, samples: int,
               rngs: Sequence[np.random.Generator]) -> list[np.ndarray]:
        """For each row of ``X``, up to ``k`` distinct counterfactuals the model predicts as ``targets[i]``: (m_i, d)."""
        X = np.asarray(X, dtype=np.float64)
        targets = [int(t) for t in targets]
        pools = self._valid_candidates(X, targets, predict_proba, samples, rngs, every=False)
        missing = [i for i, pool in enumerate(pools) if not len(pool)]
        if missing:
            retry = self._valid_candidates(X[missing], [targets[i] for i in missing], predict_proba, samples,
                                           [rngs[i] for i in missing], every=True)
            for i, pool in zip(missing, retry):
                pools[i] = pool
        pools = [self._closest(x, pool, SPARSE_POOL * k) for x, pool in zip(X, pools)]
        pools = self._sparsify(X, targets, pools, predict_proba)
        return [self._diverse(x, pool, k) for x, pool in zip(X, pools)]

    def _valid_candidates(self, X: np.ndarray, targets: list[int], predict_proba: PredictProba, samples: int,
                          rngs: Sequence[np.random.Generator], *, every: bool) -> list[np.ndarray]:
        candidates = [self._candidates(x, t, samples, rng, every=every) for x, t, rng in zip(X, targets, rngs)]
        predicted = np.argmax(_predict(predict_proba, np.concatenate(candidates)), axis=1).reshape(len(X), samples)
        out = []
        for x, pool, labels, target in zip(X, candidates, predicted, targets):
            pool = pool[(labels == target) & np.any(pool != x[None, :], axis=1)]
            out.append(np.unique(pool, axis=0) if len(pool) else pool)
        return out

    def _closest(self, x: np.ndarray, pool: np.ndarray, size: int) -> np.ndarray:
        if len(pool) <= size:
            return pool
        changes = self.box.changes(x, pool)
        order = np.lexsort((changes.sum(axis=1), (changes > 0).sum(axis=1)))  # fewest changes, then closest
        return pool[order[:size]]

    def _sparsify(self, X: np.ndarray, targets: list[int], pools: list[np.ndarray],
                  predict_proba: PredictProba) -> list[np.ndarray]:
        """Give back changes while the model keeps the desired class: whole ones first, then halve numeric ones."""
        pools = [pool.copy() for pool in pools]
        for halving, passes in ((False, int(self.box.mutable.sum())), (True, HALVING_PASSES)):
            for _ in range(passes):
                if not self._sparsity_pass(X, targets, pools, predict_proba, halving=halving):
                    break
        return [np.unique(pool, axis=0) if len(pool) else pool for pool in pools]

    def _sparsity_pass(self, X: np.ndarray, targets: list[int], pools: list[np.ndarray], predict_proba: PredictProba,
                       *, halving: bool) -> bool:
        """One step on every changed feature of every candidate of every row, in one model call; each candidate
        keeps its valid trial that removes the most distance. False when no candidate moved."""
        box = self.box
        trials, owners, gains = [], [], []
        for i, (x, pool) in enumerate(zip(X, pools)):
            if not len(pool):
                continue
            before = box.changes(x, pool)
            mask = (pool != x[None, :]) & (~box.categorical[None, :] if halving else True)
            c, j = np.nonzero(mask)
            trial = pool[c].copy()
            if halving:
                middle = (x[j] + pool[c, j]) / 2.0
                trial[np.arange(len(c)), j] = np.where(box.whole[j], np.round(middle), middle)
            else:
                trial[np.arange(len(c)), j] = x[j]
            after = box.changes(x, trial)[np.arange(len(c)), j]
            gain = before[c, j] - after
            moved = gain > 1e-12
            trials.append(trial[moved])
            owners.append(np.stack([np.full(moved.sum(), i), c[moved]], axis=1))
            gains.append(gain[moved])
        if not trials or not sum(len(t) for t in trials):
            return False
        trials_all, owners_all, gains_all = np.concatenate(trials), np.concatenate(owners), np.concatenate(gains)
        labels = np.argmax(_predict(predict_proba, trials_all), axis=1)
        valid = labels == np.asarray(targets)[owners_all[:, 0]]
        if not valid.any():
            return False
        trials_all, owners_all, gains_all = trials_all[valid], owners_all[valid], gains_all[valid]
        order = np.lexsort((-gains_all, owners_all[:, 1], owners_all[:, 0]))  # per candidate, the biggest gain first
        _, first = np.unique(owners_all[order], axis=0, return_index=True)
        for position in order[first]:
            i, c = owners_all[position]
            pools[i][c] = trials_all[position]
        return True

    def _diverse(self, x: np.ndarray, pool: np.ndarray, k: int) -> np.ndarray:
        """Greedy pick: the closest first, then each time the one furthest from those picked, less half its distance."""
        pool = pool[np.any(pool != x[None, :], axis=1)] if len(pool) else pool
        if len(pool) <= 1:
            return pool
        changes = self.box.changes(x, pool)
        own = changes.sum(axis=1) + SPARSITY_WEIGHT * (changes > 0).sum(axis=1)
        picked = [int(np.argmin(own))]
        nearest = np.full(len(pool), np.inf)
        while len(picked) < min(k, len(pool)):
            nearest = np.minimum(nearest, self.box.distance(pool[picked[-1]], pool))
            score = nearest - PROXIMITY_WEIGHT * own
            score[picked] = -np.inf
            picked.append(int(np.argmax(score)))
        return pool[picked]


def counterfactual_metrics(x: np.ndarray, counterfactuals: np.ndarray, scales: np.ndarray, categorical: np.ndarray,
                           *, reached: np.ndarray, plausible_pool: np.ndarray) -> dict[str, float | None]:
    """The quality of one set, measured (Mothilal et al., 2020; Verma et al., 2020):

    - validity: the share that the model, asked again, puts in the desired class (``reached``);
    - proximity: the mean total change from the row, in spreads (a category swap counts 1);
    - sparsity: the mean number of features changed;
    - diversity: the mean distance between two of them, in the same units (``None`` below two);
    - plausibility: the mean distance to the nearest real row the model puts in the desired class
      (``plausible_pool``; ``None`` when there is none)."""
    box = CounterfactualBox(np.asarray(scales, dtype=np.float64), np.array([]), np.array([]), np.array([]),
                            np.asarray(categorical, dtype=bool), np.array([]), {})
    counterfactuals = np.atleast_2d(np.asarray(counterfactuals, dtype=np.float64))
    if not counterfactuals.size:
        return dict.fromkeys(("validity", "proximity", "sparsity", "diversity", "plausibility"))
    changes = box.changes(np.asarray(x, dtype=np.float64), counterfactuals)
    n = len(counterfactuals)
    pairs = [box.distance(counterfactuals[a], counterfactuals[b:b + 1])[0] for a in range(n) for b in range(a + 1, n)]
    plausibility = None
    if len(plausible_pool):
        nearest = [float(box.distance(cf, np.asarray(plausible_pool, dtype=np.float64)).min()) for cf in counterfactuals]
        plausibility = float(np.mean(nearest))
    return {"validity": float(np.mean(reached)), "proximity": float(changes.sum(axis=1).mean()),
            "sparsity": float((changes > 0).sum(axis=1).mean()), "diversity": float(np.mean(pairs)) if pairs else None,
            "plausibility": plausibility}
