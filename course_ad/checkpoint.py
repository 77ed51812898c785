"""Checkpointing: keep a segment's inputs, recompute its inside during the reverse sweep.

A reverse sweep needs every intermediate value of the forward sweep, so memory grows with
the length of the computation. ``checkpoint(f)`` trades time for memory, as the
checkpoints of the lecture notes (and ``jax.checkpoint``, ``torch.utils.checkpoint``) do:
on traced inputs it runs ``f`` on their plain values, records no graph inside it, and adds
one node to the graph whose VJP runs ``f`` again, this time traced, and pulls the cotangent
back through that short-lived graph. A chain of n steps cut into √n checkpointed segments
stores O(√n) values instead of O(n), for about one more forward sweep of time.

    step = checkpoint(lambda x: ad.sin(x) * 0.9 + 0.1 * x)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from .dispatch import Traced, apply, new_level, shape_of, zeros
from .reverse import ReverseDiff
from .rules import Rule

__all__ = ["checkpoint"]


def checkpoint(f: Callable[..., Any]) -> Callable[..., Any]:
    """f, storing only its inputs for the reverse sweep and recomputing the rest there.

    f takes arrays or numbers (traced or not) and returns one array or number. Forward
    mode passes straight through (``jvp`` of f); nested reverse mode (grad of grad) works,
    at the price of one more recomputation per level."""
    rule = _segment_rule(f)

    @functools.wraps(f)
    def checkpointed(*args: Any) -> Any:
        if not any(isinstance(a, Traced) for a in args):
            return f(*args)
        return apply(rule, *args)

    return checkpointed


def _segment_rule(f: Callable[..., Any]) -> Rule:
    """A rule for one segment: its primal is f itself, its VJP re-runs f with tracing."""
    name = getattr(f, "__name__", "f")
    last: dict[str, Any] = {}  # the cotangents of the last pull-back, shared by its inputs

    def primal(*args: Any) -> Any:
        out = f(*args)
        if isinstance(out, tuple | list | dict):
            raise TypeError(f"checkpoint: {name} must return one array or number, not a "
                            f"{type(out).__name__}; checkpoint each output separately")
        return out

    def segment_vjp(g: Any, out: Any, *args: Any, argnum: int) -> Any:
        """x̄ₖ += (∂f/∂xₖ)ᵀ v̄, with f's graph rebuilt for this pull-back only."""
        if not (last.get("g") is g and last.get("out") is out):
            last.clear()
            last.update(g=g, out=out, grads=_pull_back(f, g, args))
        return last["grads"][argnum]

    def segment_jvp(tangents: tuple, out: Any, *args: Any) -> Any:
        """v̇ = Σₖ (∂f/∂xₖ) ẋₖ, by forward mode through f."""
        from .functional import jvp

        return jvp(f, args, tangents)[1]

    return Rule(f"checkpoint({name})", primal, (segment_jvp,), (segment_vjp,), "ckpt",
                rf"v = \operatorname{{{name}}}(x)",
                r"\dot v = \partial f\, \dot x",
                r"\bar x \mathrel{+}= \partial f^\top \bar v \text{ (recomputed)}",
                variadic=True)


def _pull_back(f: Callable[..., Any], g: Any, args: tuple) -> list[Any]:
    """Run f traced at a fresh level and pull g back to every float input."""
    level = new_level()
    inputs = [ReverseDiff(a, level=level) if _float_like(a) else a for a in args]
    out = f(*inputs)
    if isinstance(out, ReverseDiff) and out.level == level:
        out.backward(g)
    return [_gradient(leaf, a) for leaf, a in zip(inputs, args)]


def _gradient(leaf: Any, arg: Any) -> Any:
    if isinstance(leaf, ReverseDiff) and leaf.grad is not None:
        return leaf.grad
    return zeros(shape_of(arg))


def _float_like(value: Any) -> bool:
    if isinstance(value, Traced | float | int) and not isinstance(value, bool):
        return True
    return isinstance(value, np.ndarray | np.floating) and np.result_type(value).kind in "fc"
