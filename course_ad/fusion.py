"""Fusion for the tape's reverse sweep: a log-softmax written from primitives, one adjoint.

A user writes log-softmax as the lectures do, from primitives and stable by its max:

    m = max(x, axis, keepdims=True);  s = x − m;  e = exp(s);  t = sum(e, axis, keepdims=True)
    y = s − log(t)

Statement by statement, the reverse sweep pushes y's adjoint back through all six lines: two
broadcast sums, a division, a product, and the max's arg-max mask, about eleven numpy calls.
Yet y does not depend on m at all (shift x by any c and y is unchanged), so the adjoint that
reaches m is zero up to rounding, and the whole block has the one-line adjoint

    x̄ += ȳ − softmax(x) Σ ȳ,    softmax(x) = e / t,

four numpy calls reading e and t, which the forward sweep computes anyway. The forward
sweep is left as recorded; only the reverse sweep sees the fused statement. This is what an
optimising compiler (XLA for JAX) does with the same code: the user still writes primitives.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .kernels import Kernel
from .registry import Domain, Rule

__all__ = ["fuse_log_softmax", "LOG_SOFTMAX", "LOG_SOFTMAX_RULE"]


def log_softmax_vjp(g, out, x, e, total, *, axis, dst=None):
    """x̄ += v̄ − (e / t) Σ v̄, with e = exp(x − max x) and t = Σ e kept from the forward"""
    share = np.add.reduce(g, axis=axis, keepdims=True)
    np.divide(share, total, out=share)
    spread = np.multiply(e, share, out=dst)
    return np.subtract(g, spread, out=spread)


def _reverse_only(*args: Any, **params: Any) -> Any:  # pragma: no cover - never called
    raise RuntimeError("the fused log-softmax exists for the reverse sweep only")


LOG_SOFTMAX_RULE = Rule(
    "log_softmax", _reverse_only, (None, None, None), (log_softmax_vjp, None, None),
    "log softmax", r"v = x - \log \sum_j e^{x_j}", "",
    r"\bar x \mathrel{+}= \bar v - \operatorname{softmax}(x) \sum_j \bar v_j",
    (Domain(),) * 3)
LOG_SOFTMAX = Kernel(_reverse_only, (log_softmax_vjp, None, None),
                     (frozenset({1, 2}), frozenset(), frozenset()))


def fuse_log_softmax(tape: Any) -> list[Any]:
    """The log-softmax blocks of a tape, each as one statement y = log_softmax(x, e, t).

    A block qualifies when its five inner values (m, s, e, t, log t) are arrays used only
    inside it, so that no other statement, guard or output needs their adjoints."""
    statements = tape.statements
    users: list[list[int]] = [[] for _ in statements]
    for s in statements:
        for j in s.refs():
            users[j].append(s.slot)
    outside = {a.slot for guard in tape.guards for a in guard.operands if _is_ref(a)}
    if _is_ref(tape.output):
        outside.add(tape.output.slot)
    fused = []
    for y in statements:
        block = _match(y, statements)
        if block is None:
            continue
        m, s, e, t, log_t = block
        inner_users = {m.slot: [s.slot], e.slot: [t.slot], t.slot: [log_t.slot],
                       log_t.slot: [y.slot], s.slot: sorted([e.slot, y.slot])}
        if any(sorted(users[k]) != v for k, v in inner_users.items()):
            continue
        if outside & set(inner_users) or not all(v.is_array for v in block):
            continue
        x = s.args[0]
        fused.append(dataclasses.replace(
            y, rule=LOG_SOFTMAX_RULE, args=(x, t.args[0], log_t.args[0]),
            params={"axis": t.params["axis"]},
            arg_shapes=(statements[x.slot].shape, e.shape, t.shape)))
    return fused


def _match(y: Any, statements: list[Any]) -> tuple | None:
    """(m, s, e, t, log t) when y = s − log(t), t = Σ e, e = exp(s), s = x − m, m = max x."""
    if not _op(y, "sub") or not all(_is_ref(a) for a in y.args):
        return None
    s, log_t = (statements[a.slot] for a in y.args)
    if not (_op(log_t, "log") and _is_ref(log_t.args[0])):
        return None
    t = statements[log_t.args[0].slot]
    if not (_op(t, "sum") and t.params.get("keepdims") and _is_ref(t.args[0])):
        return None
    e = statements[t.args[0].slot]
    if not (_op(e, "exp") and _is_ref(e.args[0]) and e.args[0].slot == s.slot):
        return None
    if not (_op(s, "sub") and all(_is_ref(a) for a in s.args)):
        return None
    m = statements[s.args[1].slot]
    if not (_op(m, "max") and m.params.get("keepdims") and _is_ref(m.args[0])
            and m.args[0].slot == s.args[0].slot and m.params.get("axis") == t.params["axis"]
            and t.params["axis"] is not None):
        return None
    return m, s, e, t, log_t


def _op(statement: Any, name: str) -> bool:
    return statement.rule is not None and statement.rule.name == name


def _is_ref(value: Any) -> bool:
    """A reference to another statement's value (constants have no ``slot``)."""
    return hasattr(value, "slot")
