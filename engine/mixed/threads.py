"""Keep BLAS single-threaded while the engine runs (its matrices are tiny)."""

from __future__ import annotations

import contextlib
import functools


@functools.lru_cache(maxsize=1)
def _controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()  # scans the loaded libraries once


def single_threaded_blas():
    """Context manager limiting BLAS thread pools to one thread (a no-op without threadpoolctl)."""
    try:
        return _controller().limit(limits=1, user_api="blas")
    except ImportError:
        return contextlib.nullcontext()
