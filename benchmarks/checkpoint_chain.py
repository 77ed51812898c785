"""(g) checkpointing a chain of 10^5 steps: the gradient's peak memory (tracemalloc) and time,
with a checkpoint every √n steps, against the plain reverse sweep of the same chain."""

from __future__ import annotations

import math
import time
import tracemalloc

import numpy as np

import course_ad as ad

STEPS = 100_000
MEMORY_TARGET = 0.1  # at most 1/10 of the plain sweep's peak
TIME_TARGET = 2.0  # at no more than twice its time


def step(x):
    return ad.tanh(x) * 0.99


def plain(x):
    for _ in range(STEPS):
        x = step(x)
    return ad.sum(x)


def checkpointed(x):
    every = math.isqrt(STEPS)
    segment = ad.checkpoint(_segment(every))
    for _ in range(STEPS // every):
        x = segment(x)
    return ad.sum(_segment(STEPS % every)(x))


def _segment(n):
    def segment(x):
        for _ in range(n):
            x = step(x)
        return x
    return segment


def _timed(f, x) -> tuple[float, object]:
    best, grad = float("inf"), None
    for _ in range(2):
        start = time.perf_counter()
        grad = ad.grad(f)(x)
        best = min(best, time.perf_counter() - start)
    return best, grad


def _peak(f, x) -> int:
    tracemalloc.start()
    try:
        ad.grad(f)(x)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def run() -> list[dict]:
    x = np.linspace(-1.0, 1.0, 8)
    t_plain, g_plain = _timed(plain, x)
    t_cut, g_cut = _timed(checkpointed, x)
    assert np.allclose(g_plain, g_cut, rtol=1e-12, atol=0)
    m_plain, m_cut = _peak(plain, x), _peak(checkpointed, x)
    bench = f"(g) checkpoint chain n={STEPS:,}"
    every = math.isqrt(STEPS)
    return [
        {"bench": bench, "case": "plain reverse sweep: time", "time": t_plain, "ratio": 1.0,
         "vs": "plain", "target": None},
        {"bench": bench, "case": f"checkpoint every {every}: time", "time": t_cut,
         "ratio": t_cut / t_plain, "vs": "plain", "target": TIME_TARGET},
        {"bench": bench, "case": f"peak memory {m_cut / 2**20:.1f} vs {m_plain / 2**20:.0f} MiB",
         "time": t_cut, "ratio": m_cut / m_plain, "vs": "plain", "target": MEMORY_TARGET},
    ]
