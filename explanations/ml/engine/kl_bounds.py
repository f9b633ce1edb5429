"""The KL-LUCB confidence bounds of anchor-exp's ``AnchorBaseBeam``, compiled (``anchors`` asks for them hundreds of
times per row, on a dozen candidates at a time).

``kl_upper``/``kl_lower`` are ``dup_bernoulli``/``dlow_bernoulli``: the same clipping and the same 16 bisection
steps. ``lucb_gap`` is one step of ``AnchorBaseBeam.lucb``: the candidates outside the current top ``top_n`` (in
``order``, ``argsort`` of the means) and inside it, the one of each whose bound is most in the way, and the gap.
"""

from __future__ import annotations

import math

import numpy as np

from explanations.ml.engine.compiled import njit


@njit(signature="float64(float64, float64)")
def kl_bernoulli(p, q):
    p = min(0.9999999999999999, max(0.0000001, p))
    q = min(0.9999999999999999, max(0.0000001, q))
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


@njit(signature="float64(float64, float64, float64, float64)")
def _bisect(p, level, inside, outside):
    """16 halvings of [``inside``, ``outside``] towards the q where KL(p || q) crosses ``level``; the outside end."""
    for _ in range(16):
        mid = (inside + outside) / 2.0
        if kl_bernoulli(p, mid) > level:
            outside = mid
        else:
            inside = mid
    return outside


@njit(signature="float64(float64, float64)")
def kl_upper(p, level):
    return _bisect(p, level, p, min(min(1.0, p + math.sqrt(level / 2.0)), 1.0))


@njit(signature="float64(float64, float64)")
def kl_lower(p, level):
    return _bisect(p, level, p, max(min(1.0, p - math.sqrt(level / 2.0)), 0.0))


@njit(signature="Tuple((int64, int64, float64))(float64[:], float64[:], int64[:], int64, float64)")
def lucb_gap(means, n_samples, order, top_n, beta):
    """(``ut``, ``lt``, ``ub[ut] - lb[lt]``): the outsider with the highest upper bound, the insider with the lowest."""
    split = len(order) - top_n
    ut, best_ub = order[0], -np.inf
    for k in range(split):
        f = order[k]
        ub = kl_upper(means[f], beta / n_samples[f])
        if ub > best_ub:
            ut, best_ub = f, ub
    lt, best_lb = order[split], np.inf
    for k in range(split, len(order)):
        f = order[k]
        lb = kl_lower(means[f], beta / n_samples[f])
        if lb < best_lb:
            lt, best_lb = f, lb
    return ut, lt, best_ub - best_lb
