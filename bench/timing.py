"""Clocks for the bench: wall time of a block, and time spent inside a model while something else runs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np

from explanations.ml.explainers.base import ClassProbabilities, Predictor


@dataclass
class ModelClock:
    """Wraps ``predict_proba`` (and its ``labels``, where it is a ``ClassProbabilities``): ``seconds`` is the time spent
    in the model, ``samples`` the rows it was given; with ``keep_inputs``, ``inputs`` holds every call's rows and
    ``kinds`` whether it asked for probabilities (``"proba"``) or classes (``"label"``)."""

    predict_proba: Callable[[np.ndarray], np.ndarray]
    seconds: float = 0.0
    samples: int = 0
    calls: int = 0
    inputs: list[np.ndarray] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    keep_inputs: bool = False

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return self.timed(self.predict_proba, X, "proba")

    def timed(self, predict: Callable[[np.ndarray], np.ndarray], X: np.ndarray, kind: str) -> np.ndarray:
        started = time.perf_counter()
        out = predict(X)
        self.seconds += time.perf_counter() - started
        self.samples += len(X)
        self.calls += 1
        if self.keep_inputs:
            self.inputs.append(np.array(X, copy=True))
            self.kinds.append(kind)
        return out


def clocked(predictor: Predictor, *, keep_inputs: bool = False) -> tuple[Predictor, ModelClock]:
    clock = ModelClock(predictor.predict_proba, keep_inputs=keep_inputs)
    labels = getattr(predictor.predict_proba, "labels", None)
    timed = clock if labels is None else ClassProbabilities(clock, lambda X: clock.timed(labels, X, "label"))
    return replace(predictor, predict_proba=timed), clock


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """``with stopwatch() as elapsed: ...`` then ``elapsed[0]`` is the block's wall time in seconds."""
    elapsed = [0.0]
    started = time.perf_counter()
    try:
        yield elapsed
    finally:
        elapsed[0] = time.perf_counter() - started
