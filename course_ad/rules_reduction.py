"""More reductions: prod, min, var, std and the running sum cumsum.

Axes arrive normalised (None or a sorted tuple of non-negative ints, from ``ops``); tangents
may carry batch axes in front, so tangent rules reduce axes counted from the right. One
record per primitive, as in ``course_ad.rules``.
"""

from __future__ import annotations

import math

import numpy as np

from . import ops
from .dispatch import primal_value, shape_of
from .registry import Rule, register
from .rules import _argmax_weights, _batch, _count, _from_right, _restore

__all__: list[str] = []


# --------------------------------------------------------------------------------------
# prod: each entry's derivative is the product of the others
# --------------------------------------------------------------------------------------


def _others(x, out, axis, keepdims):
    """∂v/∂xᵢ = Π_{j≠i} xⱼ: v / xᵢ when no entry is zero, else the product taken directly."""
    if np.all(primal_value(x) != 0):
        return _restore(out, x, axis, keepdims) / x
    return _product_of_the_others(x, axis)


def _product_of_the_others(x, axis):
    """Π_{j≠i} xⱼ without dividing: each entry's row of the others, its own place set to 1.

    Costs n² for n reduced entries, so it is used only where x has a zero (v / x fails)."""
    shape = shape_of(x)
    reduced = tuple(range(len(shape))) if axis is None else axis
    rest = tuple(i for i in range(len(shape)) if i not in reduced)
    rest_shape = tuple(shape[i] for i in rest)
    n = math.prod(shape[a] for a in reduced)
    rows = ops.reshape(ops.transpose(x, rest + reduced), rest_shape + (1, n))
    grid = ops.broadcast_to(rows, rest_shape + (n, n))
    others = ops.prod(ops.where(np.eye(n, dtype=bool), 1.0, grid), axis=len(rest) + 1)
    back = ops.reshape(others, rest_shape + tuple(shape[a] for a in reduced))
    return ops.transpose(back, tuple(int(i) for i in np.argsort(rest + reduced)))


def prod_jvp(dx, out, x, *, axis, keepdims):
    """v̇ = Σᵢ (Π_{j≠i} xⱼ) ẋᵢ"""
    others = _others(x, out, axis, keepdims)
    return ops.sum(dx * others, axis=_from_right(axis, len(shape_of(x))), keepdims=keepdims)


def prod_vjp(g, out, x, *, axis, keepdims):
    """x̄ᵢ += v̄ Π_{j≠i} xⱼ"""
    return _restore(g, x, axis, keepdims) * _others(x, out, axis, keepdims)


def min_jvp(dx, out, x, *, axis, keepdims):
    """v̇ = ẋ at the arg min (shared equally between ties)"""
    weights = _argmax_weights(x, out, axis)
    return ops.sum(dx * weights, axis=_from_right(axis, len(shape_of(x))), keepdims=keepdims)


def min_vjp(g, out, x, *, axis, keepdims):
    """x̄ += v̄ at the arg min (shared equally between ties)"""
    return _restore(g, x, axis, keepdims) * _argmax_weights(x, out, axis)


def _prod(x, *, axis=None, keepdims=False):
    return np.multiply.reduce(x, axis=axis, keepdims=keepdims)


def _min(x, *, axis=None, keepdims=False):
    return np.minimum.reduce(x, axis=axis, keepdims=keepdims)


def _reduction_examples(rng):
    x = rng.standard_normal((3, 4))
    return [((x,), {"axis": None, "keepdims": False}), ((x,), {"axis": (0,), "keepdims": False}),
            ((x,), {"axis": (1,), "keepdims": True}),
            ((rng.standard_normal((2, 3, 2)),), {"axis": (0, 2), "keepdims": False})]


def _prod_examples(rng):
    with_zero = rng.standard_normal((3, 4))
    with_zero[1, 2] = 0.0
    with_zero[0, 1] = with_zero[0, 3] = 0.0  # two zeros in a row: that row's gradient is 0
    return _reduction_examples(rng) + [((with_zero,), {"axis": (1,), "keepdims": False}),
                                       ((with_zero,), {"axis": None, "keepdims": False})]


register(Rule("prod", _prod, (prod_jvp,), (prod_vjp,), "Π", r"v = \prod_i x_i",
              r"\dot v = \sum_i \big(\prod_{j \ne i} x_j\big) \dot x_i",
              r"\bar x_i \mathrel{+}= \bar v \prod_{j \ne i} x_j", examples=_prod_examples))
register(Rule("min", _min, (min_jvp,), (min_vjp,), "min", r"v = \min_i x_i",
              r"\dot v = \dot x_{i^*}", r"\bar x_{i^*} \mathrel{+}= \bar v",
              examples=_reduction_examples))


# --------------------------------------------------------------------------------------
# var and std: spread about the mean
# --------------------------------------------------------------------------------------


def _centred(x, axis):
    """x - μ, μ the mean over the reduced axes, kept broadcastable."""
    return x - ops.mean(x, axis=axis, keepdims=True)


def var_jvp(dx, out, x, *, axis, ddof, keepdims):
    """v̇ = 2 Σ (x - μ) ẋ / (n - ddof)"""
    spread = ops.sum(dx * _centred(x, axis), axis=_from_right(axis, len(shape_of(x))),
                     keepdims=keepdims)
    return spread * (2.0 / (_count(x, axis) - ddof))


def var_vjp(g, out, x, *, axis, ddof, keepdims):
    """x̄ += 2 v̄ (x - μ) / (n - ddof)"""
    return _restore(g, x, axis, keepdims) * _centred(x, axis) * (2.0 / (_count(x, axis) - ddof))


def std_jvp(dx, out, x, *, axis, ddof, keepdims):
    """v̇ = Σ (x - μ) ẋ / ((n - ddof) v)"""
    spread = ops.sum(dx * _centred(x, axis), axis=_from_right(axis, len(shape_of(x))),
                     keepdims=keepdims)
    return spread / (out * (_count(x, axis) - ddof))


def std_vjp(g, out, x, *, axis, ddof, keepdims):
    """x̄ += v̄ (x - μ) / ((n - ddof) v)"""
    return _restore(g / out, x, axis, keepdims) * _centred(x, axis) / (_count(x, axis) - ddof)


def _var(x, *, axis=None, ddof=0, keepdims=False):
    return np.var(x, axis=axis, ddof=ddof, keepdims=keepdims)


def _std(x, *, axis=None, ddof=0, keepdims=False):
    return np.std(x, axis=axis, ddof=ddof, keepdims=keepdims)


def _spread_examples(rng):
    x = rng.standard_normal((3, 4))
    return [((x,), {"axis": None, "ddof": 0, "keepdims": False}),
            ((x,), {"axis": (0,), "ddof": 1, "keepdims": False}),
            ((x,), {"axis": (1,), "ddof": 0, "keepdims": True}),
            ((rng.standard_normal((2, 3, 2)),), {"axis": (0, 2), "ddof": 1, "keepdims": False})]


register(Rule("var", _var, (var_jvp,), (var_vjp,), "var",
              r"v = \sum_i (x_i - \mu)^2 / (n - d)",
              r"\dot v = 2 \sum_i (x_i - \mu)\, \dot x_i / (n - d)",
              r"\bar x_i \mathrel{+}= 2 \bar v\, (x_i - \mu) / (n - d)",
              examples=_spread_examples))
register(Rule("std", _std, (std_jvp,), (std_vjp,), "std",
              r"v = \sqrt{\operatorname{var}(x)}",
              r"\dot v = \sum_i (x_i - \mu)\, \dot x_i / ((n - d) v)",
              r"\bar x_i \mathrel{+}= \bar v\, (x_i - \mu) / ((n - d) v)",
              examples=_spread_examples))


# --------------------------------------------------------------------------------------
# cumsum: running sums (its adjoint runs the sums backwards)
# --------------------------------------------------------------------------------------


def cumsum_jvp(dx, out, x, *, axis):
    """V̇ = cumsum(Ẋ)"""
    return ops.cumsum(dx, axis + len(_batch(dx, x)))


def cumsum_vjp(g, out, x, *, axis):
    """X̄ += V̄ summed from the end: flip, cumsum, flip"""
    return ops.flip(ops.cumsum(ops.flip(g, (axis,)), axis), (axis,))


def _cumsum(x, *, axis):
    return np.cumsum(x, axis)


def _cumsum_examples(rng):
    x = rng.standard_normal((3, 4))
    return [((x,), {"axis": 0}), ((x,), {"axis": 1}), ((rng.standard_normal(5),), {"axis": 0})]


register(Rule("cumsum", _cumsum, (cumsum_jvp,), (cumsum_vjp,), "cumsum",
              r"v_k = \sum_{i \le k} x_i", r"\dot v_k = \sum_{i \le k} \dot x_i",
              r"\bar x_i \mathrel{+}= \sum_{k \ge i} \bar v_k", examples=_cumsum_examples))
