"""LIME's submodular pick (Ribeiro et al., 2016, section 4): a few rows whose explanations cover the model.

Given an explanation matrix W (rows x features, |attribution|), a feature's global importance is
sqrt(sum over rows of W), and a set of rows covers the importance of every feature one of them uses.
Greedily adding the row that covers the most new importance gives a (1 - 1/e) approximation.
"""

from __future__ import annotations

import numpy as np


def representative_rows_pick(weights: np.ndarray, budget: int) -> list[int]:
    """Indices into ``weights``'s rows, best first; stops early when no row adds coverage."""
    weights = np.abs(np.atleast_2d(np.asarray(weights, dtype=np.float64)))
    if weights.size == 0:
        return []
    importance = np.sqrt(weights.sum(axis=0))
    used = weights > 0
    covered = np.zeros(weights.shape[1], dtype=bool)
    picked: list[int] = []
    for _ in range(min(budget, len(weights))):
        gains = ((used & ~covered) * importance).sum(axis=1)
        gains[picked] = -1.0
        best = int(np.argmax(gains))
        if gains[best] <= 0:
            break
        picked.append(best)
        covered |= used[best]
    return picked
