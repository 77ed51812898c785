"""Memory planning for a tape: give every stored value a buffer, reusing buffers by liveness.

A replayed tape runs its statements at fixed times: the forward sweep at times 0 … n-1, the
seed at n, the reverse sweep at n+1 … 2n. Each stored value (a primal vᵢ or an adjoint v̄ᵢ)
is *live* from the time it is first written to the time it is last read. Two values may share
one buffer only if their lives do not overlap: writing a value into a buffer whose previous
value a later statement still reads is exactly the overwriting hazard of the lecture notes.

``assign`` is the classic interval-partitioning greedy: values in order of first write, each
taking a free buffer of its size and dtype, or a new one. A buffer is free at time t once
its last occupant was last read *before* t (strictly: a statement never writes its result
into a buffer it reads).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Lifetime", "MemoryPlan", "assign", "check"]


@dataclass
class Lifetime:
    """One stored value: its name for the report, its layout, and when it is live."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    start: int  # the time it is first written
    end: int  # the time it is last read
    in_place: bool = False  # one elementwise ufunc writes it: it may take a dying input's buffer

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize


@dataclass
class MemoryPlan:
    """Which buffer each value lives in, and what that saves."""

    lifetimes: list[Lifetime]
    buffer_of: list[int]  # per lifetime: its buffer's number
    buffers: list[tuple[int, np.dtype]] = field(default_factory=list)  # (size, dtype)
    notes: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(size * np.dtype(dtype).itemsize for size, dtype in self.buffers)

    @property
    def bytes_without_reuse(self) -> int:
        return sum(lt.nbytes for lt in self.lifetimes)

    def occupants(self, buffer: int) -> list[Lifetime]:
        return [lt for lt, b in zip(self.lifetimes, self.buffer_of) if b == buffer]

    def summary(self) -> str:
        n, b = len(self.lifetimes), len(self.buffers)
        saved = self.bytes_without_reuse - self.bytes
        return (f"memory plan: {n} stored values in {b} buffers, {_size(self.bytes)} "
                f"(without reuse {_size(self.bytes_without_reuse)}, saved {_size(saved)})")

    def __repr__(self) -> str:
        lines = [self.summary()]
        for i, (size, dtype) in enumerate(self.buffers):
            who = ", ".join(f"{lt.name}[{lt.start}..{lt.end}]" for lt in self.occupants(i))
            lines.append(f"  buffer {i}: {size} × {np.dtype(dtype).name}: {who}")
        lines += [f"  {note}" for note in self.notes]
        return "\n".join(lines)


def assign(lifetimes: list[Lifetime]) -> MemoryPlan:
    """Buffers for the values, reused when their lives do not overlap (greedy by start)."""
    order = sorted(range(len(lifetimes)), key=lambda i: (lifetimes[i].start, i))
    buffer_of = [-1] * len(lifetimes)
    buffers: list[tuple[int, np.dtype]] = []
    free_after: list[int] = []  # per buffer: the last read of its current occupant
    for i in order:
        lt = lifetimes[i]
        key = (math.prod(lt.shape), np.dtype(lt.dtype))
        chosen = None
        for b, (size, dtype) in enumerate(buffers):
            if (size, dtype) == key and _reusable(free_after[b], lt.start, lt.in_place):
                chosen = b
                break
        if chosen is None:
            buffers.append(key)
            free_after.append(lt.end)
            chosen = len(buffers) - 1
        else:
            free_after[chosen] = max(free_after[chosen], lt.end)
        buffer_of[i] = chosen
    return MemoryPlan(lifetimes, buffer_of, buffers)


def check(plan: MemoryPlan) -> None:
    """Raise if two values share a buffer while both are live (the overwriting hazard)."""
    for b in range(len(plan.buffers)):
        lives = sorted(plan.occupants(b), key=lambda lt: lt.start)
        for before, after in zip(lives, lives[1:]):
            if after.start < before.end or (after.start == before.end and not after.in_place):
                raise AssertionError(
                    f"memory plan: {after.name} is written into buffer {b} at time "
                    f"{after.start} while {before.name} is still read there until time "
                    f"{before.end}"
                )


def _reusable(last_read: int, first_write: int, in_place: bool = False) -> bool:
    """A buffer can take a new value once every read of the old one has happened, or, for
    one elementwise ufunc, at the very statement that reads the old value for the last time
    (numpy reads each element before it writes it, and copies where operands overlap)."""
    return last_read < first_write or (in_place and last_read == first_write)


def _size(nbytes: int) -> str:
    if nbytes < 1 << 10:
        return f"{nbytes} B"
    if nbytes < 1 << 20:
        return f"{nbytes / 1024:.1f} KiB"
    return f"{nbytes / (1 << 20):.2f} MiB"
