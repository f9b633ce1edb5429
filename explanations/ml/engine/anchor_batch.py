"""Anchors (Ribeiro et al., 2018) for many rows at once: anchor-exp's KL-LUCB beam search, batched.

anchor-exp explains one row at a time and calls the model on every batch of ~100 samples the bandit
asks for, so most of its time goes to per-call overhead. Here each row's search is its algorithm
(``AnchorBaseBeam.anchor_beam``: the same candidate tuples, bandit, bounds and stopping rules), written as a
generator that yields the model inputs it needs, with two changes to what it accepts: a rule is accepted on
samples drawn for itself, and besides the beam the broadest rules of each size that look precise enough are
checked (``EXTRA_CHECKS``), since an anchor is the broadest rule that is precise enough. A driver runs the rows of a batch in
lockstep, stacks what they ask for and calls the model once per round for all of them. Sampling from
the training data conditional on an anchor is vectorised, sample statistics are kept as index arrays
rather than Python sets, and every row draws from its own ``numpy.random.Generator``. A sample that is a
training row left as it was (it already satisfied the rule) is answered from the model's classes on the
training rows, asked once per explainer; a row asks the model once per distinct sample. The KL bounds are
compiled (``kl_bounds``). A batch takes as many rounds as its slowest row, so rows that have waited long draw
further ahead (``EAGER_AFTER``).

Reruns of a row with other seeds (the stability score) may share a ``SampleBank``: the model's answers on samples
it was already asked about, and every labelled sample drawn for a rule. A search given a bank resamples a rule's
samples from it (with replacement, a bootstrap) as long as it has taken fewer of them than the bank holds, and draws
and scores new ones only beyond that, adding them to the bank.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from anchor.anchor_tabular import AnchorTabularExplainer

from explanations.ml.engine import stop_check

Search = Generator[np.ndarray, np.ndarray, Any]
PREFETCH = 8  # at most this many of the bandit's batches drawn at once for one tuple
# A row that has already waited on this many answers is one of its batch's slowest and will soon be alone in
# rounds that cost the model's fixed per-call time however little they hold. Such a row draws 4x further ahead
# for a tuple (still at most PREFETCH batches) and, whenever it pays for a round, tops up the TOP_UP likeliest
# next candidates of its bandit with a batch each. On Adult a batch of 24 rows then takes ~40 % fewer rounds.
EAGER_AFTER = 16
TOP_UP = 4
# The beam keeps the most precise rules of a size, and the anchor is the broadest rule precise enough. So at each
# size the EXTRA_CHECKS broadest other rules whose samples so far reach the threshold are checked as well, each on
# EXTRA_EVIDENCE samples of its own: every extra check is another chance to accept a rule by luck, so it must show
# its precision on more samples than the beam's (one batch). On Adult (24 rows, threshold 0.95, seeds 0-3) the
# rules cover 0.154 of rows on average instead of 0.117 (anchor-exp: 0.134-0.160), and the accepted ones hold
# 0.954 of the time on fresh samples instead of 0.962 (anchor-exp's: 0.948), at the same speed.
EXTRA_CHECKS = 4
EXTRA_EVIDENCE = 400


def lucb_beta(n_features: int, t: int, delta: float) -> float:
    temp = np.log(405.5 * n_features * (t**1.1) / delta)
    return float(temp + np.log(temp))


@dataclass
class Drawn:
    """Samples for a rule: the model inputs, and for each the training row it is unchanged (-1: values replaced)."""

    raw: np.ndarray
    known: np.ndarray

    @staticmethod
    def stack(parts: Sequence[Drawn]) -> Drawn:
        return Drawn(np.concatenate([d.raw for d in parts]), np.concatenate([d.known for d in parts]))


@dataclass
class SampleBank:
    """One row's labelled samples, shared by its searches with other seeds (anchor-exp's ``sample_fn`` outputs).

    ``rules``: for each rule (tuple of mapping indices), the condition matrix and whether the model gave the row's
    class, of every sample drawn for that rule by any search of the row; ``memo``: the model's answers by sample bytes.
    """

    rules: dict[tuple, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    memo: dict[bytes, bool] = field(default_factory=dict)

    def size(self, t: tuple) -> int:
        return len(self.rules[t][1]) if t in self.rules else 0

    def add(self, t: tuple, data: np.ndarray, labels: np.ndarray) -> None:
        if t in self.rules:
            old_data, old_labels = self.rules[t]
            data, labels = np.concatenate([old_data, data]), np.concatenate([old_labels, labels])
        self.rules[t] = (data, labels)

    def resample(self, t: tuple, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        data, labels = self.rules[t]
        pick = rng.integers(0, len(labels), n)
        return data[pick], labels[pick]


@dataclass
class Anchor:
    """One row's anchor: mapping indices in the order they were added, with precision and coverage after each."""

    present: tuple[int, ...]
    order: list[int]
    precision: list[float]
    coverage: list[float]
    all_precision: float
    mapping: dict[int, tuple[int, str, float]]
    met: bool = True  # False: no rule reached the threshold, and this is the most precise one the search found


class _Row:
    """One row's search state: its conditions (anchor-exp's ``mapping``), samples drawn so far and tuple statistics."""

    def __init__(
        self, engine: AnchorBatch, x: np.ndarray, rng: np.random.Generator, label: int, bank: SampleBank | None = None
    ) -> None:
        self.engine, self.rng, self.label, self.bank = engine, rng, int(label), bank
        self.x_disc = engine.discretize(x[None, :])[0]
        mapping: dict[int, tuple[int, str, float]] = {}
        for f in engine.categorical_:
            if f in engine.ordinal_:
                for v in range(len(engine.names_[f])):
                    if self.x_disc[f] <= v and v != len(engine.names_[f]) - 1:
                        mapping[len(mapping)] = (f, "leq", v)
                    elif self.x_disc[f] > v:
                        mapping[len(mapping)] = (f, "geq", v)
            else:
                mapping[len(mapping)] = (f, "eq", self.x_disc[f])
        self.mapping = mapping
        self.m_feature = np.array([mapping[i][0] for i in range(len(mapping))], dtype=np.intp)
        self.m_op = np.array([mapping[i][1] for i in range(len(mapping))])
        self.m_value = np.array([mapping[i][2] for i in range(len(mapping))], dtype=np.float64)
        self._data = np.zeros((1024, len(mapping)), dtype=bool)
        self._labels = np.zeros(1024, dtype=np.int64)
        self.count = 0
        self.batch_size = 1  # the bandit's batch, the unit of drawing ahead (set by the search)
        self.rounds = 0  # answers this row has waited on: model rounds, and those all known without one
        self.memo: dict[bytes, bool] = bank.memo if bank is not None else {}  # the model's answer on samples asked before
        self.pool: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self.asked: dict[tuple, int] = {}
        self.t_idx: dict[tuple, np.ndarray] = {}
        self.t_n: dict[tuple, float] = {}
        self.t_pos: dict[tuple, float] = {}
        self.own_n: dict[tuple, float] = {}  # samples drawn for the tuple itself, not inherited from a parent
        self.own_pos: dict[tuple, float] = {}
        self.t_order: dict[tuple, list[int]] = {}
        self.t_cover: dict[tuple, np.ndarray] = {}

    @property
    def data(self) -> np.ndarray:
        return self._data[: self.count]

    @property
    def labels(self) -> np.ndarray:
        return self._labels[: self.count]

    def extend(self, data: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Append samples (growing the buffers by doubling); returns their indices."""
        first, last = self.count, self.count + len(data)
        if last > len(self._data):
            capacity = max(last, 2 * len(self._data))
            self._data = np.concatenate([self._data, np.zeros((capacity - len(self._data), self._data.shape[1]), bool)])
            self._labels = np.concatenate([self._labels, np.zeros(capacity - len(self._labels), np.int64)])
        self._data[first:last], self._labels[first:last] = data, labels
        self.count = last
        return np.arange(first, last)

    def sample(self, present: Sequence[int], n: int) -> tuple[Drawn, np.ndarray]:
        """anchor-exp's ``sample_fn`` without labels: training rows made to satisfy the anchor, and their condition matrix."""
        eq: dict[int, float] = {}
        leq: dict[int, float] = {}
        geq: dict[int, float] = {}
        for index in present:
            f, op, v = self.mapping[index]
            if op == "eq":
                eq[f] = v
            elif op == "leq":
                leq[f] = min(leq.get(f, v), v)
            else:
                geq[f] = max(geq.get(f, v), v)
        raw, known = self.engine.sample_from_train(eq, geq, leq, n, self.rng)
        disc = self.engine.discretize(raw)[:, self.m_feature]
        data = np.where(
            self.m_op == "eq", disc == self.x_disc[self.m_feature], np.where(self.m_op == "leq", disc <= self.m_value, disc > self.m_value)
        )
        return Drawn(raw, known), data

    def answers(self, drawn: Drawn) -> Generator[np.ndarray, np.ndarray, np.ndarray]:
        """Whether the model gives the row's class on ``drawn``; no model round when every answer is known.

        Training rows left as they were are answered from the model's classes on the training rows. The
        other samples are asked once each: a long rule leaves few values free, so a row's samples repeat
        (a fifth of them on Adult), and the row keeps its answers by the sample's bytes.
        """
        answer = np.empty(len(drawn.raw), dtype=bool)
        known = drawn.known >= 0
        answer[known] = self.engine.train_label_[drawn.known[known]] == self.label
        self.rounds += 1
        if known.all():
            return answer
        raw = np.ascontiguousarray(drawn.raw[~known])
        keys = raw.view(np.dtype((np.void, raw.dtype.itemsize * raw.shape[1]))).ravel().tolist()
        memo, new = self.memo, {}
        for j, key in enumerate(keys):
            if key not in memo and key not in new:
                new[key] = j
        if new:
            got = yield raw[np.fromiter(new.values(), dtype=np.intp, count=len(new))]
            memo.update(zip(new, got.tolist()))
        answer[~known] = [memo[key] for key in keys]
        return answer

    def _pool_add(self, t: tuple, data: np.ndarray, labels: np.ndarray) -> None:
        old_data, old_labels = self.pool.get(t, (np.zeros((0, data.shape[1]), bool), np.zeros(0, np.int64)))
        self.pool[t] = (np.concatenate([old_data, data]), np.concatenate([old_labels, labels]))

    def draw(
        self, requests: list[tuple[tuple, int]], top_up: tuple[Sequence[tuple], int] = ((), 0)
    ) -> Generator[np.ndarray, np.ndarray, list[float]]:
        """``complete_sample_fn`` for several tuples at once: positives per request, at most one model round.

        Samples of a tuple are i.i.d. draws from the training data conditioned on it, so a tuple the bandit
        keeps asking about gets its next batches drawn ahead (twice as many each time, up to ``PREFETCH``
        batches) and served in order from a pool: the bandit sees the same kind of samples in the same
        amounts, with far fewer model rounds and little drawn in vain.
        """
        short = [(t, n) for t, n in requests if len(self.pool.get(t, ((), ()))[1]) < n]
        if short and self.bank is not None:  # a bootstrap of the bank while this search has taken less than it holds
            drawing = []
            for t, n in short:
                pooled = len(self.pool[t][1]) if t in self.pool else 0
                if self.own_n.get(t, 0) + pooled + n <= self.bank.size(t):
                    self._pool_add(t, *self.bank.resample(t, n, self.rng))
                else:
                    drawing.append((t, n))
            short = drawing
        if short:
            fetch = []
            eager = self.rounds >= EAGER_AFTER
            for t, n in short:
                asked = self.asked.get(t, 0)
                self.asked[t] = asked + 1
                ahead = min(2 ** (asked + 2 * eager), PREFETCH) - 1  # further batches of the bandit's size
                fetch.append((t, n + ahead * min(n, self.batch_size) if n > 1 else n))
            if eager:  # a round is paid for anyway: candidates the bandit may ask for next get a batch ready
                tuples, n = top_up
                fetching = {t for t, _ in fetch}
                fetch += [(t, n) for t in tuples if t not in fetching and len(self.pool.get(t, ((), ()))[1]) < n]
            drawn = [self.sample(t, n) for t, n in fetch]
            labels = yield from self.answers(Drawn.stack([d for d, _ in drawn]))
            start = 0
            for (t, n), (_, data) in zip(fetch, drawn):
                part = labels[start : start + n].astype(np.int64)
                self._pool_add(t, data, part)
                if self.bank is not None:
                    self.bank.add(t, data, part)
                start += n
        out = []
        for t, n in requests:
            data, labels = self.pool[t]
            self.pool[t] = (data[n:], labels[n:])
            self.t_idx[t] = np.concatenate([self.t_idx[t], self.extend(data[:n], labels[:n])])
            self.t_n[t] += n
            positives = float(labels[:n].sum())
            self.t_pos[t] += positives
            self.own_n[t] = self.own_n.get(t, 0.0) + n
            self.own_pos[t] = self.own_pos.get(t, 0.0) + positives
            out.append(positives)
        return out


class AnchorBatch:
    """The training data and discretizer of an ``AnchorTabularExplainer``, and the batched search over them."""

    def __init__(self, reference: AnchorTabularExplainer) -> None:
        self.train_ = np.asarray(reference.train, dtype=np.float64)
        self.d_train_ = np.asarray(reference.d_train, dtype=np.float64)
        self.categorical_ = list(reference.categorical_features)
        self.ordinal_ = set(reference.ordinal_features)
        self.names_ = reference.categorical_names
        self.min_, self.max_ = reference.min, reference.max
        self.lambdas_ = dict(reference.disc.lambdas)
        self._options: dict[tuple, np.ndarray] = {}
        self.train_label_: np.ndarray | None = None  # the model's class for each training row, asked once
        from explanations.ml.engine import kl_bounds  # compiled (or loaded from numba's cache) here, not in a search

        self.kl_ = kl_bounds

    def discretize(self, X: np.ndarray) -> np.ndarray:
        out = np.array(X, dtype=np.float64)
        for f, to_bin in self.lambdas_.items():
            out[:, f] = to_bin(out[:, f]).astype(int)
        return out

    def _values_between(self, f: int, low: float | None, high: float | None) -> np.ndarray:
        """Training values of ``f`` whose bin is above ``low`` and at most ``high`` (cached per bound pair)."""
        key = (f, low, high)
        if key not in self._options:
            keep = np.ones(len(self.train_), dtype=bool)
            if low is not None:
                keep &= self.d_train_[:, f] > low
            if high is not None:
                keep &= self.d_train_[:, f] <= high
            self._options[key] = self.train_[keep, f]
        return self._options[key]

    def sample_from_train(self, eq: dict, geq: dict, leq: dict, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """anchor-exp's ``sample_from_train``, vectorised: rows resampled only where they break a bound.

        Also returns, per sample, the training row it still is unchanged (-1 where a value was replaced).
        """
        index = rng.integers(0, len(self.train_), n)
        sample = self.train_[index]
        d_sample = self.d_train_[index]
        changed = np.zeros(n, dtype=bool)
        for f, v in eq.items():
            changed |= sample[:, f] != v
            sample[:, f] = v
        for f in list(geq) + [f for f in leq if f not in geq]:
            low, high = geq.get(f), leq.get(f)
            broken = np.zeros(n, dtype=bool)
            if low is not None:
                broken |= d_sample[:, f] <= low
            if high is not None:
                broken |= d_sample[:, f] > high
            count = int(broken.sum())
            if not count:
                continue
            changed |= broken
            options = self._values_between(f, low, high)
            if len(options) == 0:
                sample[broken, f] = rng.uniform(
                    low if low is not None else self.min_[f], high if high is not None else self.max_[f], count
                )
            else:
                sample[broken, f] = options[rng.integers(0, len(options), count)]
        return sample, np.where(changed, -1, index)

    # ------------------------------------------------------------ the search, one generator per row

    def _make_tuples(self, row: _Row, previous: list[tuple], coverage: np.ndarray) -> list[tuple]:
        n_features = row.data.shape[1]
        if not previous:
            tuples = [(f,) for f in range(n_features)]
            for t in tuples:
                present = np.flatnonzero(row.data[:, t[0]])
                row.t_idx[t] = present
                row.t_n[t] = float(len(present))
                row.t_pos[t] = float(row.labels[present].sum())
                row.t_order[t] = [t[0]]
                row.t_cover[t] = coverage[:, t[0]]
            return tuples
        new: set[tuple] = set()
        for f in range(n_features):
            for t in previous:
                new_t = tuple(sorted(set(t + (f,))))
                if len(new_t) != len(t) + 1 or new_t in new:
                    continue
                new.add(new_t)
                row.t_order[new_t] = row.t_order[t] + [f]
                row.t_cover[new_t] = row.t_cover[t] & row.t_cover[(f,)]
                parent = row.t_idx[t]
                kept = parent[row.data[parent, f]]
                row.t_idx[new_t] = kept
                row.t_n[new_t] = float(len(kept))
                row.t_pos[new_t] = float(row.labels[kept].sum())
        return list(new)  # a set's order, as anchor-exp iterates it

    @staticmethod
    def _broader(row: _Row, tuples: list[tuple], beam: list[tuple], threshold: float) -> list[tuple]:
        """Up to ``EXTRA_CHECKS`` rules of this size beyond the beam, broadest first, that look precise enough.

        The beam keeps the most precise rules; an anchor is the broadest rule that is precise enough, so the
        broadest candidates whose samples so far (inherited from shorter rules) reach the threshold are checked too.
        """
        broadest = sorted(
            (t for t in tuples if t not in beam and row.t_n[t] and row.t_pos[t] >= threshold * row.t_n[t]),
            key=lambda t: -row.t_cover[t].mean(),
        )
        return broadest[:EXTRA_CHECKS]

    def _lucb(self, row: _Row, tuples: list[tuple], epsilon: float, delta: float, batch_size: int, top_n: int) -> Search:
        n_features = len(tuples)
        n_samples = np.array([row.t_n[t] for t in tuples])
        positives = np.array([row.t_pos[t] for t in tuples])
        empty = np.flatnonzero(n_samples == 0)
        if len(empty):
            got = yield from row.draw([(tuples[f], 1) for f in empty])
            n_samples[empty] += 1
            positives[empty] += got
        if n_features == top_n:
            return list(range(n_features))
        means = positives / n_samples
        t = 1

        def bounds(t: int) -> tuple[int, int, float]:
            return self.kl_.lucb_gap(means, n_samples, np.argsort(means), top_n, lucb_beta(n_features, t, delta))

        ut, lt, gap = bounds(t)
        while gap > epsilon:
            likely = [tuples[f] for f in np.argsort(means)[::-1][: TOP_UP + top_n]]  # the bandit's likely next asks
            got = yield from row.draw([(tuples[ut], batch_size), (tuples[lt], batch_size)], (likely, batch_size))
            for f, pos in zip((ut, lt), got):
                n_samples[f] += batch_size
                positives[f] += pos
                means[f] = positives[f] / n_samples[f]
            t += 1
            ut, lt, gap = bounds(t)
        return list(np.argsort(means)[-top_n:])

    def _search(
        self, row: _Row, *, threshold: float, delta: float, epsilon: float, batch_size: int, beam_size: int,
        max_anchor_size: int | None, coverage_samples: int, epsilon_stop: float = 0.05,
    ) -> Search:
        """``AnchorBaseBeam.anchor_beam`` for one row, yielding model inputs and receiving ``label == desired`` for them."""
        row.batch_size = batch_size
        _, coverage = row.sample([], coverage_samples)
        drawn, data = row.sample([], 1)
        labels = (yield from row.answers(drawn)).astype(np.int64)
        beta = np.log(1.0 / delta)
        mean = labels.mean()
        lb = self.kl_.kl_lower(mean, beta / len(data))
        while mean > threshold and lb < threshold - epsilon:
            more_drawn, more = row.sample([], batch_size)
            more_labels = (yield from row.answers(more_drawn)).astype(np.int64)
            data, labels = np.concatenate([data, more]), np.concatenate([labels, more_labels])
            mean = labels.mean()
            lb = self.kl_.kl_lower(mean, beta / len(data))
        if lb > threshold:
            return Anchor((), [], [], [], float(mean), row.mapping)
        row.extend(data, labels)
        n_features = data.shape[1]
        max_anchor_size = max_anchor_size or n_features
        best_of_size: dict[int, list[tuple]] = {0: []}
        best_coverage, best_tuple = -1.0, ()
        size = 1
        while size <= max_anchor_size:
            tuples = self._make_tuples(row, best_of_size[size - 1], coverage)
            tuples = [t for t in tuples if row.t_cover[t].mean() > best_coverage]
            if not tuples:
                break
            chosen = yield from self._lucb(row, tuples, epsilon, delta, batch_size, min(beam_size, len(tuples)))
            best_of_size[size] = [tuples[i] for i in chosen]
            stop = False
            beta = np.log(1.0 / (delta / (1 + (beam_size - 1) * n_features)))
            # Unlike anchor-exp, a rule is accepted on samples drawn for the rule itself: samples inherited
            # from a shorter rule where the new condition happened to hold are a biased sample of it.
            beam = best_of_size[size]
            extra = self._broader(row, tuples, beam, threshold)
            want = [(t, batch_size) for t in beam if not row.own_n.get(t)]
            want += [(t, EXTRA_EVIDENCE) for t in extra if row.own_n.get(t, 0) < EXTRA_EVIDENCE]
            if want:
                yield from row.draw(want)
            for t in beam + extra:
                if t in extra and row.t_cover[t].mean() <= best_coverage:
                    continue
                mean = row.own_pos[t] / row.own_n[t]
                lb, ub = self.kl_.kl_lower(mean, beta / row.own_n[t]), self.kl_.kl_upper(mean, beta / row.own_n[t])
                while (mean >= threshold and lb < threshold - epsilon_stop) or (mean < threshold and ub >= threshold + epsilon_stop):
                    yield from row.draw([(t, batch_size)])
                    mean = row.own_pos[t] / row.own_n[t]
                    lb, ub = self.kl_.kl_lower(mean, beta / row.own_n[t]), self.kl_.kl_upper(mean, beta / row.own_n[t])
                cover = float(row.t_cover[t].mean())
                if mean >= threshold and lb > threshold - epsilon_stop and cover > best_coverage:
                    best_coverage, best_tuple = cover, t
                    stop = stop or best_coverage == 1
            if stop:
                break
            size += 1
        met = best_tuple != ()
        if not met:
            tuples = [t for i in range(size) for t in best_of_size.get(i, [])]
            chosen = yield from self._lucb(row, tuples, epsilon, delta, batch_size, 1)
            best_tuple = tuples[chosen[0]]
        order, precision, coverage_after, current = [], [], [], ()
        for f in row.t_order[best_tuple]:
            current = tuple(sorted(set(current + (f,))))
            order.append(f)
            own = row.own_n.get(current)
            precision.append(row.own_pos[current] / own if own else row.t_pos[current] / row.t_n[current])
            coverage_after.append(float(row.t_cover[current].mean()))
        return Anchor(best_tuple, order, precision, coverage_after, 0.0, row.mapping, met)

    def explain(
        self,
        X: np.ndarray,
        labels: Sequence[int],
        rngs: Sequence[np.random.Generator],
        predict_label: Callable[[np.ndarray], np.ndarray],
        banks: Sequence[SampleBank | None] | None = None,
        **search: Any,
    ) -> list[Anchor]:
        """One ``Anchor`` per row; every round, one model call on the inputs all unfinished rows asked for.

        Samples are training rows with some values replaced to satisfy a rule; one that needed no replacing is
        a training row as it is, and the model's class for every training row is asked once, on the first call.
        ``banks``: per row, the ``SampleBank`` it shares with other searches of the same row (a row may appear
        several times, with other generators: reruns), or None to draw every sample anew.
        """
        if self.train_label_ is None:
            self.train_label_ = np.asarray(predict_label(self.train_), dtype=np.int64)
        banks = list(banks) if banks is not None else [None] * len(X)
        searches = [self._search(_Row(self, np.asarray(x, float), rng, label, bank), **search)
                    for x, rng, label, bank in zip(X, rngs, labels, banks)]
        results: list[Anchor | None] = [None] * len(searches)
        asked: dict[int, np.ndarray] = {}
        for i, search_row in enumerate(searches):
            try:
                asked[i] = next(search_row)
            except StopIteration as done:
                results[i] = done.value
        while asked:
            stop_check()
            order = list(asked)
            predicted = predict_label(np.concatenate([asked[i] for i in order]))
            start = 0
            for i in order:
                n = len(asked[i])
                answer = predicted[start : start + n] == labels[i]
                start += n
                try:
                    asked[i] = searches[i].send(answer)
                except StopIteration as done:
                    results[i] = done.value
                    del asked[i]
        return results  # type: ignore[return-value]
