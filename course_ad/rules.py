"""The rule table: every primitive is one record that both modes, the pictures and the tests read.

A record holds the primal function (floats and numpy arrays), one JVP and one VJP function
per input, a symbol for graph labels, LaTeX for the rule card and the input domain the tests
sample from. JVP rules take the input's tangent first, VJP rules the output's cotangent
first; both get the output ``out`` so ``exp``, ``tanh`` and ``sigmoid`` reuse it.

Rules are written with the library's own generic operations (``ops.cos``, ``*``, ...), so
running them on traced values differentiates them again: higher order comes for free.
Rules never undo broadcasting: the reverse engine reduces every cotangent to its input's
shape in one place (``ops.unbroadcast``).

The record type and the table live in ``registry``; this module fills the table. Adding a
primitive is one ``register(Rule(...))`` here plus its generic function in ``ops``
(``def foo(x): return apply(RULES["foo"], x)``), which looks the record up by name when
called, so ``ops`` never imports this module.

Tangents may carry extra leading axes (a *batch* of tangent directions, one Jacobian in
one forward pass), so JVP rules address axes from the right (negative axis numbers).
"""

from __future__ import annotations

import html
import math
import operator
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from . import ops
from .dispatch import apply, primal_value, shape_of
from .registry import (
    JVP_RULES,
    RULES,
    VJP_RULES,
    Domain,
    MissingRuleError,
    Rule,
    get_rule,
    register,
)

__all__ = [
    "Rule",
    "Domain",
    "RULES",
    "VJP_RULES",
    "JVP_RULES",
    "MissingRuleError",
    "get_rule",
    "register",
    "table",
]


# --------------------------------------------------------------------------------------
# Helpers the rules share
# --------------------------------------------------------------------------------------


def _batch(tangent: Any, x: Any) -> tuple[int, ...]:
    """The leading batch axes a tangent carries beyond its primal's shape."""
    tshape = shape_of(tangent)
    return tshape[: len(tshape) - len(shape_of(x))]


def _kept_shape(shape: tuple[int, ...], axis: tuple[int, ...] | None) -> tuple[int, ...]:
    """``shape`` with the reduced axes kept as size 1 (``keepdims=True``)."""
    if axis is None:
        return (1,) * len(shape)
    return tuple(1 if i in axis else n for i, n in enumerate(shape))


def _from_right(axis: tuple[int, ...] | None, ndim: int) -> tuple[int, ...]:
    """Axes counted from the right, so a tangent with batch axes in front reduces the same."""
    return tuple(a - ndim for a in (range(ndim) if axis is None else axis))


def _restore(g: Any, x: Any, axis: tuple[int, ...] | None, keepdims: bool) -> Any:
    """Give a reduced cotangent its reduced axes back as size 1, ready to broadcast."""
    if keepdims or (axis is None and shape_of(g) == ()):
        return g
    return ops.reshape(g, _kept_shape(shape_of(x), axis))


def _count(x: Any, axis: tuple[int, ...] | None) -> int:
    shape = shape_of(x)
    return math.prod(shape) if axis is None else math.prod(shape[a] for a in axis)


def _float_or_array(float_fn: Callable, array_fn: Callable) -> Callable:
    """A primal that uses ``math`` on Python floats (fast) and numpy otherwise.

    A domain or overflow error in ``math`` falls back to numpy, which gives nan or inf with
    a ``RuntimeWarning``, as numpy users expect."""

    def primal(x: Any) -> Any:
        if type(x) is float:
            try:
                return float_fn(x)
            except (ValueError, OverflowError):
                return float(array_fn(np.float64(x)))
        return array_fn(x)

    primal.__name__ = array_fn.__name__
    return primal


def _float_type(x: Any) -> np.dtype:
    """x's dtype when it is a float type (float32 stays float32), float64 otherwise."""
    if type(x) is np.ndarray and x.dtype.kind == "f":
        return x.dtype  # the common case, without np.result_type
    dtype = np.result_type(x)
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def _as_float(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=_float_type(x))


E = Domain()
POSITIVE = Domain(0.2, 4.0)
NONZERO = Domain(-3.0, 3.0, gap=0.3)


# --------------------------------------------------------------------------------------
# Arithmetic
# --------------------------------------------------------------------------------------


def add_jvp_x(dx, out, x, y):
    """v̇ += ẋ"""
    return dx


def add_jvp_y(dy, out, x, y):
    """v̇ += ẏ"""
    return dy


def add_vjp_x(g, out, x, y):
    """x̄ += v̄"""
    return g


def add_vjp_y(g, out, x, y):
    """ȳ += v̄"""
    return g


def sub_jvp_y(dy, out, x, y):
    """v̇ += -ẏ"""
    return -dy


def sub_vjp_y(g, out, x, y):
    """ȳ += -v̄"""
    return -g


def mul_jvp_x(dx, out, x, y):
    """v̇ += ẋ y"""
    return dx * y


def mul_jvp_y(dy, out, x, y):
    """v̇ += x ẏ"""
    return x * dy


def mul_vjp_x(g, out, x, y):
    """x̄ += v̄ y"""
    return g * y


def mul_vjp_y(g, out, x, y):
    """ȳ += v̄ x"""
    return g * x


def div_jvp_x(dx, out, x, y):
    """v̇ += ẋ / y"""
    return dx / y


def div_jvp_y(dy, out, x, y):
    """v̇ += -v ẏ / y"""
    return -(out * dy) / y


def div_vjp_x(g, out, x, y):
    """x̄ += v̄ / y"""
    return g / y


def div_vjp_y(g, out, x, y):
    """ȳ += -v̄ v / y"""
    return -(g * out) / y


def neg_jvp(dx, out, x):
    """v̇ = -ẋ"""
    return -dx


def neg_vjp(g, out, x):
    """x̄ += -v̄"""
    return -g


def _pow_slope(x, y):
    """∂xʸ/∂x = y x^(y-1), taken as 0 where y = 0 (x⁰ = 1 is constant, even at x = 0).

    Only at x = 0 does y = 0 give 0·∞; there a constant mask moves the exponent to 0, so the
    product is y·1 = 0 and stays differentiable. ``ops.power`` keeps 0 to a negative power
    at inf and a negative base with a fractional exponent at nan (real), as torch and JAX."""
    if type(x) is float and (type(y) is float or type(y) is int):  # plain numbers: no tracing
        return 0.0 if y == 0 and x == 0.0 else y * _pow_primal(x, y - 1.0)
    at_zero = (primal_value(y) == 0) & (primal_value(x) == 0)
    if not (at_zero if type(at_zero) is bool else at_zero.any()):
        return y * ops.power(x, y - 1.0)
    if np.ndim(at_zero) == 0:
        return 0.0
    return y * ops.power(x, (y - 1.0) + at_zero)


def _pow_log(out, x, y):
    """∂xʸ/∂y = v log x, taken as 0 where x = 0 and y ≥ 0 (there xʸ stays 0 or 1, as torch).

    A constant mask moves those x to 1, whose log is 0; a negative base gives nan (real)."""
    at_zero = (primal_value(x) == 0) & (primal_value(y) >= 0)
    if not (at_zero if type(at_zero) is bool else at_zero.any()):
        return out * ops.log(x)
    if np.ndim(at_zero) == 0:
        return 0.0
    return out * ops.log(x + at_zero)


def pow_jvp_x(dx, out, x, y):
    """v̇ += y x^(y-1) ẋ"""
    return dx * _pow_slope(x, y)


def pow_jvp_y(dy, out, x, y):
    """v̇ += v log(x) ẏ"""
    return dy * _pow_log(out, x, y)


def pow_vjp_x(g, out, x, y):
    """x̄ += v̄ y x^(y-1)"""
    return g * _pow_slope(x, y)


def pow_vjp_y(g, out, x, y):
    """ȳ += v̄ v log x"""
    return g * _pow_log(out, x, y)


def _pow_primal(x, y):
    """xʸ: Python's ** on floats where it is real and finite (fast), numpy's power otherwise
    (0 to a negative power is inf, a negative base to a fractional power nan, never complex)."""
    if type(x) is float and (type(y) is float or type(y) is int):
        if x > 0.0 or (type(y) is int and (y >= 0 or x != 0.0)):
            try:
                return x**y
            except OverflowError:
                pass
        return float(np.power(x, float(y)))
    return np.power(x, y)


register(Rule("add", operator.add, (add_jvp_x, add_jvp_y), (add_vjp_x, add_vjp_y), "+",
              r"v = x + y", r"\dot v = \dot x + \dot y",
              r"\bar x \mathrel{+}= \bar v,\; \bar y \mathrel{+}= \bar v", (E, E), True))
register(Rule("sub", operator.sub, (add_jvp_x, sub_jvp_y), (add_vjp_x, sub_vjp_y), "−",
              r"v = x - y", r"\dot v = \dot x - \dot y",
              r"\bar x \mathrel{+}= \bar v,\; \bar y \mathrel{-}= \bar v", (E, E), True))
register(Rule("mul", operator.mul, (mul_jvp_x, mul_jvp_y), (mul_vjp_x, mul_vjp_y), "×",
              r"v = x y", r"\dot v = \dot x\, y + x\, \dot y",
              r"\bar x \mathrel{+}= \bar v\, y,\; \bar y \mathrel{+}= \bar v\, x", (E, E), True))
register(Rule("div", operator.truediv, (div_jvp_x, div_jvp_y), (div_vjp_x, div_vjp_y), "÷",
              r"v = x / y", r"\dot v = (\dot x - v\, \dot y) / y",
              r"\bar x \mathrel{+}= \bar v / y,\; \bar y \mathrel{-}= \bar v\, v / y",
              (E, NONZERO), True))
register(Rule("neg", operator.neg, (neg_jvp,), (neg_vjp,), "−",
              r"v = -x", r"\dot v = -\dot x", r"\bar x \mathrel{-}= \bar v", (E,), True))
register(Rule("pow", _pow_primal, (pow_jvp_x, pow_jvp_y), (pow_vjp_x, pow_vjp_y), "^",
              r"v = x^{y}", r"\dot v = y\, x^{y-1} \dot x + v \log x\, \dot y",
              r"\bar x \mathrel{+}= \bar v\, y\, x^{y-1},\; \bar y \mathrel{+}= \bar v\, v \log x",
              (POSITIVE, Domain(-2.0, 2.0)), True))


# --------------------------------------------------------------------------------------
# Elementary functions
# --------------------------------------------------------------------------------------


def exp_jvp(dx, out, x):
    """v̇ = v ẋ"""
    return out * dx


def exp_vjp(g, out, x):
    """x̄ += v̄ v"""
    return g * out


def log_jvp(dx, out, x):
    """v̇ = ẋ / x"""
    return dx / x


def log_vjp(g, out, x):
    """x̄ += v̄ / x"""
    return g / x


def sin_jvp(dx, out, x):
    """v̇ = cos(x) ẋ"""
    return ops.cos(x) * dx


def sin_vjp(g, out, x):
    """x̄ += v̄ cos x"""
    return g * ops.cos(x)


def cos_jvp(dx, out, x):
    """v̇ = -sin(x) ẋ"""
    return -(ops.sin(x) * dx)


def cos_vjp(g, out, x):
    """x̄ -= v̄ sin x"""
    return -(g * ops.sin(x))


def tan_jvp(dx, out, x):
    """v̇ = (1 + v²) ẋ"""
    return (1.0 + out * out) * dx


def tan_vjp(g, out, x):
    """x̄ += v̄ (1 + v²)"""
    return g * (1.0 + out * out)


def sqrt_jvp(dx, out, x):
    """v̇ = ẋ / (2 v)"""
    return dx / (2.0 * out)


def sqrt_vjp(g, out, x):
    """x̄ += v̄ / (2 v)"""
    return g / (2.0 * out)


def tanh_jvp(dx, out, x):
    """v̇ = (1 - v²) ẋ"""
    return (1.0 - out * out) * dx


def tanh_vjp(g, out, x):
    """x̄ += v̄ (1 - v²)"""
    return g * (1.0 - out * out)


def sigmoid_jvp(dx, out, x):
    """v̇ = v (1 - v) ẋ"""
    return (out * (1.0 - out)) * dx


def sigmoid_vjp(g, out, x):
    """x̄ += v̄ v (1 - v)"""
    return g * (out * (1.0 - out))


def relu_jvp(dx, out, x):
    """v̇ = [x > 0] ẋ"""
    return dx * (primal_value(x) > 0)


def relu_vjp(g, out, x):
    """x̄ += v̄ [x > 0]"""
    return g * (primal_value(x) > 0)


def abs_jvp(dx, out, x):
    """v̇ = sign(x) ẋ"""
    return dx * np.sign(primal_value(x))


def abs_vjp(g, out, x):
    """x̄ += v̄ sign(x)"""
    return g * np.sign(primal_value(x))


def _sigmoid(x):
    """σ(x) = (1 + tanh(x/2)) / 2: never overflows, unlike 1 / (1 + e^{-x})."""
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


def _sigmoid_float(x: float) -> float:
    return 0.5 * (math.tanh(0.5 * x) + 1.0)


def _relu(x):
    if type(x) is float:
        return x if x > 0.0 else 0.0
    return np.maximum(x, 0.0)


def _unary(name, float_fn, array_fn, jvp, vjp, symbol, formula, jvp_latex, vjp_latex, domain=E):
    register(Rule(name, _float_or_array(float_fn, array_fn), (jvp,), (vjp,), symbol, formula,
                  jvp_latex, vjp_latex, (domain,), True))


_unary("exp", math.exp, np.exp, exp_jvp, exp_vjp, "exp",
       r"v = e^{x}", r"\dot v = v\, \dot x", r"\bar x \mathrel{+}= \bar v\, v")
_unary("log", math.log, np.log, log_jvp, log_vjp, "log",
       r"v = \log x", r"\dot v = \dot x / x", r"\bar x \mathrel{+}= \bar v / x", POSITIVE)
_unary("sin", math.sin, np.sin, sin_jvp, sin_vjp, "sin",
       r"v = \sin x", r"\dot v = \cos x\, \dot x", r"\bar x \mathrel{+}= \bar v \cos x")
_unary("cos", math.cos, np.cos, cos_jvp, cos_vjp, "cos",
       r"v = \cos x", r"\dot v = -\sin x\, \dot x", r"\bar x \mathrel{-}= \bar v \sin x")
_unary("tan", math.tan, np.tan, tan_jvp, tan_vjp, "tan",
       r"v = \tan x", r"\dot v = (1 + v^2)\, \dot x", r"\bar x \mathrel{+}= \bar v (1 + v^2)",
       Domain(-1.2, 1.2))
_unary("sqrt", math.sqrt, np.sqrt, sqrt_jvp, sqrt_vjp, "√",
       r"v = \sqrt{x}", r"\dot v = \dot x / (2 v)", r"\bar x \mathrel{+}= \bar v / (2 v)",
       POSITIVE)
_unary("tanh", math.tanh, np.tanh, tanh_jvp, tanh_vjp, "tanh",
       r"v = \tanh x", r"\dot v = (1 - v^2)\, \dot x", r"\bar x \mathrel{+}= \bar v (1 - v^2)")
_unary("sigmoid", _sigmoid_float, _sigmoid, sigmoid_jvp, sigmoid_vjp, "σ",
       r"v = \sigma(x)", r"\dot v = v (1 - v)\, \dot x",
       r"\bar x \mathrel{+}= \bar v\, v (1 - v)")
_unary("relu", _relu, _relu, relu_jvp, relu_vjp, "relu",
       r"v = \max(x, 0)", r"\dot v = [x > 0]\, \dot x", r"\bar x \mathrel{+}= \bar v\, [x > 0]",
       NONZERO)
_unary("abs", abs, np.abs, abs_jvp, abs_vjp, "|·|",
       r"v = |x|", r"\dot v = \operatorname{sign}(x)\, \dot x",
       r"\bar x \mathrel{+}= \bar v \operatorname{sign}(x)", NONZERO)


def _maximum_share(x, y):
    """[x > y] + ½[x = y]: x's share of the derivative of max(x, y), a constant.

    At a tie both inputs get half, as in torch, JAX and autograd (and as the ``max``
    reduction shares between tied entries), so max(x, x) has derivative 1 in x."""
    xv, yv = primal_value(x), primal_value(y)
    if type(xv) is float and type(yv) is float:
        return 1.0 if xv > yv else 0.5 if xv == yv else 0.0
    share = (xv > yv) + 0.5 * (xv == yv)
    return share.astype(_float_type(np.result_type(xv, yv)), copy=False)


def maximum_jvp_x(dx, out, x, y):
    """v̇ += ([x > y] + ½[x = y]) ẋ"""
    return dx * _maximum_share(x, y)


def maximum_jvp_y(dy, out, x, y):
    """v̇ += ([x < y] + ½[x = y]) ẏ"""
    return dy * (1.0 - _maximum_share(x, y))


def maximum_vjp_x(g, out, x, y):
    """x̄ += v̄ ([x > y] + ½[x = y])"""
    return g * _maximum_share(x, y)


def maximum_vjp_y(g, out, x, y):
    """ȳ += v̄ ([x < y] + ½[x = y])"""
    return g * (1.0 - _maximum_share(x, y))


def _maximum(x, y):
    if type(x) is float and type(y) is float:
        return x if x >= y else y
    return np.maximum(x, y)


register(Rule("maximum", _maximum, (maximum_jvp_x, maximum_jvp_y),
              (maximum_vjp_x, maximum_vjp_y), "max",
              r"v = \max(x, y)", r"\dot v = [x > y]\, \dot x + [x < y]\, \dot y"
              r" \;(\frac{1}{2} \text{ each at } x = y)",
              r"\bar x \mathrel{+}= \bar v [x > y],\; \bar y \mathrel{+}= \bar v [x < y]"
              r" \;(\frac{1}{2} \text{ each at } x = y)",
              (Domain(-3.0, -0.5), Domain(0.5, 3.0)), True))


# --------------------------------------------------------------------------------------
# Linear algebra
# --------------------------------------------------------------------------------------


def _swap_last(a):
    """Aᵀ over the last two axes."""
    n = len(shape_of(a))
    return apply(TRANSPOSE, a, axes=tuple(range(n - 2)) + (n - 1, n - 2))


def _column(a):
    """A vector (or a batch of them) as a column: shape (..., n, 1)."""
    return ops.reshape(a, shape_of(a) + (1,))


def _uncolumn(a):
    return ops.reshape(a, shape_of(a)[:-1])


def _row(a):
    """A vector (or a batch of them) as a row: shape (..., 1, n)."""
    shape = shape_of(a)
    return ops.reshape(a, shape[:-1] + (1,) + shape[-1:])


def _unrow(a):
    shape = shape_of(a)
    return ops.reshape(a, shape[:-2] + shape[-1:])


def matmul_jvp_a(da, out, a, b):
    """v̇ += Ȧ B"""
    if len(shape_of(a)) == 1 and len(shape_of(b)) > 1:  # keep batch axes out of the contraction
        return _unrow(ops.matmul(_row(da), b))
    return ops.matmul(da, b)


def matmul_jvp_b(db, out, a, b):
    """v̇ += A Ḃ"""
    if len(shape_of(b)) == 1:  # a tangent of a vector may carry batch axes in front
        return _uncolumn(ops.matmul(a, _column(db)))
    return ops.matmul(a, db)


# The VJPs treat a vector operand as a one-row (left) or one-column (right) matrix, so one
# formula serves every pairing of ranks numpy allows; the result keeps the stack axes of
# the product, and the engine's unbroadcast sums them away where the operand had none.


def matmul_vjp_a(g, out, a, b):
    """Ā += V̄ Bᵀ"""
    a_vector, b_vector = len(shape_of(a)) == 1, len(shape_of(b)) == 1
    if b_vector:  # V̄ has lost B's column axis: Ā = V̄ bᵀ is an outer product
        return g * b if a_vector else _column(g) * b
    if a_vector:  # V̄ has lost A's row axis: (..., m) as rows (..., 1, m), then drop it again
        return _unrow(ops.matmul(_row(g), _swap_last(b)))
    return ops.matmul(g, _swap_last(b))


def matmul_vjp_b(g, out, a, b):
    """B̄ += Aᵀ V̄"""
    a_vector, b_vector = len(shape_of(a)) == 1, len(shape_of(b)) == 1
    if a_vector:  # B̄ = a V̄ᵀ, an outer product over the stack axes of V̄
        return g * a if b_vector else _column(a) * _row(g)
    if b_vector:  # V̄ has lost B's column axis: (..., n) as columns (..., n, 1)
        return _uncolumn(ops.matmul(_swap_last(a), _column(g)))
    return ops.matmul(_swap_last(a), g)


def _matmul_examples(rng):
    def r(*shape):
        return rng.standard_normal(shape)

    return [((r(2, 3), r(3, 4)), {}), ((r(3,), r(3, 4)), {}), ((r(2, 3), r(3,)), {}),
            ((r(3,), r(3,)), {}), ((r(2, 2, 3), r(3, 4)), {}), ((r(2, 3), r(2, 3, 2)), {}),
            ((r(2, 2, 3), r(3,)), {}), ((r(2, 1, 2, 3), r(3,)), {}), ((r(3,), r(2, 3, 4)), {}),
            ((r(2, 1, 2, 3), r(3, 3, 2)), {}), ((r(1, 2, 3), r(4, 3, 2)), {})]


register(Rule("matmul", np.matmul, (matmul_jvp_a, matmul_jvp_b), (matmul_vjp_a, matmul_vjp_b),
              "@", r"V = A B", r"\dot V = \dot A B + A \dot B",
              r"\bar A \mathrel{+}= \bar V B^\top,\; \bar B \mathrel{+}= A^\top \bar V",
              broadcasts=True, examples=_matmul_examples))


# --------------------------------------------------------------------------------------
# Reductions (axis is None or a tuple of non-negative ints; ops.sum normalises it)
# --------------------------------------------------------------------------------------


def sum_jvp(dx, out, x, *, axis, keepdims):
    """v̇ = Σ ẋ"""
    return ops.sum(dx, axis=_from_right(axis, len(shape_of(x))), keepdims=keepdims)


def sum_vjp(g, out, x, *, axis, keepdims):
    """x̄ += v̄ (broadcast back over the summed axes)"""
    return ops.broadcast_to(_restore(g, x, axis, keepdims), shape_of(x))


def mean_jvp(dx, out, x, *, axis, keepdims):
    """v̇ = mean(ẋ)"""
    return ops.mean(dx, axis=_from_right(axis, len(shape_of(x))), keepdims=keepdims)


def mean_vjp(g, out, x, *, axis, keepdims):
    """x̄ += v̄ / n"""
    return sum_vjp(g / _count(x, axis), out, x, axis=axis, keepdims=keepdims)


def _argmax_weights(x, out, axis):
    """1/k on each of the k entries that attain the maximum, 0 elsewhere (a constant)."""
    xv, ov = primal_value(x), primal_value(out)
    hit = xv == np.reshape(ov, _kept_shape(shape_of(xv), axis))
    return (hit / np.add.reduce(hit, axis=axis, keepdims=True)).astype(_float_type(xv),
                                                                       copy=False)


def max_jvp(dx, out, x, *, axis, keepdims):
    """v̇ = ẋ at the arg max (shared equally between ties)"""
    weights = _argmax_weights(x, out, axis)
    return ops.sum(dx * weights, axis=_from_right(axis, len(shape_of(x))), keepdims=keepdims)


def max_vjp(g, out, x, *, axis, keepdims):
    """x̄ += v̄ at the arg max (shared equally between ties)"""
    return _restore(g, x, axis, keepdims) * _argmax_weights(x, out, axis)


def logsumexp_jvp(dx, out, x, *, axis, keepdims):
    """v̇ = Σ softmax(x) ẋ"""
    softmax = ops.exp(x - _restore(out, x, axis, keepdims))
    return ops.sum(dx * softmax, axis=_from_right(axis, len(shape_of(x))), keepdims=keepdims)


def logsumexp_vjp(g, out, x, *, axis, keepdims):
    """x̄ += v̄ softmax(x)"""
    return _restore(g, x, axis, keepdims) * ops.exp(x - _restore(out, x, axis, keepdims))


def _logsumexp(x, *, axis=None, keepdims=False):
    """log Σ eˣ computed as m + log Σ e^(x - m), m = max x, so it never overflows."""
    x = _as_float(x)
    m = np.maximum.reduce(x, axis=axis, keepdims=True)
    if not np.isfinite(m).all():  # all -inf (or an inf) along an axis: shift by 0 there
        m = np.where(np.isfinite(m), m, 0.0)
    total = np.log(np.add.reduce(np.exp(x - m), axis=axis, keepdims=True))
    total += m
    if keepdims:
        return total
    return total.reshape(()) if axis is None else np.squeeze(total, axis=axis)


def _sum(x, *, axis=None, keepdims=False):
    return np.add.reduce(x, axis=axis, keepdims=keepdims)  # the ufunc itself: no wrapper cost


def _mean(x, *, axis=None, keepdims=False):
    return np.add.reduce(x, axis=axis, keepdims=keepdims) / _count(x, axis)


def _max(x, *, axis=None, keepdims=False):
    return np.maximum.reduce(x, axis=axis, keepdims=keepdims)


def _reduction_examples(rng):
    x = rng.standard_normal((3, 4))
    return [((x,), {"axis": None, "keepdims": False}), ((x,), {"axis": (0,), "keepdims": False}),
            ((x,), {"axis": (1,), "keepdims": True}), ((rng.standard_normal(5),),
                                                          {"axis": (0,), "keepdims": False}),
            ((rng.standard_normal((2, 3, 2)),), {"axis": (0, 2), "keepdims": False})]


for _name, _primal, _jvp, _vjp, _symbol, _formula, _jl, _vl in [
    ("sum", _sum, sum_jvp, sum_vjp, "Σ", r"v = \sum_i x_i", r"\dot v = \sum_i \dot x_i",
     r"\bar x_i \mathrel{+}= \bar v"),
    ("mean", _mean, mean_jvp, mean_vjp, "mean", r"v = \frac{1}{n}\sum_i x_i",
     r"\dot v = \frac{1}{n}\sum_i \dot x_i", r"\bar x_i \mathrel{+}= \bar v / n"),
    ("max", _max, max_jvp, max_vjp, "max", r"v = \max_i x_i", r"\dot v = \dot x_{i^*}",
     r"\bar x_{i^*} \mathrel{+}= \bar v"),
    ("logsumexp", _logsumexp, logsumexp_jvp, logsumexp_vjp, "lse",
     r"v = \log \sum_i e^{x_i}", r"\dot v = \sum_i \operatorname{softmax}(x)_i\, \dot x_i",
     r"\bar x_i \mathrel{+}= \bar v\, \operatorname{softmax}(x)_i"),
]:
    register(Rule(_name, _primal, (_jvp,), (_vjp,), _symbol, _formula, _jl, _vl,
                  examples=_reduction_examples))


def _check_labels(z, labels):
    n, k = np.shape(z)
    if np.shape(labels) != (n,):
        raise ValueError(f"cross_entropy: {n} rows of logits but labels of shape "
                         f"{np.shape(labels)}; give one integer label per row")
    if n and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"cross_entropy: labels must lie in 0..{k - 1} for {k} classes, got "
                         f"{labels.min()}..{labels.max()}")


def _cross_entropy(z, *, labels):
    """mean over rows of logsumexp(zᵢ) − zᵢ[yᵢ]: softmax cross-entropy, never overflowing."""
    z = _as_float(z)
    if z.ndim != 2:
        raise ValueError(f"cross_entropy: logits must have shape (rows, classes), got {z.shape}")
    _check_labels(z, labels)
    total = np.add.reduce(_logsumexp(z, axis=(1,)) - z[np.arange(len(labels)), labels])
    return float(total) / len(labels) if z.dtype == np.float64 else total / len(labels)


def _softmax_minus_onehot(z, labels):
    """softmax(z) − onehot(y), divided by the number of rows: ∂ mean CE / ∂z.

    Softmax is unchanged by a shift of each row, so the shift by the row max (against
    overflow) is a constant and the expression stays differentiable for higher order."""
    zv = primal_value(z)
    e = ops.exp(z - np.maximum.reduce(zv, axis=1, keepdims=True))
    p = e / ops._sum(e, (1,), True)
    onehot = np.zeros(zv.shape, zv.dtype)
    onehot[np.arange(len(labels)), labels] = 1.0
    return (p - onehot) / len(labels)


def cross_entropy_jvp(dz, out, z, *, labels):
    """v̇ = Σᵢⱼ (softmax(z) − onehot(y))ᵢⱼ żᵢⱼ / n"""
    return ops.sum(dz * _softmax_minus_onehot(z, labels), axis=(-2, -1))


def cross_entropy_vjp(g, out, z, *, labels):
    """z̄ += v̄ (softmax(z) − onehot(y)) / n"""
    return g * _softmax_minus_onehot(z, labels)


def _cross_entropy_examples(rng):
    return [((rng.standard_normal((4, 3)),), {"labels": np.array([0, 2, 1, 2])}),
            ((5 * rng.standard_normal((2, 5)),), {"labels": np.array([4, 0])})]


register(Rule("cross_entropy", _cross_entropy, (cross_entropy_jvp,), (cross_entropy_vjp,), "CE",
              r"v = \frac{1}{n}\sum_i \big(\log \sum_j e^{z_{ij}} - z_{i y_i}\big)",
              r"\dot v = \frac{1}{n}\sum_{ij} (p_{ij} - [j = y_i])\, \dot z_{ij}",
              r"\bar z_{ij} \mathrel{+}= \bar v\, (p_{ij} - [j = y_i]) / n",
              examples=_cross_entropy_examples))


# --------------------------------------------------------------------------------------
# Shape and indexing
# --------------------------------------------------------------------------------------


def reshape_jvp(dx, out, x, *, shape):
    """v̇ = reshape(ẋ)"""
    return ops.reshape(dx, _batch(dx, x) + shape_of(out))


def reshape_vjp(g, out, x, *, shape):
    """x̄ += reshape(v̄, shape of x)"""
    return ops.reshape(g, shape_of(x))


def transpose_jvp(dx, out, x, *, axes):
    """v̇ = transpose(ẋ)"""
    nb = len(_batch(dx, x))
    return ops.transpose(dx, tuple(range(nb)) + tuple(a + nb for a in axes))


def transpose_vjp(g, out, x, *, axes):
    """x̄ += transpose(v̄) with the inverse permutation"""
    return ops.transpose(g, tuple(int(i) for i in np.argsort(axes)))


def broadcast_to_jvp(dx, out, x, *, shape):
    """v̇ = broadcast(ẋ)"""
    batch = _batch(dx, x)
    padded = ops.reshape(dx, batch + (1,) * (len(shape) - len(shape_of(x))) + shape_of(x))
    return ops.broadcast_to(padded, batch + shape)


def broadcast_to_vjp(g, out, x, *, shape):
    """x̄ += v̄ summed over the broadcast axes (the engine's unbroadcast does the sum)"""
    return g


def _with_batch(index, nb: int):
    if nb == 0:
        return index
    return (slice(None),) * nb + (index if isinstance(index, tuple) else (index,))


def getitem_jvp(dx, out, x, *, index):
    """v̇ = ẋ[index]"""
    return ops.getitem(dx, _with_batch(index, len(_batch(dx, x))))


def getitem_vjp(g, out, x, *, index):
    """x̄[index] += v̄ (repeated indices add up)"""
    return ops.scatter_add(g, index=index, shape=shape_of(x))


def scatter_add_jvp(dg, out, g, *, index, shape):
    """v̇ = scatter(ġ)"""
    batch = _batch(dg, g)
    return ops.scatter_add(dg, index=_with_batch(index, len(batch)), shape=batch + shape)


def scatter_add_vjp(gbar, out, g, *, index, shape):
    """ḡ += v̄[index]"""
    return ops.getitem(gbar, index)


def _broadcast_to(x, *, shape):
    """A writeable copy: gradients handed to users must not be read-only views."""
    out = np.empty(shape, dtype=_float_type(x))
    try:
        out[...] = x
    except ValueError:
        np.broadcast_to(x, shape)  # raises numpy's own message about the shapes
        raise
    return out


def _getitem(x, *, index):
    return x[index]


def _scatter_add(g, *, index, shape):
    """Zeros of ``shape`` with ``g`` added at ``index``: the adjoint of indexing."""
    total = np.zeros(shape, dtype=_float_type(g))
    if all(type(i) in (int, slice) for i in (index if type(index) is tuple else (index,))):
        total[index] = g  # a basic index never repeats an entry: no need for add.at
    else:
        np.add.at(total, index, g)
    return total


def _reshape_examples(rng):
    x = rng.standard_normal((2, 3))
    return [((x,), {"shape": (3, 2)}), ((x,), {"shape": (6,)}), ((x,), {"shape": (1, 6, 1)})]


def _transpose_examples(rng):
    return [((rng.standard_normal((2, 3)),), {"axes": (1, 0)}),
            ((rng.standard_normal((2, 3, 4)),), {"axes": (2, 0, 1)})]


def _broadcast_examples(rng):
    return [((rng.standard_normal(3),), {"shape": (2, 3)}),
            ((rng.standard_normal((2, 1)),), {"shape": (2, 4)}),
            ((np.float64(rng.standard_normal()),), {"shape": (2, 2)})]


def _getitem_examples(rng):
    x = rng.standard_normal((4, 3))
    return [((x,), {"index": (1,)}), ((x,), {"index": (slice(1, 3), 2)}),
            ((x,), {"index": (np.array([0, 2, 0]),)}),
            ((x,), {"index": (np.arange(4), np.array([0, 1, 2, 0]))}),
            ((x,), {"index": (x > 0,)})]


def _scatter_examples(rng):
    return [((rng.standard_normal(3),), {"index": (np.array([0, 2, 0]),), "shape": (4,)}),
            ((rng.standard_normal((2, 3)),), {"index": (slice(1, 3),), "shape": (4, 3)})]


def _reshape(x, *, shape):
    return x.reshape(shape) if type(x) is np.ndarray else np.reshape(x, shape)


register(Rule("reshape", _reshape, (reshape_jvp,),
              (reshape_vjp,), "reshape", r"V = \operatorname{reshape}(X)",
              r"\dot V = \operatorname{reshape}(\dot X)",
              r"\bar X \mathrel{+}= \operatorname{reshape}(\bar V)", examples=_reshape_examples))
def _transpose(x, *, axes):
    return x.transpose(axes) if type(x) is np.ndarray else np.transpose(x, axes)


TRANSPOSE = register(Rule("transpose", _transpose, (transpose_jvp,),
              (transpose_vjp,), "ᵀ", r"V = X^\top", r"\dot V = \dot X^\top",
              r"\bar X \mathrel{+}= \bar V^\top", examples=_transpose_examples))
register(Rule("broadcast_to", _broadcast_to, (broadcast_to_jvp,), (broadcast_to_vjp,), "bcast",
              r"V = \operatorname{broadcast}(x)", r"\dot V = \operatorname{broadcast}(\dot x)",
              r"\bar x \mathrel{+}= \textstyle\sum_{\text{new axes}} \bar V",
              examples=_broadcast_examples))
register(Rule("getitem", _getitem, (getitem_jvp,), (getitem_vjp,), "[ ]",
              r"v = x[i]", r"\dot v = \dot x[i]", r"\bar x[i] \mathrel{+}= \bar v",
              examples=_getitem_examples))
register(Rule("scatter_add", _scatter_add, (scatter_add_jvp,), (scatter_add_vjp,), "scatter",
              r"V = 0;\; V[i] \mathrel{+}= g", r"\dot V[i] \mathrel{+}= \dot g",
              r"\bar g \mathrel{+}= \bar V[i]", examples=_scatter_examples))


def stack_jvp(tangents, out, *xs, axis):
    """v̇ = stack(ẋ₁, …, ẋₙ)"""
    return ops.stack(tangents, axis=axis - len(shape_of(out)))


def stack_vjp(g, out, *xs, axis, argnum):
    """x̄ₖ += v̄ taken at position k along the stacking axis"""
    return ops.getitem(g, (slice(None),) * axis + (argnum,))


def concatenate_jvp(tangents, out, *xs, axis):
    """v̇ = concatenate(ẋ₁, …, ẋₙ)"""
    return ops.concatenate(tangents, axis=axis - len(shape_of(out)))


def concatenate_vjp(g, out, *xs, axis, argnum):
    """x̄ₖ += v̄ on the slice that xₖ filled"""
    start = sum(shape_of(x)[axis] for x in xs[:argnum])
    stop = start + shape_of(xs[argnum])[axis]
    return ops.getitem(g, (slice(None),) * axis + (slice(start, stop),))


def _stack_examples(rng):
    a, b, c = (rng.standard_normal((2, 3)) for _ in range(3))
    return [((a, b, c), {"axis": 0}), ((a, b), {"axis": 2}),
            ((np.float64(1.5), np.float64(-0.5)), {"axis": 0})]


def _concatenate_examples(rng):
    return [((rng.standard_normal((2, 3)), rng.standard_normal((1, 3))), {"axis": 0}),
            ((rng.standard_normal((2, 1)), rng.standard_normal((2, 2))), {"axis": 1})]


register(Rule("stack", lambda *xs, axis: np.stack(xs, axis), (stack_jvp,), (stack_vjp,),
              "stack", r"V = [x_1, \dots, x_n]", r"\dot V = [\dot x_1, \dots, \dot x_n]",
              r"\bar x_k \mathrel{+}= \bar V_k", variadic=True, examples=_stack_examples))
register(Rule("concatenate", lambda *xs, axis: np.concatenate(xs, axis), (concatenate_jvp,),
              (concatenate_vjp,), "concat", r"V = [x_1; \dots; x_n]",
              r"\dot V = [\dot x_1; \dots; \dot x_n]", r"\bar x_k \mathrel{+}= \bar V_{(k)}",
              variadic=True, examples=_concatenate_examples))


# --------------------------------------------------------------------------------------
# The rule card
# --------------------------------------------------------------------------------------


class RuleCard:
    """The rule table for reading: HTML (typeset LaTeX) in a notebook, text in a terminal."""

    def __init__(self, rules: list[Rule]):
        self.rules = rules

    def __repr__(self) -> str:
        rows = [("rule", "sym", "primal", "tangent (forward)", "adjoint (reverse)")]
        rows += [(r.name, r.symbol, _plain(r.formula), _plain(r.jvp_latex), _plain(r.vjp_latex))
                 for r in self.rules]
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                 for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in
                       ("rule", "symbol", "primal", "tangent (forward mode)",
                        "adjoint (reverse mode)"))
        body = "".join(
            f"<tr><td><code>{r.name}</code></td><td>{html.escape(r.symbol)}</td>"
            f"<td>\\({html.escape(r.formula)}\\)</td><td>\\({html.escape(r.jvp_latex)}\\)</td>"
            f"<td>\\({html.escape(r.vjp_latex)}\\)</td></tr>"
            for r in self.rules
        )
        return f"<table class='course-ad-rules'><tr>{head}</tr>{body}</table>"


def table(names: list[str] | None = None) -> RuleCard:
    """The rule card of all rules (or of ``names``), as a notebook table or terminal text."""
    return RuleCard([get_rule(n) for n in names] if names else list(RULES.values()))


_PLAIN = [
    (r"\mathrel{+}=", "+="), (r"\mathrel{-}=", "-="), (r"\dot V", "V̇"), (r"\dot A", "Ȧ"),
    (r"\dot B", "Ḃ"), (r"\dot X", "Ẋ"), (r"\dot v", "v̇"), (r"\dot x", "ẋ"), (r"\dot y", "ẏ"),
    (r"\dot g", "ġ"), (r"\bar V", "V̄"), (r"\bar A", "Ā"), (r"\bar B", "B̄"), (r"\bar X", "X̄"),
    (r"\bar v", "v̄"), (r"\bar x", "x̄"), (r"\bar y", "ȳ"), (r"\bar g", "ḡ"), (r"\sum", "Σ"),
    (r"\log", "log"), (r"\sin", "sin"), (r"\cos", "cos"), (r"\tan", "tan"), (r"\tanh", "tanh"),
    (r"\sigma", "σ"), (r"\max", "max"), (r"^\top", "ᵀ"), (r"\top", "ᵀ"), (r"\ge", "≥"),
    (r"\dots", "…"), (r"\textstyle", ""), (r"\big", ""),
    (r"\dot z", "ż"), (r"\bar z", "z̄"), (r"\;", " "), (r"\,", " "), (r"\sqrt", "√"),
    (r"\dot a", "ȧ"), (r"\dot b", "ḃ"), (r"\bar a", "ā"), (r"\bar b", "b̄"), (r"\_", "_"),
    (r"\lnot", "¬"), (r"\ln", "ln"), (r"\le", "≤"), (r"\ne", "≠"), (r"\lfloor", "⌊"),
    (r"\rfloor", "⌋"), (r"\langle", "⟨"), (r"\rangle", "⟩"), (r"\otimes", "⊗"),
    (r"\prod", "Π"), (r"\pi", "π"), (r"\mu", "μ"), (r"\cdots", "⋯"),
]


def _plain(latex: str) -> str:
    """LaTeX of the rule card as readable Unicode for terminals."""
    text = latex
    for a, b in _PLAIN:
        text = text.replace(a, b)
    text = re.sub(r"\\operatorname\{(\w+)\}", r"\1", text)
    text = re.sub(r"\\text\{([^}]*)\}", r"\1", text)
    text = re.sub(r"\^\{([^}]*[ +-][^}]*)\}", r"^(\1)", text)
    text = re.sub(r"\\frac\{([^}]*)\}\{([^}]*)\}", r"(\1/\2)", text)
    text = text.replace("{", "").replace("}", "").replace("\\", "")
    return re.sub(r" +", " ", text).strip()
