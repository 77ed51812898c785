"""Fused adjoints for log-softmax and log-sum-exp written from primitives.

A user writes them as the lectures do, from primitives and stable by the max:

    m = max(x, axis, keepdims=True);  s = x − m;  e = exp(s);  t = sum(e, axis)
    log-softmax  y = s − log(t)            (t with keepdims=True)
    log-sum-exp  y = log(t) + m[..., 0]    (t without keepdims; m's kept axis dropped)

Statement by statement, a reverse sweep pushes ȳ back through all of them: broadcast sums, a
division, a product, and the max's arg-max mask, about a dozen numpy calls. Yet y does not
depend on m at all (shift x by any c and y is unchanged), so the adjoint reaching m through
these paths is zero up to rounding, and all paths from y to x together are one line each:

    log-softmax  x̄ += ȳ − (e / t) Σ ȳ          log-sum-exp  x̄ += ȳ (e / t)

reading e and t, which the forward sweep computed anyway. A sweep that recognises y adds this
to x̄ and sends nothing into the block; by linearity of the chain rule the other uses of the
block's values (if the program has any) still send their own adjoints through it. The forward
sweep is untouched. This is what an optimising compiler (XLA for JAX) does with the same
code: the user still writes primitives, and the gradient is the same to rounding.

A sweep that gives every node its adjoint (``backward()``: pictures show them) still pushes
ȳ through the block statement by statement, but not into m. The adjoints that reach m from
s (and from m[..., 0]) are ȳ's share alone when nothing else uses s, e, t, log(t) and
m[..., 0], and then they sum to exactly zero, so those edges are skipped
(``cancelled_edges``). m's adjoint is an exact 0 instead of rounding noise, and the max's
arg-max mask is never built.

One matcher serves the tape (its statements) and the eager engine (its graph nodes): both
are given as ``op(v)``, the rule name of a value (None for a constant or an input), and
``inputs(v)``, the values it was computed from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from .kernels import Kernel, kept_shape
from .registry import Domain, Rule

__all__ = ["Block", "BLOCK_ENDS", "match", "cancelled_edges", "fuse_tape", "log_softmax_vjp",
           "logsumexp_vjp", "LOG_SOFTMAX", "LOGSUMEXP"]


class Block:
    """The kinds of fused block: which formula its adjoint uses."""

    LOG_SOFTMAX = "log_softmax"
    LOGSUMEXP = "logsumexp"


BLOCK_ENDS = frozenset({"sub", "add"})  # the operations a block can end in


class Match(NamedTuple):
    kind: str  # Block.LOG_SOFTMAX or Block.LOGSUMEXP
    x: Any  # the block's input
    e: Any  # exp(x − max x), kept by the forward sweep
    t: Any  # its sum over ``axis``
    axis: tuple[int, ...]
    shift: Any = None  # s = x − m, whose adjoint from y sums to zero over ``axis``
    drop: Any = None  # m[..., 0] of a log-sum-exp (None for a log-softmax)
    log_t: Any = None  # log(t)


def log_softmax_vjp(g, out, x, e, total, *, axis, dst=None):
    """x̄ += v̄ − (e / t) Σ v̄, with e = exp(x − max x) and t = Σ e kept from the forward"""
    share = np.add.reduce(g, axis=axis, keepdims=True)
    np.divide(share, total, out=share)
    spread = np.multiply(e, share, out=dst)
    return np.subtract(g, spread, out=spread)


def logsumexp_vjp(g, out, x, e, total, *, axis, dst=None):
    """x̄ += v̄ e / t, v̄ and t given their reduced axes back (softmax times the adjoint)"""
    share = np.divide(g, total).reshape(kept_shape(e.shape, axis))
    return np.multiply(e, share, out=dst)


def match(y: Any, op: Callable[[Any], str | None],
          inputs: Callable[[Any], tuple]) -> Match | None:
    """The fused block that ends in y, if y ends one (see the module's docstring)."""
    kind = op(y)
    if kind not in BLOCK_ENDS:
        return None
    first, second = inputs(y)
    if kind == "sub":  # y = s − log(t)
        s, log_t, drop = first, second, None
    elif op(first) == "log":  # y = log(t) + m[..., 0]
        log_t, drop, s = first, second, None
    else:  # y = m[..., 0] + log(t)
        drop, log_t, s = first, second, None
    if op(log_t) != "log":
        return None
    (t,) = inputs(log_t)[:1]
    if op(t) != "sum":
        return None
    e = inputs(t)[0]
    if op(e) != "exp":
        return None
    shift = inputs(e)[0]
    if s is not None and shift is not s:
        return None
    if op(shift) != "sub":
        return None
    x, m = inputs(shift)
    if op(m) != "max" or inputs(m)[0] is not x or x is None:
        return None
    axis = _params(m).get("axis")
    if axis is None or not _params(m).get("keepdims") or _params(t).get("axis") != axis:
        return None
    if s is not None:  # log-softmax: t must keep its axes to broadcast against s
        return (Match(Block.LOG_SOFTMAX, x, e, t, axis, shift, None, log_t)
                if _params(t).get("keepdims") else None)
    if _params(t).get("keepdims") or not _drops_kept_axes(drop, m, axis, op, inputs):
        return None
    return Match(Block.LOGSUMEXP, x, e, t, axis, shift, drop, log_t)


def cancelled_edges(found: Match, uses: Callable[[Any], int]) -> tuple[tuple[Any, int], ...]:
    """The edges (node, argument position) into m whose adjoints sum to zero: s → m, and
    m[..., 0] → m of a log-sum-exp, when ``uses(v)`` (how many arguments v is) shows that
    nothing outside the block reads s, e, t, log t or m[..., 0].

    s̄ sums to zero over ``axis`` only when ȳ alone reaches it: another use of e, t or log t
    (``sum(e)`` beside the log-softmax) adds a share that does not cancel, and m needs it."""
    inside = 2 if found.kind == Block.LOG_SOFTMAX else 1  # s feeds exp (and y − log t)
    if uses(found.shift) != inside or (found.drop is not None and uses(found.drop) != 1):
        return ()
    if uses(found.e) != 1 or uses(found.t) != 1 or uses(found.log_t) != 1:
        return ()
    if found.drop is None:
        return ((found.shift, 1),)
    return ((found.shift, 1), (found.drop, 0))


def _drops_kept_axes(r: Any, m: Any, axis: tuple[int, ...], op: Callable,
                     inputs: Callable) -> bool:
    """Is r = m with its kept axes dropped (m[:, 0], m.reshape(n), squeeze)?"""
    sources = inputs(r) if r is not None else ()
    if not sources or sources[0] is not m:  # by identity: a node's == compares values
        return False
    name = op(r)
    if name in ("reshape", "squeeze"):
        return True  # both keep every entry: with m's kept axes of size 1, r is m reduced
    if name != "getitem":
        return False
    index = _params(r).get("index")
    if type(index) is not tuple:
        index = (index,)
    full = slice(None)
    return all((i == 0 if k in axis else i == full) for k, i in enumerate(index)) and \
        len(index) >= max(axis) + 1 and all(type(i) in (int, slice) for i in index)


def _params(v: Any) -> dict:
    return v.params


# --------------------------------------------------------------------------------------
# The tape: fused statements for its reverse sweep
# --------------------------------------------------------------------------------------


def _reverse_only(*args: Any, **params: Any) -> Any:  # pragma: no cover - never called
    raise RuntimeError("a fused block exists for the reverse sweep only")


def _fused_rule(name: str, vjp: Callable, latex: str) -> Rule:
    return Rule(name, _reverse_only, (None, None, None), (vjp, None, None), name, "", "",
                latex, (Domain(),) * 3)


LOG_SOFTMAX_RULE = _fused_rule(
    "log_softmax", log_softmax_vjp,
    r"\bar x \mathrel{+}= \bar v - \operatorname{softmax}(x) \sum_j \bar v_j")
LOGSUMEXP_RULE = _fused_rule(
    "logsumexp", logsumexp_vjp, r"\bar x \mathrel{+}= \bar v \operatorname{softmax}(x)")
_READS = (frozenset({1, 2}), frozenset(), frozenset())  # the fused VJP reads e and t
LOG_SOFTMAX = Kernel(_reverse_only, (log_softmax_vjp, None, None), _READS)
LOGSUMEXP = Kernel(_reverse_only, (logsumexp_vjp, None, None), _READS)
KERNEL_OF = {Block.LOG_SOFTMAX: LOG_SOFTMAX, Block.LOGSUMEXP: LOGSUMEXP}
RULE_OF = {Block.LOG_SOFTMAX: LOG_SOFTMAX_RULE, Block.LOGSUMEXP: LOGSUMEXP_RULE}


def fuse_tape(tape: Any) -> list[tuple[Any, Kernel]]:
    """The fused blocks of a tape, each as (statement y = block(x, e, t), its kernel).

    Only array blocks whose inner values no guard reads and that are not the output."""
    statements = tape.statements

    def op(v):
        return None if v is None or v.rule is None else v.rule.name

    def inputs(v):
        return tuple(statements[a.slot] if hasattr(a, "slot") else None for a in v.args)

    outside = {a.slot for guard in tape.guards for a in guard.operands if hasattr(a, "slot")}
    if hasattr(tape.output, "slot"):
        outside.add(tape.output.slot)
    fused = []
    for y in statements:
        found = match(y, op, inputs)
        if found is None or not (found.x.is_array and found.e.is_array and y.is_array):
            continue
        if outside & {found.e.slot, found.t.slot}:
            continue
        ref = {a.slot: a for s in statements for a in s.args if hasattr(a, "slot")}
        args = (ref[found.x.slot], ref[found.e.slot], ref[found.t.slot])
        statement = dataclasses.replace(
            y, rule=RULE_OF[found.kind], args=args, params={"axis": found.axis},
            arg_shapes=(found.x.shape, found.e.shape, found.t.shape))
        fused.append((statement, KERNEL_OF[found.kind]))
    return fused
