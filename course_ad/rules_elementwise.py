"""More elementwise rules: min, where, clip, squares, logarithms, hyperbolic and arc functions.

Each primitive is one record of the table in ``course_ad.registry``, like those in
``course_ad.rules``: named JVP and VJP functions written with the library's own generic
operations (so they differentiate again), the LaTeX of the rule card, and the domain the
tests sample from. Broadcasting is the engine's business, never the rules'.
"""

from __future__ import annotations

import math

import numpy as np

from . import ops
from .dispatch import primal_value
from .registry import Domain, Rule, register
from .rules import NONZERO, POSITIVE, E, _float_or_array

__all__: list[str] = []

LN2 = math.log(2.0)
LN10 = math.log(10.0)
OPEN_UNIT = Domain(-0.9, 0.9)


def _unary(name, float_fn, array_fn, jvp, vjp, symbol, formula, jvp_latex, vjp_latex, domain=E):
    register(Rule(name, _float_or_array(float_fn, array_fn), (jvp,), (vjp,), symbol, formula,
                  jvp_latex, vjp_latex, (domain,), True))


# --------------------------------------------------------------------------------------
# Unary functions
# --------------------------------------------------------------------------------------


def square_jvp(dx, out, x):
    """v̇ = 2 x ẋ"""
    return (2.0 * x) * dx


def square_vjp(g, out, x):
    """x̄ += 2 v̄ x"""
    return g * (2.0 * x)


def log1p_jvp(dx, out, x):
    """v̇ = ẋ / (1 + x)"""
    return dx / (1.0 + x)


def log1p_vjp(g, out, x):
    """x̄ += v̄ / (1 + x)"""
    return g / (1.0 + x)


def expm1_jvp(dx, out, x):
    """v̇ = (v + 1) ẋ"""
    return (out + 1.0) * dx


def expm1_vjp(g, out, x):
    """x̄ += v̄ (v + 1)"""
    return g * (out + 1.0)


def log2_jvp(dx, out, x):
    """v̇ = ẋ / (x ln 2)"""
    return dx / (x * LN2)


def log2_vjp(g, out, x):
    """x̄ += v̄ / (x ln 2)"""
    return g / (x * LN2)


def log10_jvp(dx, out, x):
    """v̇ = ẋ / (x ln 10)"""
    return dx / (x * LN10)


def log10_vjp(g, out, x):
    """x̄ += v̄ / (x ln 10)"""
    return g / (x * LN10)


def cosh_jvp(dx, out, x):
    """v̇ = sinh(x) ẋ"""
    return ops.sinh(x) * dx


def cosh_vjp(g, out, x):
    """x̄ += v̄ sinh x"""
    return g * ops.sinh(x)


def sinh_jvp(dx, out, x):
    """v̇ = cosh(x) ẋ"""
    return ops.cosh(x) * dx


def sinh_vjp(g, out, x):
    """x̄ += v̄ cosh x"""
    return g * ops.cosh(x)


def arcsin_jvp(dx, out, x):
    """v̇ = ẋ / √(1 - x²)"""
    return dx / ops.sqrt(1.0 - x * x)


def arcsin_vjp(g, out, x):
    """x̄ += v̄ / √(1 - x²)"""
    return g / ops.sqrt(1.0 - x * x)


def arccos_jvp(dx, out, x):
    """v̇ = -ẋ / √(1 - x²)"""
    return -dx / ops.sqrt(1.0 - x * x)


def arccos_vjp(g, out, x):
    """x̄ -= v̄ / √(1 - x²)"""
    return -g / ops.sqrt(1.0 - x * x)


def arctan_jvp(dx, out, x):
    """v̇ = ẋ / (1 + x²)"""
    return dx / (1.0 + x * x)


def arctan_vjp(g, out, x):
    """x̄ += v̄ / (1 + x²)"""
    return g / (1.0 + x * x)


_unary("square", lambda x: x * x, np.square, square_jvp, square_vjp, "x²",
       r"v = x^2", r"\dot v = 2 x\, \dot x", r"\bar x \mathrel{+}= 2 \bar v\, x")
_unary("log1p", math.log1p, np.log1p, log1p_jvp, log1p_vjp, "log1p",
       r"v = \log(1 + x)", r"\dot v = \dot x / (1 + x)", r"\bar x \mathrel{+}= \bar v / (1 + x)",
       Domain(-0.8, 3.0))
_unary("expm1", math.expm1, np.expm1, expm1_jvp, expm1_vjp, "expm1",
       r"v = e^{x} - 1", r"\dot v = (v + 1)\, \dot x", r"\bar x \mathrel{+}= \bar v (v + 1)")
_unary("log2", math.log2, np.log2, log2_jvp, log2_vjp, "log₂",
       r"v = \log_2 x", r"\dot v = \dot x / (x \ln 2)", r"\bar x \mathrel{+}= \bar v / (x \ln 2)",
       POSITIVE)
_unary("log10", math.log10, np.log10, log10_jvp, log10_vjp, "log₁₀",
       r"v = \log_{10} x", r"\dot v = \dot x / (x \ln 10)",
       r"\bar x \mathrel{+}= \bar v / (x \ln 10)", POSITIVE)
_unary("cosh", math.cosh, np.cosh, cosh_jvp, cosh_vjp, "cosh",
       r"v = \cosh x", r"\dot v = \sinh x\, \dot x", r"\bar x \mathrel{+}= \bar v \sinh x")
_unary("sinh", math.sinh, np.sinh, sinh_jvp, sinh_vjp, "sinh",
       r"v = \sinh x", r"\dot v = \cosh x\, \dot x", r"\bar x \mathrel{+}= \bar v \cosh x")
_unary("arcsin", math.asin, np.arcsin, arcsin_jvp, arcsin_vjp, "asin",
       r"v = \arcsin x", r"\dot v = (1 - x^2)^{-1/2}\, \dot x",
       r"\bar x \mathrel{+}= \bar v\, (1 - x^2)^{-1/2}", OPEN_UNIT)
_unary("arccos", math.acos, np.arccos, arccos_jvp, arccos_vjp, "acos",
       r"v = \arccos x", r"\dot v = -(1 - x^2)^{-1/2}\, \dot x",
       r"\bar x \mathrel{-}= \bar v\, (1 - x^2)^{-1/2}", OPEN_UNIT)
_unary("arctan", math.atan, np.arctan, arctan_jvp, arctan_vjp, "atan",
       r"v = \arctan x", r"\dot v = \dot x / (1 + x^2)", r"\bar x \mathrel{+}= \bar v / (1 + x^2)")


# --------------------------------------------------------------------------------------
# Binary functions
# --------------------------------------------------------------------------------------


def minimum_jvp_x(dx, out, x, y):
    """v̇ += [x ≤ y] ẋ"""
    return dx * (primal_value(x) <= primal_value(y))


def minimum_jvp_y(dy, out, x, y):
    """v̇ += [x > y] ẏ"""
    return dy * (primal_value(x) > primal_value(y))


def minimum_vjp_x(g, out, x, y):
    """x̄ += v̄ [x ≤ y]"""
    return g * (primal_value(x) <= primal_value(y))


def minimum_vjp_y(g, out, x, y):
    """ȳ += v̄ [x > y]"""
    return g * (primal_value(x) > primal_value(y))


def arctan2_jvp_y(dy, out, y, x):
    """v̇ += x ẏ / (x² + y²)"""
    return dy * (x / (x * x + y * y))


def arctan2_jvp_x(dx, out, y, x):
    """v̇ -= y ẋ / (x² + y²)"""
    return -(dx * (y / (x * x + y * y)))


def arctan2_vjp_y(g, out, y, x):
    """ȳ += v̄ x / (x² + y²)"""
    return g * (x / (x * x + y * y))


def arctan2_vjp_x(g, out, y, x):
    """x̄ -= v̄ y / (x² + y²)"""
    return -(g * (y / (x * x + y * y)))


def logaddexp_jvp_x(dx, out, x, y):
    """v̇ += e^(x - v) ẋ"""
    return dx * ops.exp(x - out)


def logaddexp_jvp_y(dy, out, x, y):
    """v̇ += e^(y - v) ẏ"""
    return dy * ops.exp(y - out)


def logaddexp_vjp_x(g, out, x, y):
    """x̄ += v̄ e^(x - v)"""
    return g * ops.exp(x - out)


def logaddexp_vjp_y(g, out, x, y):
    """ȳ += v̄ e^(y - v)"""
    return g * ops.exp(y - out)


def _minimum(x, y):
    if type(x) is float and type(y) is float:
        return x if x <= y else y
    return np.minimum(x, y)


def _arctan2(y, x):
    if type(x) is float and type(y) is float:
        return math.atan2(y, x)
    return np.arctan2(y, x)


def _logaddexp(x, y):
    if type(x) is float and type(y) is float:
        high, low = (x, y) if x >= y else (y, x)
        if math.isinf(high):  # +inf wins; -inf means both are -inf
            return high
        return high + math.log1p(math.exp(low - high))  # never overflows; nan stays nan
    return np.logaddexp(x, y)


def _floor_ratio(x, y):
    """⌊x / y⌋ as a constant: piecewise constant, so its own derivative is zero."""
    return np.floor_divide(primal_value(x), primal_value(y))


def mod_jvp_x(dx, out, x, y):
    """v̇ += ẋ"""
    return dx


def mod_jvp_y(dy, out, x, y):
    """v̇ -= ⌊x / y⌋ ẏ"""
    return -(dy * _floor_ratio(x, y))


def mod_vjp_x(g, out, x, y):
    """x̄ += v̄"""
    return g


def mod_vjp_y(g, out, x, y):
    """ȳ -= v̄ ⌊x / y⌋"""
    return -(g * _floor_ratio(x, y))


def _mod(x, y):
    if type(x) is float and type(y) is float and y != 0.0:
        return x % y
    return np.mod(x, y)


def _mod_examples(rng):
    """Away from the jumps of x mod y (where x / y is a whole number)."""
    x = rng.uniform(-5.0, 5.0, (3, 4))
    y = rng.choice([-1.3, 0.7, 2.1], (1, 4))
    x = np.where(np.abs(x / y - np.round(x / y)) < 0.1, x + 0.25 * y, x)
    return [((x, y), {}), ((3.7, -1.6), {}), ((np.array([-2.2, 4.9]), 1.5), {})]


register(Rule("minimum", _minimum, (minimum_jvp_x, minimum_jvp_y),
              (minimum_vjp_x, minimum_vjp_y), "min",
              r"v = \min(x, y)", r"\dot v = [x \le y]\, \dot x + [x > y]\, \dot y",
              r"\bar x \mathrel{+}= \bar v [x \le y],\; \bar y \mathrel{+}= \bar v [x > y]",
              (Domain(0.5, 3.0), Domain(-3.0, -0.5)), True))
register(Rule("arctan2", _arctan2, (arctan2_jvp_y, arctan2_jvp_x),
              (arctan2_vjp_y, arctan2_vjp_x), "atan2",
              r"v = \operatorname{atan2}(y, x)", r"\dot v = (x \dot y - y \dot x) / (x^2 + y^2)",
              r"\bar y \mathrel{+}= \bar v x / (x^2 + y^2),\; "
              r"\bar x \mathrel{-}= \bar v y / (x^2 + y^2)", (NONZERO, NONZERO), True))
register(Rule("logaddexp", _logaddexp, (logaddexp_jvp_x, logaddexp_jvp_y),
              (logaddexp_vjp_x, logaddexp_vjp_y), "lae",
              r"v = \log(e^{x} + e^{y})", r"\dot v = e^{x - v} \dot x + e^{y - v} \dot y",
              r"\bar x \mathrel{+}= \bar v e^{x - v},\; \bar y \mathrel{+}= \bar v e^{y - v}",
              (E, E), True))
register(Rule("mod", _mod, (mod_jvp_x, mod_jvp_y), (mod_vjp_x, mod_vjp_y), "mod",
              r"v = x - y \lfloor x / y \rfloor", r"\dot v = \dot x - \lfloor x / y \rfloor \dot y",
              r"\bar x \mathrel{+}= \bar v,\; \bar y \mathrel{-}= \bar v \lfloor x / y \rfloor",
              broadcasts=True, examples=_mod_examples))


# --------------------------------------------------------------------------------------
# Selections: where and clip (the condition and the limits are constants)
# --------------------------------------------------------------------------------------


def where_jvp_x(dx, out, x, y, *, condition):
    """v̇ += [c] ẋ"""
    return ops.where(condition, dx, 0.0)


def where_jvp_y(dy, out, x, y, *, condition):
    """v̇ += [not c] ẏ"""
    return ops.where(condition, 0.0, dy)


def where_vjp_x(g, out, x, y, *, condition):
    """x̄ += v̄ [c]"""
    return ops.where(condition, g, 0.0)


def where_vjp_y(g, out, x, y, *, condition):
    """ȳ += v̄ [not c]"""
    return ops.where(condition, 0.0, g)


def clip_jvp(dx, out, x, *, low, high):
    """v̇ = [low < v < high] ẋ"""
    return ops.where(_inside(out, low, high), dx, 0.0)


def clip_vjp(g, out, x, *, low, high):
    """x̄ += v̄ [low < v < high]"""
    return ops.where(_inside(out, low, high), g, 0.0)


def _inside(out, low, high):
    """Where clip passed x through: strictly inside the limits, as autograd decides."""
    v = primal_value(out)
    return (v != low) & (v != high)


def _where(x, y, *, condition):
    return np.where(condition, x, y)


def _clip(x, *, low, high):
    return np.clip(x, low, high)


def _where_examples(rng):
    x, y = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    return [((x, y), {"condition": x > y}), ((x, rng.standard_normal(4)), {"condition": x > 0}),
            ((rng.standard_normal(4), 2.0), {"condition": np.array([[True], [False]])})]


def _clip_examples(rng):
    x = rng.uniform(-2.0, 2.0, (3, 4))
    x = np.where(np.abs(np.abs(x) - 1.0) < 0.05, 0.5 * x, x)  # no entry at a kink
    return [((x,), {"low": -1.0, "high": 1.0}), ((x,), {"low": -np.inf, "high": 0.5}),
            ((x,), {"low": np.array([-1.0, 0.0, -np.inf, -0.5]), "high": np.inf})]


register(Rule("where", _where, (where_jvp_x, where_jvp_y), (where_vjp_x, where_vjp_y), "where",
              r"v = c\; ?\; x : y", r"\dot v = c\; ?\; \dot x : \dot y",
              r"\bar x \mathrel{+}= [c]\, \bar v,\; \bar y \mathrel{+}= [\lnot c]\, \bar v",
              broadcasts=True, examples=_where_examples))
register(Rule("clip", _clip, (clip_jvp,), (clip_vjp,), "clip",
              r"v = \min(\max(x, a), b)", r"\dot v = [a < v < b]\, \dot x",
              r"\bar x \mathrel{+}= [a < v < b]\, \bar v", examples=_clip_examples))
