"""Clocks for the bench: wall time of a block, and time spent inside a model while something else runs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np

from explanations.ml.explainers.base import Predictor


@dataclass
class ModelClock:
    """Wraps ``predict_proba``; ``seconds`` is the time spent in the model, ``samples`` the rows it was given."""

    predict_proba: Callable[[np.ndarray], np.ndarray]
    seconds: float = 0.0
    samples: int = 0
    calls: int = 0
    inputs: list[np.ndarray] = field(default_factory=list)
    keep_inputs: bool = False

    def __call__(self, X: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        out = self.predict_proba(X)
        self.seconds += time.perf_counter() - started
        self.samples += len(X)
        self.calls += 1
        if self.keep_inputs:
            self.inputs.append(np.array(X, copy=True))
        return out


def clocked(predictor: Predictor, *, keep_inputs: bool = False) -> tuple[Predictor, ModelClock]:
    clock = ModelClock(predictor.predict_proba, keep_inputs=keep_inputs)
    return replace(predictor, predict_proba=clock), clock


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """``with stopwatch() as elapsed: ...`` then ``elapsed[0]`` is the block's wall time in seconds."""
    elapsed = [0.0]
    started = time.perf_counter()
    try:
        yield elapsed
    finally:
        elapsed[0] = time.perf_counter() - started
