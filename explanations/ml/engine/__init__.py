"""Batch engines behind the explainers: the same algorithms as lime, anchor-exp and shap, computed for many rows at once.

The reference libraries explain one row at a time and spend most of it outside the model. These modules
sample for a batch of rows, call the model once on the stacked samples, and solve the per-row problems
with vectorised linear algebra: ``lime`` (one shared draw of samples per job, or one per row), ``anchors``,
``kernel_shap`` (with ``rbf_svc``'s exact shortcut for RBF SVMs) and ``tree_shap`` (path-dependent TreeSHAP,
compiled). Random draws come from streams seeded by the job's seed and the row (``row_seed``), so a row's
explanation does not depend on which rows share its batch, nor on how many threads share the work
(``rows_in_threads``). Long loops call ``stop_check()`` between their chunks, so a cancelled job stops within
seconds (``stop_check_set``). No Django here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from contextvars import ContextVar, copy_context
from typing import TypeVar

import numpy as np

T = TypeVar("T")

STOP_CHECK_SECONDS = 0.5  # while threads work, the calling thread checks for a stop this often


class JobStopped(BaseException):
    """The work was called off (its job was cancelled): unwind now, quietly.

    A ``BaseException``, like ``KeyboardInterrupt``, so the ``except Exception`` around model calls and
    optional metrics does not swallow it.
    """


def _no_stop() -> None:
    return None


_stop_check: ContextVar[Callable[[], None]] = ContextVar("stop_check", default=_no_stop)


@contextmanager
def stop_check_set(check: Callable[[], None]) -> Iterator[None]:
    """Inside, ``stop_check()`` calls ``check``, which raises ``JobStopped`` when the work must end (cheaply: it is
    called between every chunk of every engine loop)."""
    token = _stop_check.set(check)
    try:
        yield
    finally:
        _stop_check.reset(token)


def stop_check() -> None:
    """Raise ``JobStopped`` if the caller's work was called off; a no-op outside ``stop_check_set``."""
    _stop_check.get()()


def engine_threads() -> int:
    """Threads an explain call may spread its rows over: ``EXPLAINER_ENGINE_THREADS``, else every core this process may use.

    The heavy parts (tree traversal, BLAS, numpy on large arrays) release the GIL, so a job on an otherwise idle
    2-core worker runs about 1.6-1.7 times faster on two threads. Set 1 where every core already runs its own busy
    worker process.
    """
    configured = int(os.environ.get("EXPLAINER_ENGINE_THREADS", "0") or 0)
    if configured > 0:
        return configured
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def rows_in_threads(work: Callable[[np.ndarray], Sequence[T]], n_rows: int, *, threads: int | None = None) -> list[T]:
    """``work(indices)`` on contiguous slices of ``range(n_rows)`` in threads; the results concatenated in row order.

    ``work`` must be safe to run concurrently (no global random state). Each row draws from its own random
    stream, so the answer does not depend on the number of threads.
    """
    threads = min(threads or engine_threads(), n_rows)
    if threads < 2:
        return list(work(np.arange(n_rows)))
    slices = np.array_split(np.arange(n_rows), threads)
    with ThreadPoolExecutor(threads, thread_name_prefix="explain") as pool:
        # Each slice runs in a copy of the caller's context, so its stop check goes along; the caller keeps
        # checking while it waits (the check may ask a database only from the thread that made it).
        futures = [pool.submit(copy_context().run, work, rows) for rows in slices]
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=STOP_CHECK_SECONDS, return_when=FIRST_EXCEPTION)
            if any(future.exception() is not None for future in done):
                break
            stop_check()
        return [item for future in futures for item in future.result()]
