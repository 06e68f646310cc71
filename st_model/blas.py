"""One BLAS thread for the blockwise scoring: its matrix products are small
(a few hundred rows × 64–512 dimensions × ~1k columns), and on a shared machine a
multi-threaded BLAS spends more time waiting for its threads than multiplying
(the Market harness's re-ranking search: 12.8 s of matrix products with the default
threads under load, 0.7 s with one)."""
from __future__ import annotations

import contextlib
from typing import Iterator


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Limit BLAS to one thread inside the block (a no-op without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:           # pragma: no cover - part of the pinned stack
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
