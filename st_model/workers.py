"""Threads for the in-memory path's blockwise work (row blocks of a top-k search,
query blocks of an evaluation, sub-node pairs of the random model, ...).

The blocks are independent and numpy, scipy.fft and BLAS release the GIL in their
array work, so threads over blocks use the machine's cores without copying the
features into other processes. `threads(n)` sets how many for the code inside it
(the in-memory `tfusion fuse` uses the usable CPUs; elsewhere, and in Beam workers
which run their own bundles side by side, it is 1). `pmap` maps in order, so every
result is the same whatever the number of threads; a pmap inside another's worker
runs inline (no nested pools).
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import os
import threading
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")
MAX_THREADS = 8

_count = 1
_inside = threading.local()


def usable_cpus() -> int:
    """CPUs this process may run on (at most MAX_THREADS)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(MAX_THREADS, n or 1))


def current() -> int:
    """Threads pmap uses here: 1 inside a pmap worker or outside `threads`."""
    return 1 if getattr(_inside, "flag", False) else _count


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """Let pmap use n threads inside the block."""
    global _count
    old, _count = _count, max(1, int(n))
    try:
        yield
    finally:
        _count = old


def _marked(fn: Callable[[T], R]) -> Callable[[T], R]:
    def run(item: T) -> R:
        _inside.flag = True
        try:
            return fn(item)
        finally:
            _inside.flag = False
    return run


def pmap(fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
    """map(fn, items) in order over current() threads (lazy when there is one)."""
    n = current()
    if n <= 1:
        yield from map(fn, items)
        return
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        yield from pool.map(_marked(fn), items)
