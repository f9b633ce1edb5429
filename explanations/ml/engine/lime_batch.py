"""LIME for many rows at once, with lime's ``LimeTabularExplainer`` semantics.

The fitted statistics (quartile bins, bin frequencies, per-bin truncated normals, the scaler, the kernel
width) are read from a ``LimeTabularExplainer`` so they are lime's own. What changes is how the work is
done: samples for a chunk of rows are drawn with numpy vector operations, the model is called once on
the stacked samples, and feature selection plus the weighted ridge fits are solved in closed form from
one weighted Gram matrix per row (``lime_fit``), instead of dozens of scikit-learn fits per row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from lime.lime_tabular import LimeTabularExplainer
from scipy.special import ndtr, ndtri

from explanations.ml.engine import rows_in_threads, stop_check

SAMPLE_CELLS_PER_CHUNK = 4_000_000  # rows x samples x features held at once (~32 MB per float array)
REJECTION_ROUNDS = 64


@dataclass
class LimeFit:
    """One row's local model, as lime reports it: features sorted by |weight|, intercept, weighted R²."""

    features: np.ndarray
    weights: np.ndarray
    intercept: float
    score: float


def _solve(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched ``A x = b`` (b has one fewer axis); least squares where a system is singular, as scikit-learn falls back."""
    try:
        return np.linalg.solve(A, b[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return (np.linalg.pinv(A) @ b[..., None])[..., 0]


def lime_fit(
    Z: np.ndarray, y: np.ndarray, w: np.ndarray, num_features: int, feature_selection: str = "auto"
) -> list[LimeFit]:
    """``LimeBase.explain_instance_with_data`` for a stack of rows, from one weighted Gram matrix per row.

    ``Z`` (rows, samples, d) is lime's scaled neighbourhood (row 0 of each block is the instance), ``y``
    (rows, samples) the explained class's probability, ``w`` the kernel weights. Ridge with an unpenalised
    intercept and sample weights is exactly ``(C + alpha I) beta = c`` on weighted-centred data, so forward
    selection (alpha=0, best R²), ``highest_weights`` (alpha=0.01) and the final fit (alpha=1) all read
    sub-blocks of the same ``C`` and ``c``. ``Z`` may be a transposed view of a (rows, d, samples) array,
    which is the layout the sampler writes and the one the Gram products run fastest on.
    """
    B, _, d = Z.shape
    Zt = np.ascontiguousarray(Z.transpose(0, 2, 1))
    if feature_selection == "auto":
        feature_selection = "forward_selection" if num_features <= 6 else "highest_weights"
    sw = w.sum(axis=1)
    Zw = Zt * w[:, None, :]
    s = Zw.sum(axis=2)
    mx = s / sw[:, None]
    my = np.einsum("bn,bn->b", y, w) / sw
    C = Zw @ Zt.transpose(0, 2, 1) - sw[:, None, None] * mx[:, :, None] * mx[:, None, :]
    c = (Zw @ y[:, :, None])[:, :, 0] - s * my[:, None]
    yc = y - my[:, None]
    sst = np.einsum("bn,bn->b", w * yc, yc)
    # A feature every sample shares has a zero centred column: its least-squares weight is 0, as lime's fallback gives.
    dead = np.diagonal(C, axis1=1, axis2=2) <= 1e-10 * sw[:, None]
    if dead.any():
        C = np.where(dead[:, :, None] | dead[:, None, :], 0.0, C)
        C[:, np.arange(d), np.arange(d)] += dead
        c = np.where(dead, 0.0, c)
    flat = sst <= 1e-300  # constant target: every candidate scores the same and the first one wins, as in lime
    rows = np.arange(B)

    if feature_selection == "none":
        used = np.broadcast_to(np.arange(d), (B, d))
    elif feature_selection == "forward_selection":
        used = np.empty((B, 0), dtype=np.intp)
        for k in range(min(num_features, d)):
            free = np.ones((B, d), dtype=bool)
            free[rows[:, None], used] = False
            candidates = np.nonzero(free)[1].reshape(B, d - k)
            subsets = np.concatenate(
                [np.broadcast_to(used[:, None, :], (B, d - k, k)), candidates[:, :, None]], axis=2
            )
            A = C[rows[:, None, None, None], subsets[..., :, None], subsets[..., None, :]]
            r = c[rows[:, None, None], subsets]
            explained = np.einsum("bmk,bmk->bm", _solve(A, r), r)  # R² x SST: same order as lime's R²
            explained[flat] = 0.0
            used = np.concatenate([used, candidates[rows, np.argmax(explained, axis=1)][:, None]], axis=1)
    elif feature_selection == "highest_weights":
        beta = _solve(C + 0.01 * np.eye(d), c)
        used = np.argsort(-np.abs(beta * Zt[:, :, 0]), axis=1, kind="stable")[:, :num_features]
    else:
        raise ValueError(f"Feature selection {feature_selection!r} is not supported by the batch engine.")

    k = used.shape[1]
    gram = C[rows[:, None, None], used[:, :, None], used[:, None, :]]
    r = c[rows[:, None], used]
    beta = _solve(gram + np.eye(k), r)
    intercept = my - np.einsum("bk,bk->b", mx[rows[:, None], used], beta)
    sse = sst - 2 * np.einsum("bk,bk->b", beta, r) + np.einsum("bk,bkl,bl->b", beta, gram, beta)
    score = np.where(flat, 1.0, 1.0 - sse / np.where(flat, 1.0, sst))
    fits = []
    for i in range(B):
        order = np.argsort(-np.abs(beta[i]), kind="stable")
        fits.append(LimeFit(used[i][order].copy(), beta[i][order].copy(), float(intercept[i]), float(score[i])))
    return fits


@dataclass
class Neighbourhood:
    """Perturbed samples as lime draws them, before any row is put in column 0 (see ``LimeBatch.draw``)."""

    inverse: np.ndarray  # (d, n) model inputs; column 0 is the row's place
    scaled_normal: np.ndarray  # (unbinned numeric columns, n) standardised values
    codes: np.ndarray  # (sampled columns, n) category codes, or bin numbers for binned numeric columns
    proba: np.ndarray | None = None  # (n - 1, classes) the model on columns 1.. of ``inverse``


class LimeBatch:
    """Draws lime's neighbourhoods for many rows and fits them together."""

    def __init__(self, reference: LimeTabularExplainer) -> None:
        scaler = reference.scaler
        self.mean_ = np.asarray(scaler.mean_, dtype=np.float64)
        self.scale_ = np.asarray(scaler.scale_, dtype=np.float64)
        self.d_ = len(self.mean_)
        keywords = getattr(reference.base.kernel_fn, "keywords", {})
        self.kernel_width_ = float(keywords.get("kernel_width", np.sqrt(self.d_) * 0.75))
        # Columns lime samples from training frequencies: every column once discretized, else the categorical ones.
        self.chosen_ = np.array(sorted(reference.feature_values), dtype=np.intp)
        self.normal_ = np.array([j for j in range(self.d_) if j not in reference.feature_values], dtype=np.intp)
        self.choice_cdf_, self.choice_values_ = [], []
        for j in self.chosen_:
            cdf = np.cumsum(np.asarray(reference.feature_frequencies[j], dtype=np.float64))
            self.choice_cdf_.append(cdf[:-1] / cdf[-1])  # as RandomState.choice normalises p
            self.choice_values_.append(np.asarray(reference.feature_values[j], dtype=np.float64))
        disc = reference.discretizer
        self.binned_ = np.array(sorted(disc.means), dtype=np.intp) if disc is not None else np.empty(0, np.intp)
        self.cuts_ = [np.asarray(disc.maxs[j][:-1], dtype=np.float64) for j in self.binned_]
        if len(self.binned_):
            self.bin_width_ = width = max(len(disc.means[j]) for j in self.binned_)
            shape = (len(self.binned_), width)
            mean, std, low, high = np.zeros(shape), np.ones(shape), np.zeros(shape), np.zeros(shape)
            for i, j in enumerate(self.binned_):
                k = len(disc.means[j])
                mean[i, :k], std[i, :k] = disc.means[j], disc.stds[j]
                low[i, :k] = (np.asarray(disc.mins[j], float) - mean[i, :k]) / std[i, :k]
                high[i, :k] = (np.asarray(disc.maxs[j], float) - mean[i, :k]) / std[i, :k]
            self.bin_mean_, self.bin_std_, self.bin_low_, self.bin_high_ = mean.ravel(), std.ravel(), low.ravel(), high.ravel()
            self.bin_narrow_ = ndtr(self.bin_high_) - ndtr(self.bin_low_) < 0.25
            self.binned_position_ = np.searchsorted(self.chosen_, self.binned_)
            # Bin choice tables, padded: cdf steps (2.0 never reached) and the flat (column, bin) index of each value.
            self.bin_cdf_ = np.full((len(self.binned_), width - 1), 2.0)
            self.bin_values_ = np.zeros(len(self.binned_) * width, dtype=np.intp)
            self.bin_offsets_ = (np.arange(len(self.binned_)) * width)[:, None]
            for i, position in enumerate(self.binned_position_):
                cdf, values = self.choice_cdf_[position], self.choice_values_[position].astype(np.intp)
                self.bin_cdf_[i, : len(cdf)] = cdf
                self.bin_values_[i * width : i * width + len(values)] = values + i * width
        self.categorical_positions_ = [p for p, j in enumerate(self.chosen_) if j not in set(self.binned_.tolist())]

    def _truncated_normal(self, flat_bins: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Values for sampled bins as lime's ``undiscretize`` draws them: a normal truncated to the bin's range.

        ``flat_bins`` indexes the flattened (binned column, bin) tables. Drawn by rejection where the range
        holds much of the normal's mass (a bin's range holds its mean and spans at least two of its standard
        deviations, so that is nearly always), by inverse CDF elsewhere. Where a bin's range is a single
        point lime returns that point's z-score (0), not the point; the quirk is kept so the model sees
        what lime feeds it.
        """
        low, high = self.bin_low_.take(flat_bins), self.bin_high_.take(flat_bins)
        narrow = self.bin_narrow_.take(flat_bins)
        z = rng.standard_normal(flat_bins.shape)
        # Redraw only the rejected cells, round after round, in flat order (the same random numbers as redrawing
        # over the whole array, without touching every cell again in each of up to ~40 rounds).
        z_flat, low_flat, high_flat = z.reshape(-1), low.reshape(-1), high.reshape(-1)
        pending = np.flatnonzero(((z_flat < low_flat) | (z_flat > high_flat)) & ~narrow.reshape(-1))
        for _ in range(REJECTION_ROUNDS):
            if not len(pending):
                break
            redraw = rng.standard_normal(len(pending))
            inside = (redraw >= low_flat.take(pending)) & (redraw <= high_flat.take(pending))
            z_flat[pending[inside]] = redraw[inside]
            pending = pending[~inside]
        if len(pending):
            narrow.reshape(-1)[pending] = True
        if narrow.any():
            index = np.nonzero(narrow)
            lo, hi = ndtr(low[index]), ndtr(high[index])
            p = np.clip(lo + rng.random(len(index[0])) * (hi - lo), 1e-300, np.nextafter(1.0, 0.0))
            z[index] = np.clip(ndtri(p), low[index], high[index])
        values = self.bin_mean_.take(flat_bins) + self.bin_std_.take(flat_bins) * z
        return np.where(low == high, low, values)

    def draw(self, num_samples: int, rng: np.random.Generator) -> Neighbourhood:
        """lime's ``__data_inverse`` without the row: ``num_samples`` samples whose column 0 the row will take.

        lime draws every sample without looking at the row (bins and categories from their training
        frequencies, values inside the bins, unbinned numbers around the training mean), so one draw can serve
        any number of rows; the random numbers are consumed exactly as ``sample`` always did.
        """
        inverse = np.empty((self.d_, num_samples))
        scaled_normal = np.empty((len(self.normal_), num_samples))
        codes = np.empty((len(self.chosen_), num_samples))
        if len(self.normal_):
            mean, scale = self.mean_[self.normal_, None], self.scale_[self.normal_, None]
            z = rng.standard_normal((len(self.normal_), num_samples))
            inverse[self.normal_] = z * scale + mean
            scaled_normal[:] = (inverse[self.normal_] - mean) / scale
        if len(self.chosen_):
            u = rng.random((len(self.chosen_), num_samples))
            for position in self.categorical_positions_:
                codes[position] = self.choice_values_[position].take(
                    np.searchsorted(self.choice_cdf_[position], u[position], side="right"))
                inverse[self.chosen_[position]] = codes[position]
            if len(self.binned_):  # few bins each: count the cdf steps below u, all binned columns at once
                ub = u[self.binned_position_]
                steps = np.zeros(ub.shape, dtype=np.intp)
                for k in range(self.bin_cdf_.shape[1]):
                    steps += ub >= self.bin_cdf_[:, k : k + 1]
                flat = self.bin_values_.take(steps + self.bin_offsets_)
                codes[self.binned_position_] = flat - self.bin_offsets_
                inverse[self.binned_] = self._truncated_normal(flat, rng)
        return Neighbourhood(inverse, scaled_normal, codes)

    def scaled(self, hood: Neighbourhood, X: np.ndarray) -> np.ndarray:
        """lime's scaled neighbourhood of each row of ``X`` (rows, d, samples): column 0 is the row itself.

        Sampled categories and bins become 1 where they equal the row's own, 0 elsewhere; unbinned numbers
        are standardised. Only this, and the model's answer on the row, depend on the row.
        """
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        Zt = np.empty((len(X), self.d_, hood.inverse.shape[1]))
        if len(self.normal_):
            Zt[:, self.normal_, :] = hood.scaled_normal
            Zt[:, self.normal_, 0] = (X[:, self.normal_] - self.mean_[self.normal_]) / self.scale_[self.normal_]
        if len(self.chosen_):
            first = X[:, self.chosen_].copy()  # the row as samples are compared with it: bin numbers where binned
            for position, cuts, j in zip(self.binned_position_ if len(self.binned_) else (), self.cuts_, self.binned_):
                first[:, position] = np.searchsorted(cuts, X[:, j])
            Zt[:, self.chosen_, :] = hood.codes[None] == first[:, :, None]
            Zt[:, self.chosen_, 0] = 1.0
        return Zt

    def sample(self, x: np.ndarray, num_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """lime's ``__data_inverse`` then scaling, one column per row of the result: (scaled (d, n), model inputs (d, n)).

        Sample 0 is ``x`` itself.
        """
        x = np.asarray(x, dtype=np.float64)
        hood = self.draw(num_samples, rng)
        inverse = hood.inverse
        inverse[:, 0] = x
        return self.scaled(hood, x)[0], inverse

    def neighbourhood(
        self, num_samples: int, rng: np.random.Generator, predict_proba: Callable[[np.ndarray], np.ndarray]
    ) -> Neighbourhood:
        """One draw shared by many rows, with the model's probabilities on it (split over the engine's threads)."""
        hood = self.draw(num_samples, rng)
        inputs = np.ascontiguousarray(hood.inverse[:, 1:].T)
        hood.proba = np.concatenate(rows_in_threads(lambda i: [predict_proba(inputs[i])], len(inputs)))
        return hood

    def explain_shared(
        self,
        X: np.ndarray,
        labels: Sequence[int],
        hood: Neighbourhood,
        proba_rows: np.ndarray | Callable[[np.ndarray], np.ndarray],
        *,
        num_features: int,
        feature_selection: str = "auto",
    ) -> list[LimeFit]:
        """One ``LimeFit`` per row of ``X`` on ``hood``'s samples; ``proba_rows`` is the model (or its answer) on ``X``.

        Row ``i``'s fit is lime's on the samples ``[X[i]] + hood``: exactly what lime computes had its random
        draw been ``hood``. Rows explained with the same ``hood`` share its random draws.
        """
        if hood.proba is None:
            raise ValueError("The neighbourhood has no model probabilities; build it with LimeBatch.neighbourhood.")
        num_samples = hood.inverse.shape[1]
        if callable(proba_rows):
            proba_rows = proba_rows(np.atleast_2d(np.asarray(X, dtype=np.float64)))
        labels = np.asarray(labels, dtype=np.intp)
        chunk = max(1, SAMPLE_CELLS_PER_CHUNK // (num_samples * self.d_))
        fits: list[LimeFit] = []
        for start in range(0, len(X), chunk):
            stop_check()
            stop = min(start + chunk, len(X))
            Zt = self.scaled(hood, X[start:stop])
            y = np.empty((stop - start, num_samples))
            y[:, 0] = proba_rows[np.arange(start, stop), labels[start:stop]]
            y[:, 1:] = hood.proba[:, labels[start:stop]].T
            fits.extend(self._fit(Zt, y, num_features, feature_selection))
        return fits

    def _fit(self, Zt: np.ndarray, y: np.ndarray, num_features: int, feature_selection: str) -> list[LimeFit]:
        distance2 = ((Zt - Zt[:, :, :1]) ** 2).sum(axis=1)
        weights = np.sqrt(np.exp(-distance2 / self.kernel_width_**2))
        return lime_fit(Zt.transpose(0, 2, 1), y, weights, num_features, feature_selection)

    def explain(
        self,
        X: np.ndarray,
        labels: Sequence[int],
        rngs: Sequence[np.random.Generator],
        predict_proba: Callable[[np.ndarray], np.ndarray],
        *,
        num_features: int,
        num_samples: int,
        feature_selection: str = "auto",
    ) -> list[LimeFit]:
        """One ``LimeFit`` per row of ``X``, for that row's ``labels`` entry; one model call per chunk of rows."""
        chunk = max(1, SAMPLE_CELLS_PER_CHUNK // (num_samples * self.d_))
        fits: list[LimeFit] = []
        for start in range(0, len(X), chunk):
            stop_check()
            stop = min(start + chunk, len(X))
            drawn = [self.sample(X[i], num_samples, rngs[i]) for i in range(start, stop)]
            Zt = np.stack([scaled for scaled, _ in drawn])
            inputs = np.concatenate([inverse.T for _, inverse in drawn])
            proba = predict_proba(inputs).reshape(stop - start, num_samples, -1)
            y = proba[np.arange(stop - start), :, np.asarray(labels[start:stop], dtype=np.intp)]
            fits.extend(self._fit(Zt, y, num_features, feature_selection))
        return fits
