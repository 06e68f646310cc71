"""The one progress logger of every command: lines on stderr (never stdout, which
may carry results), each with the seconds since start."""
from __future__ import annotations

import sys
import time
from typing import Callable

_T0 = time.monotonic()
QUIET = False


def log(message: str) -> None:
    """One progress line on stderr, with seconds since import."""
    if not QUIET:
        print(f"[tfusion {time.monotonic() - _T0:7.1f}s] {message}", file=sys.stderr,
              flush=True)


def counter(what: str, every: float = 5.0) -> Callable[[int, int], None]:
    """A progress(done, total) callback logging at most every `every` seconds."""
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - last[0] >= every:
            last[0] = now
            log(f"{what}: {done}/{total}")
    return report


def process_age_s() -> float:
    """Wall seconds since this process started (Linux /proc, 10 ms resolution; the
    seconds since this module's import elsewhere)."""
    import os
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.monotonic() - _T0


def peak_rss_gb() -> float:
    """This process's peak resident memory so far, in GB (Linux: ru_maxrss in KiB)."""
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
