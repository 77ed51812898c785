"""Timing that survives a busy 2-core machine: CPU time, interleaved rounds, best round."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import time
from collections.abc import Callable
from contextlib import contextmanager

ROUNDS = 9


def clock() -> float:
    """CPU seconds of this process (all its threads, user and system: page faults count).

    Every benchmark here runs on one thread, so on an idle machine this equals the wall
    time; on a shared one it leaves out the time other processes hold the cores."""
    return time.process_time()


def best_times(candidates: dict[str, Callable[[], object]], seconds: float = 0.3,
               rounds: int = ROUNDS) -> dict[str, float]:
    """Seconds per call of each candidate: the fastest of ``rounds`` interleaved rounds.

    Interleaving means a burst of load on the machine slows every candidate alike; the
    fastest round is the one least disturbed, the usual estimator for micro-benchmarks.
    Each candidate starts on a collected heap: otherwise one candidate's cyclic garbage
    (micrograd's graphs are cycles) is freed, and paid for, inside the next one's time."""
    repeats = {}
    for name, fn in candidates.items():
        fn()  # warm up caches and lazy imports
        start = clock()
        fn()
        once = max(clock() - start, 1e-7)
        repeats[name] = max(1, int(seconds / rounds / once))
    best = {name: float("inf") for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            n = repeats[name]
            gc.collect()
            start = clock()
            for _ in range(n):
                fn()
            best[name] = min(best[name], (clock() - start) / n)
    return best


@contextmanager
def one_blas_thread():
    """Pin BLAS to one thread: ratios then measure our overhead, not thread scheduling."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def steady_allocator() -> str:
    """Keep freed memory in the process (glibc): allocator tuning, for labelled figures only.

    By default glibc hands megabyte-sized buffers back to the kernel when they are freed and
    page-faults them in again on the next step (about 900 faults and 2 ms per step of the
    B=256 MLP, for numpy and every engine alike). Raising the mmap and trim thresholds makes
    reuse fault-free. A user does not have this by default, so the headline figures never
    call it; ``python -m benchmarks --tuned`` does, in a process of its own."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 64 << 20) and libc.mallopt(m_trim_threshold, 256 << 20)
    except (OSError, AttributeError, TypeError):
        ok = False
    return "glibc keeps freed memory" if ok else "default allocator"


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:8.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:8.2f} ms"
    return f"{seconds:8.2f} s "
