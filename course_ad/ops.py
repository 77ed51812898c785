"""Generic operations: one function per primitive, on floats, arrays, ForwardDiff and ReverseDiff.

``sin(x)`` computes ``np.sin`` on plain values and is traced on ``ForwardDiff`` and
``ReverseDiff`` values. The ``Operators`` mixin gives both engines the same operators and
methods by calling these functions, and teaches numpy to do the same (``np.sin(x)``,
``ndarray @ x``), so there is exactly one path from an expression to a rule.
"""

from __future__ import annotations

import builtins
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import rules
from .dispatch import Traced, apply, apply2, primal_value, shape_of

__all__ = [
    "add", "subtract", "multiply", "divide", "negative", "power", "exp", "log", "sin", "cos",
    "tan", "sqrt", "tanh", "sigmoid", "relu", "abs", "maximum", "matmul", "dot", "sum", "mean",
    "max", "logsumexp", "cross_entropy", "reshape", "transpose", "broadcast_to", "getitem",
    "scatter_add", "stack", "concatenate", "unbroadcast", "Operators",
]

Axis = int | Sequence[int] | None


# --------------------------------------------------------------------------------------
# One function per primitive
# --------------------------------------------------------------------------------------


def add(x: Any, y: Any) -> Any:
    """x + y"""
    return apply2(rules.RULES["add"], x, y)


def subtract(x: Any, y: Any) -> Any:
    """x - y"""
    return apply2(rules.RULES["sub"], x, y)


def multiply(x: Any, y: Any) -> Any:
    """x · y"""
    return apply2(rules.RULES["mul"], x, y)


def divide(x: Any, y: Any) -> Any:
    """x / y"""
    return apply2(rules.RULES["div"], x, y)


def negative(x: Any) -> Any:
    """-x"""
    return apply(rules.RULES["neg"], x)


def power(x: Any, y: Any) -> Any:
    """xʸ (differentiable in both; for x ≤ 0 the derivative in y is nan, as in numpy)"""
    return apply2(rules.RULES["pow"], x, y)


def exp(x: Any) -> Any:
    """eˣ"""
    return apply(rules.RULES["exp"], x)


def log(x: Any) -> Any:
    """natural logarithm"""
    return apply(rules.RULES["log"], x)


def sin(x: Any) -> Any:
    """sine"""
    return apply(rules.RULES["sin"], x)


def cos(x: Any) -> Any:
    """cosine"""
    return apply(rules.RULES["cos"], x)


def tan(x: Any) -> Any:
    """tangent"""
    return apply(rules.RULES["tan"], x)


def sqrt(x: Any) -> Any:
    """√x"""
    return apply(rules.RULES["sqrt"], x)


def tanh(x: Any) -> Any:
    """hyperbolic tangent"""
    return apply(rules.RULES["tanh"], x)


def sigmoid(x: Any) -> Any:
    """σ(x) = 1 / (1 + e⁻ˣ), computed without overflow"""
    return apply(rules.RULES["sigmoid"], x)


def relu(x: Any) -> Any:
    """max(x, 0)"""
    return apply(rules.RULES["relu"], x)


def abs(x: Any) -> Any:  # noqa: A001 - the name numpy and the lectures use
    """|x|"""
    return apply(rules.RULES["abs"], x)


def maximum(x: Any, y: Any) -> Any:
    """elementwise max(x, y)"""
    return apply2(rules.RULES["maximum"], x, y)


def matmul(a: Any, b: Any) -> Any:
    """A @ B with numpy's rules for vectors and stacks of matrices"""
    return apply2(rules.RULES["matmul"], a, b)


dot = matmul


def sum(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:  # noqa: A001
    """Σ x over ``axis`` (all axes by default)"""
    return apply(rules.RULES["sum"], x, axis=_axes(x, axis, "sum"), keepdims=keepdims)


def _sum(x: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    """``sum`` for callers whose axes are already sorted and non-negative (no re-checking)."""
    return apply(rules.RULES["sum"], x, axis=axis, keepdims=keepdims)


def mean(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    """mean of x over ``axis``"""
    return apply(rules.RULES["mean"], x, axis=_axes(x, axis, "mean"), keepdims=keepdims)


def max(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:  # noqa: A001
    """max of x over ``axis`` (ties share the gradient equally)"""
    return apply(rules.RULES["max"], x, axis=_axes(x, axis, "max"), keepdims=keepdims)


def logsumexp(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    """log Σ eˣ over ``axis``, stable for large x"""
    return apply(rules.RULES["logsumexp"], x, axis=_axes(x, axis, "logsumexp"),
                 keepdims=keepdims)


def cross_entropy(logits: Any, labels: Any) -> Any:
    """mean softmax cross-entropy of (rows, classes) logits against integer labels"""
    labels = np.asarray(primal_value(labels))
    if labels.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: labels must be integers, got dtype {labels.dtype}")
    return apply(rules.RULES["cross_entropy"], logits, labels=labels)


def reshape(x: Any, shape: int | Sequence[int]) -> Any:
    """x with a new shape (one entry may be -1)"""
    shape = _shape(shape)
    return apply(rules.RULES["reshape"], x, shape=shape)


def transpose(x: Any, axes: Sequence[int] | None = None) -> Any:
    """x with its axes permuted (reversed by default)"""
    ndim = len(shape_of(x))
    axes = tuple(range(ndim))[::-1] if axes is None else tuple(int(a) % ndim for a in axes)
    if sorted(axes) != list(range(ndim)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of the {ndim} axes of "
                         f"an array of shape {shape_of(x)}")
    return apply(rules.RULES["transpose"], x, axes=axes)


def broadcast_to(x: Any, shape: int | Sequence[int]) -> Any:
    """x repeated along new or size-1 axes to ``shape``"""
    shape = _shape(shape)
    return apply(rules.RULES["broadcast_to"], x, shape=shape)


def getitem(x: Any, index: Any) -> Any:
    """x[index] (basic and advanced numpy indexing)"""
    return apply(rules.RULES["getitem"], x, index=_plain_index(index))


def scatter_add(g: Any, index: Any, shape: Sequence[int]) -> Any:
    """zeros(shape) with g added at index: the adjoint of indexing"""
    return apply(rules.RULES["scatter_add"], g, index=_plain_index(index), shape=tuple(shape))


def stack(xs: Sequence[Any], axis: int = 0) -> Any:
    """[x₁, …, xₙ] along a new axis"""
    xs = tuple(xs)
    if not xs:
        raise ValueError("stack: needs at least one value")
    ndim = len(shape_of(xs[0])) + 1
    return apply(rules.RULES["stack"], *xs, axis=_one_axis(axis, ndim, "stack"))


def concatenate(xs: Sequence[Any], axis: int = 0) -> Any:
    """[x₁; …; xₙ] joined along an existing axis"""
    xs = tuple(xs)
    if not xs:
        raise ValueError("concatenate: needs at least one value")
    ndim = len(shape_of(xs[0]))
    return apply(rules.RULES["concatenate"], *xs, axis=_one_axis(axis, ndim, "concatenate"))


def unbroadcast(cotangent: Any, shape: tuple[int, ...]) -> Any:
    """Sum a cotangent back to an input's shape: the adjoint of numpy broadcasting.

    Broadcasting copies an input along leading axes and along its size-1 axes; the adjoint
    of a copy is a sum. The reverse engine calls this once per edge, so rules never do."""
    have = shape_of(cotangent)
    if have == shape:
        return cotangent
    lead = len(have) - len(shape)
    if lead < 0:  # a constant cotangent smaller than its input (e.g. a zero)
        return broadcast_to(cotangent, shape)
    if type(cotangent) is np.ndarray:  # plain numbers: one reduction, no tracing to do
        if lead == 1 and have[1:] == shape:  # a bias added to every row
            return np.add.reduce(cotangent, axis=0)
        axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                          if n == 1 and have[lead + i] != 1)
        return np.add.reduce(cotangent, axis=axes).reshape(shape)
    if lead:
        cotangent = _sum(cotangent, tuple(range(lead)), False)
    ones = tuple(i for i, n in enumerate(shape) if n == 1 and have[lead + i] != 1)
    if ones:
        cotangent = _sum(cotangent, ones, True)
    return cotangent


# --------------------------------------------------------------------------------------
# The operators and methods both engines share
# --------------------------------------------------------------------------------------


class Operators:
    """Operators and methods of ``ForwardDiff`` and ``ReverseDiff``: all call the functions above.

    Comparisons compare primal values and return plain booleans, so ``if x > 0`` and
    ``while`` loops work on traced values; they have no derivative."""

    __slots__ = ()
    value: Any

    # the binary operators go straight to their rule records (one call less per node)
    def __add__(self, other): return apply2(rules.RULES["add"], self, other)
    def __radd__(self, other): return apply2(rules.RULES["add"], other, self)
    def __sub__(self, other): return apply2(rules.RULES["sub"], self, other)
    def __rsub__(self, other): return apply2(rules.RULES["sub"], other, self)
    def __mul__(self, other): return apply2(rules.RULES["mul"], self, other)
    def __rmul__(self, other): return apply2(rules.RULES["mul"], other, self)
    def __truediv__(self, other): return apply2(rules.RULES["div"], self, other)
    def __rtruediv__(self, other): return apply2(rules.RULES["div"], other, self)
    def __pow__(self, other): return apply2(rules.RULES["pow"], self, other)
    def __rpow__(self, other): return apply2(rules.RULES["pow"], other, self)
    def __matmul__(self, other): return apply2(rules.RULES["matmul"], self, other)
    def __rmatmul__(self, other): return apply2(rules.RULES["matmul"], other, self)
    def __neg__(self): return negative(self)
    def __pos__(self): return self
    def __abs__(self): return abs(self)

    def __lt__(self, other): return primal_value(self) < primal_value(other)
    def __le__(self, other): return primal_value(self) <= primal_value(other)
    def __gt__(self, other): return primal_value(self) > primal_value(other)
    def __ge__(self, other): return primal_value(self) >= primal_value(other)
    def __eq__(self, other): return primal_value(self) == primal_value(other)
    def __ne__(self, other): return primal_value(self) != primal_value(other)
    __hash__ = object.__hash__  # identity: nodes are dict keys and set members

    def __bool__(self): return bool(primal_value(self))
    def __float__(self): return float(primal_value(self))
    def __int__(self): return int(primal_value(self))
    def __len__(self): return len(primal_value(self))

    def __getitem__(self, index): return getitem(self, index)

    def __setitem__(self, index, value):
        raise TypeError(
            f"{type(self).__name__} does not support assignment into it (x[{index!r}] = ...): "
            "a traced value is never changed in place, because the graph still needs the old "
            "value. Build a new value instead, e.g. with course_ad.stack, concatenate or "
            "a mask: x * mask + other * (1 - mask)."
        )

    def __iter__(self):
        if not self.shape:
            raise TypeError(f"{type(self).__name__} of a scalar is not iterable")
        return (self[i] for i in range(self.shape[0]))

    @property
    def shape(self) -> tuple[int, ...]:
        return shape_of(self)

    @property
    def ndim(self) -> int:
        return len(shape_of(self))

    @property
    def size(self) -> int:
        return int(np.prod(shape_of(self)))

    @property
    def T(self):
        return transpose(self)

    def sin(self): return sin(self)
    def cos(self): return cos(self)
    def tan(self): return tan(self)
    def exp(self): return exp(self)
    def log(self): return log(self)
    def sqrt(self): return sqrt(self)
    def tanh(self): return tanh(self)
    def sigmoid(self): return sigmoid(self)
    def relu(self): return relu(self)
    def abs(self): return abs(self)
    def sum(self, axis: Axis = None, keepdims: bool = False): return sum(self, axis, keepdims)
    def mean(self, axis: Axis = None, keepdims: bool = False): return mean(self, axis, keepdims)
    def max(self, axis: Axis = None, keepdims: bool = False): return max(self, axis, keepdims)
    def transpose(self, *axes): return transpose(self, axes[0] if len(axes) == 1 else axes or None)
    def dot(self, other): return matmul(self, other)

    def reshape(self, *shape):
        return reshape(self, shape[0] if len(shape) == 1 else shape)

    # numpy calls these for np.sin(x), ndarray + x, ndarray @ x, np.sum(x), ...
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method == "__call__" and not kwargs:
            if ufunc.__name__ in _UFUNCS:
                return _UFUNCS[ufunc.__name__](*inputs)
            if ufunc.__name__ in _NOT_DIFFERENTIABLE_UFUNCS:
                return ufunc(*(primal_value(v) for v in inputs))
        raise rules.MissingRuleError(
            f"no rule for numpy.{ufunc.__name__}"
            + ("" if method == "__call__" else f".{method}")
            + (f" with {sorted(kwargs)}" if kwargs else "")
            + f" on {type(self).__name__}; known rules: {', '.join(sorted(rules.RULES))}. "
            "Use the course_ad function of that name, or add a rule with "
            "course_ad.rules.register(Rule(...))"
        )

    def __array_function__(self, func, types, args, kwargs):
        name = func.__name__
        if name in _FUNCTIONS:
            return _FUNCTIONS[name](*args, **kwargs)
        if name in _INSPECTION:
            return func(*_strip(args), **_strip(kwargs))
        raise rules.MissingRuleError(
            f"no rule for numpy.{name} on {type(self).__name__}; known rules: "
            f"{', '.join(sorted(rules.RULES))}. Use course_ad's own functions "
            "(course_ad.sum, course_ad.stack, ...), or add a rule with course_ad.rules.register"
        )


_UFUNCS = {
    "add": add, "subtract": subtract, "multiply": multiply, "true_divide": divide,
    "divide": divide, "negative": negative, "power": power, "exp": exp, "log": log,
    "sin": sin, "cos": cos, "tan": tan, "sqrt": sqrt, "tanh": tanh, "absolute": abs,
    "maximum": maximum, "matmul": matmul, "positive": lambda x: x,
}
_NOT_DIFFERENTIABLE_UFUNCS = {
    "greater", "greater_equal", "less", "less_equal", "equal", "not_equal", "sign", "floor",
    "ceil", "rint", "isfinite", "isnan", "isinf", "signbit",
}
_FUNCTIONS = {
    "sum": sum, "mean": mean, "max": max, "amax": max, "reshape": reshape,
    "transpose": transpose, "broadcast_to": broadcast_to, "stack": stack,
    "concatenate": concatenate, "dot": matmul, "matmul": matmul,
}
_INSPECTION = {
    "shape", "ndim", "size", "allclose", "isclose", "array_equal", "argmax", "argmin",
    "zeros_like", "ones_like", "empty_like", "full_like", "iscomplexobj", "isrealobj",
    "result_type", "round", "around", "copy", "array2string", "array_repr",
}


def _strip(obj: Any) -> Any:
    if isinstance(obj, Traced):
        return primal_value(obj)
    if isinstance(obj, list | tuple):
        return type(obj)(_strip(v) for v in obj)
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items()}
    return obj


def _axes(x: Any, axis: Axis, who: str) -> tuple[int, ...] | None:
    """``axis`` as a sorted tuple of non-negative ints, checked against the value's shape."""
    if axis is None:
        return None
    ndim = len(shape_of(x))
    if type(axis) is int and 0 <= axis < ndim:
        return (axis,)  # the usual case, checked without building anything
    axis = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    return tuple(sorted(_one_axis(a, ndim, who) for a in axis))


def _shape(shape: int | Sequence[int]) -> tuple[int, ...]:
    """A shape as a tuple of ints (an int n is (n,)); a tuple of ints passes unchanged."""
    if type(shape) is tuple:
        for n in shape:
            if type(n) is not int:
                break
        else:
            return shape  # the rules' own calls: nothing to convert
    return (shape,) if isinstance(shape, numbers.Integral) else tuple(int(n) for n in shape)


_PLAIN_INDEX_TYPES = {int, slice, np.ndarray, type(None), type(Ellipsis)}


def _one_axis(axis: int, ndim: int, who: str) -> int:
    if not -ndim <= axis < builtins.max(ndim, 1):
        raise ValueError(f"{who}: axis {axis} is out of range for a value with {ndim} axes")
    return int(axis) % builtins.max(ndim, 1)


def _plain_index(index: Any) -> Any:
    """Indices are constants: strip tracing and turn lists into arrays."""
    if isinstance(index, tuple):
        for i in index:
            if type(i) not in _PLAIN_INDEX_TYPES:
                return tuple(_plain_index(i) for i in index)
        return index  # the usual case, x[rows, labels] or x[:, 0]: nothing to convert
    if isinstance(index, Traced):
        index = primal_value(index)
    if isinstance(index, list):
        return np.asarray(index)
    return index
