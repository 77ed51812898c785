"""The cost of the modes: Jacobian chains, their bracketings, and measured times.

f = f_k ∘ … ∘ f_1 with f_i: R^{d_{i-1}} → R^{d_i} has Jacobian J = J_k ⋯ J_1, where J_i is
d_i × d_{i-1}. One convention throughout (code, lectures, explorer): we count the
multiply-adds of multiplying the given Jacobians, a p×q by q×r product costing p·q·r.

- forward, J_k(⋯(J_3(J_2 J_1))): every product carries d_0 columns, d_0 · Σ_{i=2..k} dᵢ dᵢ₋₁;
- reverse, ((J_k J_{k-1})J_{k-2})⋯J_1: every product carries d_k rows,
  d_k · Σ_{i=1..k-1} dᵢ dᵢ₋₁ (the term d₁d₀ is there: reverse mode is not free of d₀);
- the cheapest bracketing is the matrix-chain problem (dynamic programming, O(k³)); it can be
  neither of the two sweeps. On general graphs, optimal Jacobian accumulation is NP-complete
  (Naumann, 2008).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["forward_cost", "reverse_cost", "evaluation_cost", "best_bracketing", "bracketings",
           "Bracketing", "chain_function", "time_jacobians"]


def _check(sizes: Sequence[int]) -> list[int]:
    sizes = [int(d) for d in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must list at least an input and an output width, all ≥ 1; "
                         f"got {sizes}")
    return sizes


def forward_cost(sizes: Sequence[int]) -> int:
    """d₀ · Σ_{i=2..k} dᵢ dᵢ₋₁: multiply-adds of J_k(⋯(J_2 J_1)).

    The d₀ tangent columns ride along every product, J₁ itself is the first block."""
    d = _check(sizes)
    return sum(d[i] * d[i - 1] * d[0] for i in range(2, len(d)))


def reverse_cost(sizes: Sequence[int]) -> int:
    """d_k · Σ_{i=1..k-1} dᵢ dᵢ₋₁: multiply-adds of ((J_k J_{k-1})⋯)J_1.

    The d_k adjoint rows ride along; the last product, with J₁, costs d_k d₁ d₀."""
    d = _check(sizes)
    return sum(d[-1] * d[i] * d[i - 1] for i in range(1, len(d) - 1))


def evaluation_cost(sizes: Sequence[int]) -> int:
    """Σ_{i=1..k} dᵢ dᵢ₋₁: multiply-adds of evaluating the linear chain W_k ⋯ W_1 x itself.

    The yardstick of the cheap gradient principle: for d_k = 1 reverse mode costs about as
    much as this, whatever d₀ (both contain d₁d₀), while forward mode costs d₀ times more."""
    d = _check(sizes)
    return sum(d[i] * d[i - 1] for i in range(1, len(d)))


@dataclass(frozen=True)
class Bracketing:
    cost: int
    text: str  # "(J3 J2) J1"


def best_bracketing(sizes: Sequence[int]) -> Bracketing:
    """The cheapest order to multiply J_k ⋯ J_1 (matrix-chain ordering, dynamic programming)."""
    d = _check(sizes)
    k = len(d) - 1  # number of Jacobians; J_i has shape d[i] × d[i-1]
    cost = [[0] * (k + 1) for _ in range(k + 1)]
    split = [[0] * (k + 1) for _ in range(k + 1)]
    for length in range(2, k + 1):
        for low in range(1, k - length + 2):
            high = low + length - 1  # the product J_high ⋯ J_low
            cost[low][high] = -1
            for mid in range(low, high):  # (J_high ⋯ J_mid+1)(J_mid ⋯ J_low)
                c = cost[low][mid] + cost[mid + 1][high] + d[high] * d[mid] * d[low - 1]
                if cost[low][high] < 0 or c < cost[low][high]:
                    cost[low][high], split[low][high] = c, mid
    def text(low: int, high: int, outer: bool) -> str:
        if low == high:
            return f"J{low}"
        mid = split[low][high]
        inner = f"{text(mid + 1, high, False)} {text(low, mid, False)}"
        return inner if outer else f"({inner})"

    return Bracketing(cost[1][k], text(1, k, True))


def bracketings(sizes: Sequence[int]) -> list[Bracketing]:
    """Every way to bracket J_k ⋯ J_1, cheapest first (Catalan many: 5 for k = 4, 42 for 6).

    Small chains only: it lists them all, to show that forward and reverse are two of many."""
    d = _check(sizes)
    k = len(d) - 1
    if k > 8:
        raise ValueError(f"bracketings: {k} Jacobians have too many bracketings to list; "
                         "use best_bracketing")
    table: dict[tuple[int, int], list[tuple[int, str]]] = {}
    for low in range(1, k + 1):
        table[(low, low)] = [(0, f"J{low}")]
    for length in range(2, k + 1):
        for low in range(1, k - length + 2):
            high = low + length - 1
            table[(low, high)] = [
                (c_left + c_right + d[high] * d[mid] * d[low - 1], f"({t_right} {t_left})")
                for mid in range(low, high)
                for c_left, t_left in table[(low, mid)]
                for c_right, t_right in table[(mid + 1, high)]]
    return sorted((Bracketing(c, t[1:-1]) for c, t in table[(1, k)]),
                  key=lambda b: (b.cost, b.text))


def chain_function(sizes: Sequence[int], seed: int = 0):
    """A chain x ↦ tanh(W_k ⋯ tanh(W_1 x)) with the given widths, and a point to evaluate at."""
    from . import ops

    d = _check(sizes)
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal((d[i], d[i - 1])) / np.sqrt(d[i - 1]) for i in range(1, len(d))]

    def f(x):
        for W in weights:
            x = ops.tanh(W @ x)
        return x

    return f, rng.standard_normal(d[0])


def time_jacobians(sizes: Sequence[int], budget: float = 0.2) -> dict[str, float]:
    """Seconds for jacfwd and jacrev of ``chain_function(sizes)`` (best of a few runs)."""
    from .functional import jacfwd, jacrev

    f, x = chain_function(sizes)
    times = {}
    for name, transform in (("jacfwd", jacfwd), ("jacrev", jacrev)):
        jac = transform(f)
        best, spent = float("inf"), 0.0
        while spent < budget / 2:  # at least one run; half the budget for each transform
            start = time.perf_counter()
            jac(x)
            elapsed = time.perf_counter() - start
            best, spent = min(best, elapsed), spent + elapsed
        times[name] = best
    return times
