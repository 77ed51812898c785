"""The functional API, shaped like JAX: transformations that take a function, return a function.

``grad``, ``value_and_grad``, ``vjp`` and ``jacrev`` run reverse mode; ``derivative``,
``jvp`` and ``jacfwd`` run forward mode; ``hessian`` and ``hvp`` run forward over reverse.
Each call traces at a fresh level, so the transformations nest: ``grad(grad(f))`` and
``derivative(lambda x: x * derivative(lambda y: x + y)(1.0))`` are right.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import ops
from .dispatch import new_level, primal_value, shape_of, zeros
from .forward import ForwardDiff
from .reverse import ReverseDiff

__all__ = ["grad", "value_and_grad", "derivative", "jvp", "vjp", "jacfwd", "jacrev",
           "hessian", "hvp"]

Argnums = int | Sequence[int]


def value_and_grad(f: Callable[..., Any], argnums: Argnums = 0,
                   has_aux: bool = False) -> Callable[..., Any]:
    """x ↦ (f(x), ∇f(x)) in one reverse sweep: the gradient costs a few evaluations of f.

    ``argnums`` picks the arguments to differentiate (a tuple gives a tuple of gradients);
    with ``has_aux`` f returns ``(value, aux)`` and the result is ``((value, aux), grad)``."""
    many = not isinstance(argnums, int)
    positions = tuple(argnums) if many else (argnums,)

    def value_and_grad_f(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
        level = new_level()
        leaves, args = _trace_args(args, positions, level, "grad")
        result = f(*args, **kwargs)
        out, aux = _split_aux(result, has_aux, "grad")
        if math.prod(shape_of(out)) != 1:
            raise ValueError(
                f"grad: {_name(f)} must return a scalar, but it returned shape {shape_of(out)} "
                "(any shape holding a single number, such as (1,), would do); "
                "use jacrev for a Jacobian or vjp for a vector-Jacobian product"
            )
        traced = _traced_at(out, level, ReverseDiff)
        if traced:
            out.backward()
        grads = tuple(_grad_of(leaf) if traced else _zeros_like(leaf.value) for leaf in leaves)
        value = out.value if traced else out
        return (value, aux) if has_aux else value, grads if many else grads[0]

    return value_and_grad_f


def grad(f: Callable[..., Any], argnums: Argnums = 0, has_aux: bool = False) -> Callable[..., Any]:
    """x ↦ ∇f(x) for a scalar-valued f, by reverse mode (one backward sweep)."""
    both = value_and_grad(f, argnums, has_aux)

    def grad_f(*args: Any, **kwargs: Any) -> Any:
        value, gradient = both(*args, **kwargs)
        return (gradient, value[1]) if has_aux else gradient

    return grad_f


def vjp(f: Callable[..., Any], *primals: Any) -> tuple[Any, Callable[[Any], tuple[Any, ...]]]:
    """(f(x), v̄ ↦ v̄ᵀ J): one forward evaluation, then any number of reverse sweeps."""
    level = new_level()
    leaves, args = _trace_args(primals, tuple(range(len(primals))), level, "vjp")
    out = f(*args)
    traced = _traced_at(out, level, ReverseDiff)

    def vjp_fn(cotangent: Any) -> tuple[Any, ...]:
        if not traced:
            return tuple(_zeros_like(leaf.value) for leaf in leaves)
        out.backward(cotangent)
        return tuple(_grad_of(leaf) for leaf in leaves)

    return (out.value if traced else out), vjp_fn


def jvp(f: Callable[..., Any], primals: Sequence[Any],
        tangents: Sequence[Any]) -> tuple[Any, Any]:
    """(f(x), J ẋ): one forward sweep carrying the tangents ẋ next to the values."""
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: got {len(primals)} primals but {len(tangents)} tangents; give "
                         "one tangent per primal, as tuples")
    level = new_level()
    duals = [ForwardDiff(p, t, level=level) for p, t in zip(primals, tangents)]
    out = f(*duals)
    if _traced_at(out, level, ForwardDiff):
        return out.value, out.grad
    return out, _zeros_like(out)


def derivative(f: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """x ↦ f'(x) for a function of one scalar, by forward mode (one sweep)."""

    def derivative_f(x: Any) -> Any:
        if shape_of(x) != ():
            raise ValueError(f"derivative: x must be a scalar, got shape {shape_of(x)}; use "
                             "grad for a gradient or jacfwd for a Jacobian")
        return jvp(f, (x,), (1.0,))[1]

    return derivative_f


def jacfwd(f: Callable[..., Any], argnums: int = 0) -> Callable[..., Any]:
    """x ↦ ∂f/∂x by forward mode: all n input directions as one batch of tangents.

    The result has shape ``f(x).shape + x.shape``."""

    def jacfwd_f(*args: Any) -> Any:
        x = args[argnums]
        x_shape = shape_of(x)
        n = math.prod(x_shape)
        directions = np.eye(n, dtype=_dtype(x)).reshape((n,) + x_shape)
        level = new_level()
        args = list(args)
        args[argnums] = ForwardDiff(x, directions, level=level)
        out = f(*args)
        if not _traced_at(out, level, ForwardDiff):
            return np.zeros(shape_of(out) + x_shape, _dtype(x))
        out_shape = shape_of(out.value)
        columns = ops.reshape(out.grad, (n, math.prod(out_shape)))
        return ops.reshape(ops.transpose(columns), out_shape + x_shape)

    return jacfwd_f


def jacrev(f: Callable[..., Any], argnums: int = 0) -> Callable[..., Any]:
    """x ↦ ∂f/∂x by reverse mode: one backward sweep per output entry.

    The result has shape ``f(x).shape + x.shape``."""

    def jacrev_f(*args: Any) -> Any:
        x = args[argnums]

        def of_x(x_traced: Any) -> Any:
            return f(*args[:argnums], x_traced, *args[argnums + 1:])

        out, pullback = vjp(of_x, x)
        out_shape = shape_of(out)
        m = math.prod(out_shape)
        seeds = np.eye(m, dtype=_dtype(out)).reshape((m,) + out_shape)
        rows = [pullback(seed)[0] for seed in seeds]
        return ops.reshape(ops.stack(rows), out_shape + shape_of(x))

    return jacrev_f


def hessian(f: Callable[..., Any], argnums: int = 0) -> Callable[..., Any]:
    """x ↦ ∇²f(x), forward over reverse: the Jacobian (forward mode) of the gradient."""
    return jacfwd(grad(f, argnums), argnums)


def hvp(f: Callable[..., Any], x: Any, v: Any) -> Any:
    """∇²f(x) v without forming the Hessian: one forward sweep through the gradient."""
    return jvp(grad(f), (x,), (v,))[1]


def _trace_args(args: Sequence[Any], positions: tuple[int, ...], level: int,
                who: str) -> tuple[list[ReverseDiff], list[Any]]:
    args = list(args)
    leaves = []
    for i in positions:
        if not -len(args) <= i < len(args):
            raise ValueError(f"{who}: argnums {i} is out of range for {len(args)} arguments")
        leaf = ReverseDiff(args[i], level=level)
        leaves.append(leaf)
        args[i] = leaf
    return leaves, args


def _split_aux(result: Any, has_aux: bool, who: str) -> tuple[Any, Any]:
    if not has_aux:
        return result, None
    if not (isinstance(result, tuple) and len(result) == 2):
        raise ValueError(f"{who}: with has_aux=True the function must return (value, aux)")
    return result


def _traced_at(out: Any, level: int, kind: type) -> bool:
    """Is ``out`` a value of this transformation (and not a constant or an outer level's)?"""
    return isinstance(out, kind) and out.level == level


def _grad_of(leaf: ReverseDiff) -> Any:
    return _zeros_like(leaf.value) if leaf.grad is None else leaf.grad


def _zeros_like(value: Any) -> Any:
    return zeros(shape_of(value), value)


def _dtype(x: Any) -> np.dtype:
    """float32 stays float32; everything else computes in float64."""
    dtype = getattr(primal_value(x), "dtype", None)
    return dtype if dtype is not None and dtype.kind == "f" else np.dtype(np.float64)


def _name(f: Callable[..., Any]) -> str:
    return getattr(f, "__name__", "f")
