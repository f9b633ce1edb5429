"""numba for the engines' compiled kernels (``tree_shap``, ``kl_bounds``): workers import these, the web never does.

numba comes with shap. A kernel is compiled without the GIL and cached on disk, beside its module or in
``NUMBA_CACHE_DIR``, where a location is writable (else compiled once per process). Given a signature, it is
compiled (or loaded from the cache) when its module is imported, not on its first call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

try:
    import numba
except ImportError:  # pragma: no cover - shap requires numba
    numba = None

F = TypeVar("F", bound=Callable)


def njit(function: F | None = None, *, signature: str | None = None):
    """``@njit`` or ``@njit(signature=...)``; the plain Python function where numba is missing."""

    def compile_(function: F) -> F:
        if numba is None:
            return function
        args = (signature,) if signature else ()
        try:
            return numba.njit(*args, nogil=True, cache=True)(function)
        except RuntimeError:  # no writable cache location: compile in each process instead
            return numba.njit(*args, nogil=True)(function)

    return compile_(function) if function is not None else compile_
