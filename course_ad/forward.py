"""Forward mode: dual numbers that carry a tangent next to every value.

``ForwardDiff(value, grad)`` is the pair (v, v̇). Each primitive computes its primal and
sums the tangent contributions of its inputs from the JVP rules: v̇ = Σᵢ ∂φ/∂uᵢ · u̇ᵢ, the
tangent column of an evaluation trace. A tangent may carry a leading batch axis, one
direction per row, so a whole Jacobian comes out of one vectorised pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import ops
from .dispatch import (
    Traced,
    as_value,
    complex_error,
    evaluate,
    is_complex,
    primal,
    shape_of,
    zeros,
)
from .ops import Operators

__all__ = ["ForwardDiff"]


class ForwardDiff(Operators, Traced):
    """A value and its tangent: ``ForwardDiff(2.0, 1.0)`` is x = 2 seeded with ẋ = 1.

    ``grad`` (also ``tangent``) is dv/dt along the seeded direction; it defaults to zeros, a
    constant. A tangent of shape ``(k,) + value.shape`` is a batch of k directions.
    ``level`` tags the perturbation: values of different levels never mix up, which keeps
    nested derivatives right (the functional API picks fresh levels for you).
    """

    __slots__ = ("value", "grad", "_rank")

    def __init__(self, value: Any, grad: Any = None, *, level: int = 0) -> None:
        self.value = as_value(value, "ForwardDiff")
        shape = shape_of(self.value)
        if grad is None:
            grad = zeros(shape, self.value)
        else:
            grad = as_value(grad, "ForwardDiff tangent")
            tangent_shape = shape_of(grad)
            if tangent_shape != shape and tangent_shape[1:] != shape:
                raise ValueError(
                    f"ForwardDiff: the tangent has shape {tangent_shape} but the value has shape "
                    f"{shape}; give a tangent of the value's shape, or (k,) + {shape} for a "
                    "batch of k directions"
                )
        self.grad = grad
        self._rank = 2 * level

    @property
    def tangent(self) -> Any:
        """v̇, the directional derivative carried along (the same as ``grad``)."""
        return self.grad

    @property
    def level(self) -> int:
        return self._rank // 2

    def __repr__(self) -> str:
        return f"ForwardDiff(value={_show(self.value)}, grad={_show(self.grad)})"

    def _apply(self, rule: Any, args: tuple, params: dict) -> ForwardDiff:
        """Primal of the rule on the values; tangent = sum of the inputs' JVP contributions."""
        rank = self._rank
        primals = list(args)
        tangents: list[Any] = [None] * len(args)
        nested = False
        for i, a in enumerate(args):
            if isinstance(a, Traced):
                if a._rank == rank:  # the same rank is the same engine at the same level
                    primals[i] = value = a.value
                    tangents[i] = a.grad
                    nested = nested or isinstance(value, Traced)  # traced by an outer level
                else:
                    nested = True
            elif type(a) is not float and (a.dtype.kind == "c" if type(a) is np.ndarray
                                           else is_complex(a)):  # only constants: leaves are real
                raise complex_error(rule.name, a)
        out = (evaluate if nested else primal)(rule, primals, params)
        out_shape = shape_of(out)
        batch = _batch_shape(tangents, primals)
        if batch and (rule.elementwise or rule.broadcasts):
            tangents = [None if t is None else _align(t, batch, shape_of(p), len(out_shape))
                        for t, p in zip(tangents, primals)]
        tangent = rule.tangent(tangents, out, primals, params, batch)
        target = batch + out_shape
        if tangent is None:
            tangent = zeros(target, out)
        elif shape_of(tangent) != target:
            tangent = ops.broadcast_to(tangent, target)
        result = ForwardDiff.__new__(type(self))
        result.value = out
        result.grad = tangent
        result._rank = rank
        return result


def _batch_shape(tangents: list[Any], primals: list[Any]) -> tuple[int, ...]:
    """The batch axes that the tangents carry in front of their values' shapes."""
    for t, p in zip(tangents, primals):
        if t is not None:
            tshape = shape_of(t)
            extra = len(tshape) - len(shape_of(p))
            if extra > 0:
                return tshape[:extra]
    return ()


def _align(t: Any, batch: tuple[int, ...], shape: tuple[int, ...], out_ndim: int) -> Any:
    """Pad a batched tangent with size-1 axes so it broadcasts like its primal does."""
    if shape_of(t) == shape:  # an unbatched tangent broadcasts against the batch as it is
        return t
    missing = out_ndim - len(shape)
    if missing <= 0:
        return t
    return ops.reshape(t, batch + (1,) * missing + shape)


def _show(x: Any) -> str:
    if isinstance(x, np.ndarray):
        return np.array2string(x, precision=6, threshold=12, separator=", ")
    if isinstance(x, Traced):
        return repr(x)
    return f"{x:.6g}" if isinstance(x, float) else repr(x)
