"""(d) backward time per node at 10^4 and 10^6 nodes: the sweep must stay linear."""

from __future__ import annotations

from course_ad import ReverseDiff

from .harness import clock


def chain(n: int) -> ReverseDiff:
    x = ReverseDiff(1.0)
    y = x
    for _ in range(n):
        y = y * 1.0000001
    return y


def backward_seconds(n: int, repeats: int) -> float:
    best = float("inf")
    y = chain(n)
    for _ in range(repeats):
        start = clock()
        y.backward()
        best = min(best, clock() - start)
    return best


def run() -> list[dict]:
    small = backward_seconds(10**4, repeats=30) / 10**4
    large = backward_seconds(10**6, repeats=3) / 10**6
    return [
        {"bench": "(d) backward per node", "case": "10^4 nodes", "time": small, "ratio": 1.0,
         "vs": "10^4", "target": None},
        {"bench": "(d) backward per node", "case": "10^6 nodes", "time": large,
         "ratio": large / small, "vs": "10^4", "target": 2.0},
    ]
