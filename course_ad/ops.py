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

from . import einsum_notation
from .dispatch import Traced, apply, apply2, primal_value, shape_of
from .registry import RULES, MissingRuleError

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
    return apply2(RULES["add"], x, y)


def subtract(x: Any, y: Any) -> Any:
    """x - y"""
    return apply2(RULES["sub"], x, y)


def multiply(x: Any, y: Any) -> Any:
    """x · y"""
    return apply2(RULES["mul"], x, y)


def divide(x: Any, y: Any) -> Any:
    """x / y"""
    return apply2(RULES["div"], x, y)


def negative(x: Any) -> Any:
    """-x"""
    return apply(RULES["neg"], x)


def power(x: Any, y: Any) -> Any:
    """xʸ, differentiable in both; at x = 0 and at x < 0 as torch and JAX define it:

    ∂/∂x is 0 where y = 0 and inf for 0 < y < 1 at x = 0; ∂/∂y is 0 at x = 0 with y ≥ 0;
    a negative base gives nan (real, never complex) where the power is not real."""
    return apply2(RULES["pow"], x, y)


def exp(x: Any) -> Any:
    """eˣ"""
    return apply(RULES["exp"], x)


def log(x: Any) -> Any:
    """natural logarithm"""
    return apply(RULES["log"], x)


def sin(x: Any) -> Any:
    """sine"""
    return apply(RULES["sin"], x)


def cos(x: Any) -> Any:
    """cosine"""
    return apply(RULES["cos"], x)


def tan(x: Any) -> Any:
    """tangent"""
    return apply(RULES["tan"], x)


def sqrt(x: Any) -> Any:
    """√x"""
    return apply(RULES["sqrt"], x)


def tanh(x: Any) -> Any:
    """hyperbolic tangent"""
    return apply(RULES["tanh"], x)


def sigmoid(x: Any) -> Any:
    """σ(x) = 1 / (1 + e⁻ˣ), computed without overflow"""
    return apply(RULES["sigmoid"], x)


def relu(x: Any) -> Any:
    """max(x, 0)"""
    return apply(RULES["relu"], x)


def abs(x: Any) -> Any:  # noqa: A001 - the name numpy and the lectures use
    """|x|"""
    return apply(RULES["abs"], x)


def maximum(x: Any, y: Any) -> Any:
    """elementwise max(x, y)"""
    return apply2(RULES["maximum"], x, y)


def matmul(a: Any, b: Any) -> Any:
    """A @ B with numpy's rules for vectors and stacks of matrices"""
    return apply2(RULES["matmul"], a, b)


def dot(a: Any, b: Any) -> Any:
    """numpy's dot: a · b for a scalar, A @ B up to 2-D, and for an N-D b the sum over the
    last axis of a and the second-to-last axis of b, every stack of a against every stack
    of b (shape a.shape[:-1] + b.shape[:-2] + b.shape[-1:]).

    Built from transpose, reshape and matmul, so both modes and every order come with it."""
    sa, sb = shape_of(a), shape_of(b)
    if not sa or not sb:
        return multiply(a, b)
    if len(sb) <= 2:  # here dot and matmul agree
        return matmul(a, b)
    if sa[-1] != sb[-2]:
        raise ValueError(
            f"dot: shapes {sa} and {sb} do not align: the last axis of the first ({sa[-1]}) "
            f"must match the second-to-last axis of the second ({sb[-2]}); for stacks of "
            "matrices multiplied pairwise use matmul (@) instead"
        )
    n = len(sb)
    columns = reshape(transpose(b, (n - 2,) + tuple(range(n - 2)) + (n - 1,)), (sb[-2], -1))
    return reshape(matmul(a, columns), sa[:-1] + sb[:-2] + sb[-1:])


def sum(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:  # noqa: A001
    """Σ x over ``axis`` (all axes by default)"""
    return apply(RULES["sum"], x, axis=_axes(x, axis, "sum"), keepdims=keepdims)


def _sum(x: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    """``sum`` for callers whose axes are already sorted and non-negative (no re-checking)."""
    return apply(RULES["sum"], x, axis=axis, keepdims=keepdims)


def mean(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    """mean of x over ``axis``"""
    return apply(RULES["mean"], x, axis=_axes(x, axis, "mean"), keepdims=keepdims)


def max(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:  # noqa: A001
    """max of x over ``axis`` (ties share the gradient equally)"""
    return apply(RULES["max"], x, axis=_axes(x, axis, "max"), keepdims=keepdims)


def logsumexp(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    """log Σ eˣ over ``axis``, stable for large x"""
    return apply(RULES["logsumexp"], x, axis=_axes(x, axis, "logsumexp"),
                 keepdims=keepdims)


def cross_entropy(logits: Any, labels: Any) -> Any:
    """mean softmax cross-entropy of (rows, classes) logits against integer labels"""
    labels = np.asarray(primal_value(labels))
    if labels.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: labels must be integers, got dtype {labels.dtype}")
    return apply(RULES["cross_entropy"], logits, labels=labels)


def reshape(x: Any, shape: int | Sequence[int]) -> Any:
    """x with a new shape (one entry may be -1)"""
    shape = _shape(shape)
    return apply(RULES["reshape"], x, shape=shape)


def transpose(x: Any, axes: Sequence[int] | None = None) -> Any:
    """x with its axes permuted (reversed by default)"""
    ndim = len(shape_of(x))
    axes = tuple(range(ndim))[::-1] if axes is None else tuple(int(a) % ndim for a in axes)
    if sorted(axes) != list(range(ndim)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of the {ndim} axes of "
                         f"an array of shape {shape_of(x)}")
    return apply(RULES["transpose"], x, axes=axes)


def broadcast_to(x: Any, shape: int | Sequence[int]) -> Any:
    """x repeated along new or size-1 axes to ``shape``"""
    shape = _shape(shape)
    return apply(RULES["broadcast_to"], x, shape=shape)


def getitem(x: Any, index: Any) -> Any:
    """x[index] (basic and advanced numpy indexing)"""
    return apply(RULES["getitem"], x, index=_plain_index(index))


def scatter_add(g: Any, index: Any, shape: Sequence[int]) -> Any:
    """zeros(shape) with g added at index: the adjoint of indexing"""
    return apply(RULES["scatter_add"], g, index=_plain_index(index), shape=tuple(shape))


def stack(xs: Sequence[Any], axis: int = 0) -> Any:
    """[x₁, …, xₙ] along a new axis"""
    xs = tuple(xs)
    if not xs:
        raise ValueError("stack: needs at least one value")
    ndim = len(shape_of(xs[0])) + 1
    return apply(RULES["stack"], *xs, axis=_one_axis(axis, ndim, "stack"))


def concatenate(xs: Sequence[Any], axis: int = 0) -> Any:
    """[x₁; …; xₙ] joined along an existing axis"""
    xs = tuple(xs)
    if not xs:
        raise ValueError("concatenate: needs at least one value")
    ndim = len(shape_of(xs[0]))
    return apply(RULES["concatenate"], *xs, axis=_one_axis(axis, ndim, "concatenate"))


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
    def __add__(self, other): return apply2(RULES["add"], self, other)
    def __radd__(self, other): return apply2(RULES["add"], other, self)
    def __sub__(self, other): return apply2(RULES["sub"], self, other)
    def __rsub__(self, other): return apply2(RULES["sub"], other, self)
    def __mul__(self, other): return apply2(RULES["mul"], self, other)
    def __rmul__(self, other): return apply2(RULES["mul"], other, self)
    def __truediv__(self, other): return apply2(RULES["div"], self, other)
    def __rtruediv__(self, other): return apply2(RULES["div"], other, self)
    def __pow__(self, other): return apply2(RULES["pow"], self, other)
    def __rpow__(self, other): return apply2(RULES["pow"], other, self)
    def __matmul__(self, other): return apply2(RULES["matmul"], self, other)
    def __rmatmul__(self, other): return apply2(RULES["matmul"], other, self)
    def __neg__(self): return negative(self)
    def __pos__(self): return self
    def __abs__(self): return abs(self)
    def __mod__(self, other): return mod(self, other)
    def __rmod__(self, other): return mod(other, self)

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
    def min(self, axis: Axis = None, keepdims: bool = False): return min(self, axis, keepdims)
    def prod(self, axis: Axis = None, keepdims: bool = False): return prod(self, axis, keepdims)
    def var(self, axis: Axis = None, ddof: int = 0, keepdims: bool = False):
        return var(self, axis, ddof, keepdims)
    def std(self, axis: Axis = None, ddof: int = 0, keepdims: bool = False):
        return std(self, axis, ddof, keepdims)
    def cumsum(self, axis: int | None = None): return cumsum(self, axis)
    def clip(self, a_min: Any = None, a_max: Any = None): return clip(self, a_min, a_max)
    def squeeze(self, axis: Axis = None): return squeeze(self, axis)
    def ravel(self): return ravel(self)
    def flatten(self): return ravel(self)
    def swapaxes(self, axis1: int, axis2: int): return swapaxes(self, axis1, axis2)
    def repeat(self, repeats: int, axis: int | None = None): return repeat(self, repeats, axis)
    def trace(self, offset: int = 0, axis1: int = 0, axis2: int = 1):
        return trace(self, offset, axis1, axis2)
    def transpose(self, *axes): return transpose(self, axes[0] if len(axes) == 1 else axes or None)
    def dot(self, other): return dot(self, other)
    def copy(self): return self  # traced values are never changed in place

    def reshape(self, *shape):
        return reshape(self, shape[0] if len(shape) == 1 else shape)

    def __array__(self, dtype=None, copy=None):
        """np.asarray, np.array, np.r_, np.c_, ndarray[...] = x (x an array): refused.

        A numpy array cannot hold a derivative: the conversion would silently turn the
        traced value into a constant (or an array of objects) and its gradient into zero.
        ``float(x)`` of a single number still works, as in torch: it is an explicit request
        for the plain value."""
        raise TypeError(
            f"numpy cannot convert a {type(self).__name__} into an array (np.asarray, "
            "np.array, np.r_, np.c_ and assignment into an array all try to): the derivative "
            "would be lost. Use course_ad.stack([...]) or course_ad.concatenate([...]) to "
            "combine traced values, course_ad.reshape to change a shape, or .value for the "
            "plain numbers (a constant, with no derivative)."
        )

    # numpy calls these for np.sin(x), ndarray + x, ndarray @ x, np.sum(x), ...
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method == "__call__" and not kwargs:
            if ufunc.__name__ in _UFUNCS:
                return _UFUNCS[ufunc.__name__](*inputs)
            if ufunc.__name__ in _NOT_DIFFERENTIABLE_UFUNCS:
                return ufunc(*(primal_value(v) for v in inputs))
        raise MissingRuleError(
            f"no rule for numpy.{ufunc.__name__}"
            + ("" if method == "__call__" else f".{method}")
            + (f" with {sorted(kwargs)}" if kwargs else "")
            + f" on {type(self).__name__}; known rules: {', '.join(sorted(RULES))}. "
            "Use the course_ad function of that name, or add a rule with "
            "course_ad.rules.register(Rule(...))"
        )

    def __array_function__(self, func, types, args, kwargs):
        name = func.__name__
        if name in _FUNCTIONS:
            return _FUNCTIONS[name](*args, **kwargs)
        if name in _INSPECTION:
            return func(*_strip(args), **_strip(kwargs))
        where = getattr(func, "__module__", None) or "numpy"
        raise MissingRuleError(
            f"no rule for {where}.{name} on {type(self).__name__}; known rules: "
            f"{', '.join(sorted(RULES))}. Use course_ad's own functions "
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
    "concatenate": concatenate, "dot": dot, "matmul": matmul,
    "copy": lambda x, *args, **kwargs: x,  # a traced value is immutable: the copy is itself
}
_INSPECTION = {
    "shape", "ndim", "size", "allclose", "isclose", "array_equal", "argmax", "argmin",
    "zeros_like", "ones_like", "empty_like", "full_like", "iscomplexobj", "isrealobj",
    "result_type", "round", "around", "array2string", "array_repr",
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


# --------------------------------------------------------------------------------------
# More primitives: elementwise maths, shapes, contractions, reductions, linear algebra.
# Each function normalises its parameters (axes become non-negative tuples) and applies
# one record of the table; the records live in rules_elementwise, rules_shape,
# rules_contraction, rules_reduction and rules_linalg.
# --------------------------------------------------------------------------------------


def minimum(x: Any, y: Any) -> Any:
    """elementwise min(x, y)"""
    return apply(RULES["minimum"], x, y)


def square(x: Any) -> Any:
    """x²"""
    return apply(RULES["square"], x)


def log1p(x: Any) -> Any:
    """log(1 + x), accurate for small x"""
    return apply(RULES["log1p"], x)


def expm1(x: Any) -> Any:
    """eˣ - 1, accurate for small x"""
    return apply(RULES["expm1"], x)


def log2(x: Any) -> Any:
    """base-2 logarithm"""
    return apply(RULES["log2"], x)


def log10(x: Any) -> Any:
    """base-10 logarithm"""
    return apply(RULES["log10"], x)


def cosh(x: Any) -> Any:
    """hyperbolic cosine"""
    return apply(RULES["cosh"], x)


def sinh(x: Any) -> Any:
    """hyperbolic sine"""
    return apply(RULES["sinh"], x)


def arcsin(x: Any) -> Any:
    """inverse sine, for -1 < x < 1"""
    return apply(RULES["arcsin"], x)


def arccos(x: Any) -> Any:
    """inverse cosine, for -1 < x < 1"""
    return apply(RULES["arccos"], x)


def arctan(x: Any) -> Any:
    """inverse tangent"""
    return apply(RULES["arctan"], x)


def arctan2(y: Any, x: Any) -> Any:
    """the angle of the point (x, y), in (-π, π]"""
    return apply(RULES["arctan2"], y, x)


def logaddexp(x: Any, y: Any) -> Any:
    """log(eˣ + eʸ), stable for large x and y"""
    return apply(RULES["logaddexp"], x, y)


def mod(x: Any, y: Any) -> Any:
    """x mod y with the sign of y, as numpy's (x - y ⌊x / y⌋)"""
    return apply(RULES["mod"], x, y)


def where(condition: Any, x: Any, y: Any) -> Any:
    """x where the condition holds, y elsewhere (the condition is a constant)"""
    condition = np.asarray(primal_value(condition)).astype(bool)
    return apply(RULES["where"], x, y, condition=condition)


def clip(x: Any, a_min: Any = None, a_max: Any = None) -> Any:
    """x limited to [a_min, a_max] (None: no limit on that side)"""
    if isinstance(a_min, Traced) or isinstance(a_max, Traced):  # traced limits: compose
        low = x if a_min is None else maximum(x, a_min)
        return low if a_max is None else minimum(low, a_max)
    low = -np.inf if a_min is None else a_min
    high = np.inf if a_max is None else a_max
    return apply(RULES["clip"], x, low=low, high=high)


def tril(x: Any, k: int = 0) -> Any:
    """x with the entries above the k-th diagonal set to 0 (on the last two axes)"""
    _at_least_2d(x, "tril")
    return apply(RULES["tril"], x, k=int(k))


def triu(x: Any, k: int = 0) -> Any:
    """x with the entries below the k-th diagonal set to 0 (on the last two axes)"""
    _at_least_2d(x, "triu")
    return apply(RULES["triu"], x, k=int(k))


def repeat(x: Any, repeats: int, axis: int | None = None) -> Any:
    """each entry of x ``repeats`` times along ``axis`` (of the flattened x for None)"""
    if not isinstance(repeats, numbers.Integral) or repeats < 0:
        raise TypeError(f"repeat: repeats must be a non-negative int, got {repeats!r}; for a "
                        "different count per entry, index with np.repeat(np.arange(n), counts)")
    if axis is not None:
        axis = _one_axis(axis, len(shape_of(x)), "repeat")
    return apply(RULES["repeat"], x, repeats=int(repeats), axis=axis)


def tile(x: Any, reps: int | Sequence[int]) -> Any:
    """x repeated as a block ``reps`` times along each axis"""
    reps = (int(reps),) if isinstance(reps, numbers.Integral) else tuple(int(r) for r in reps)
    ndim = builtins.max(len(reps), len(shape_of(x)))
    return apply(RULES["tile"], x, reps=(1,) * (ndim - len(reps)) + reps)


def swapaxes(x: Any, axis1: int, axis2: int) -> Any:
    """x with two axes exchanged"""
    ndim = len(shape_of(x))
    return apply(RULES["swapaxes"], x, axis1=_one_axis(axis1, ndim, "swapaxes"),
                 axis2=_one_axis(axis2, ndim, "swapaxes"))


def moveaxis(x: Any, source: int | Sequence[int], destination: int | Sequence[int]) -> Any:
    """x with axes ``source`` moved to positions ``destination``, the others in order"""
    ndim = len(shape_of(x))
    source, destination = _int_tuple(source), _int_tuple(destination)
    if len(source) != len(destination):
        raise ValueError(f"moveaxis: {len(source)} source axes but {len(destination)} "
                         "destinations; give one destination per axis moved")
    return apply(RULES["moveaxis"], x,
                 source=tuple(_one_axis(a, ndim, "moveaxis") for a in source),
                 destination=tuple(_one_axis(a, ndim, "moveaxis") for a in destination))


def squeeze(x: Any, axis: Axis = None) -> Any:
    """x without its size-1 axes (or just those in ``axis``)"""
    shape = shape_of(x)
    if axis is None:
        axis = tuple(i for i, n in enumerate(shape) if n == 1)
    axis = _axes(x, axis, "squeeze")
    for a in axis:
        if shape[a] != 1:
            raise ValueError(f"squeeze: axis {a} of shape {shape} has size {shape[a]}, not 1; "
                             "only size-1 axes can be removed (reshape otherwise)")
    return apply(RULES["squeeze"], x, axis=axis)


def expand_dims(x: Any, axis: int | Sequence[int]) -> Any:
    """x with new size-1 axes at positions ``axis`` of the result"""
    axis = _int_tuple(axis)
    ndim = len(shape_of(x)) + len(axis)
    return apply(RULES["expand_dims"], x,
                 axis=tuple(sorted(_one_axis(a, ndim, "expand_dims") for a in axis)))


def ravel(x: Any) -> Any:
    """x flattened to one axis, in row-major order"""
    return apply(RULES["ravel"], x)


def flip(x: Any, axis: Axis = None) -> Any:
    """x in reverse order along ``axis`` (all axes by default)"""
    axis = tuple(range(len(shape_of(x)))) if axis is None else _axes(x, axis, "flip")
    return apply(RULES["flip"], x, axis=axis)


def roll(x: Any, shift: int | Sequence[int], axis: Axis = None) -> Any:
    """x shifted cyclically by ``shift`` places along ``axis`` (of the flattened x for None)"""
    if axis is None:
        return reshape(roll(ravel(x), shift, 0), shape_of(x))
    shift, axis = np.broadcast_arrays(np.asarray(shift, dtype=int), np.asarray(axis, dtype=int))
    ndim = len(shape_of(x))
    return apply(RULES["roll"], x, shift=tuple(int(s) for s in shift.ravel()),
                 axis=tuple(_one_axis(int(a), ndim, "roll") for a in axis.ravel()))


def vstack(xs: Sequence[Any]) -> Any:
    """the values as rows, one below the other (1-D values become rows)"""
    xs = tuple(xs)
    if not xs:
        raise ValueError("vstack: needs at least one value")
    return apply(RULES["vstack"], *xs)


def hstack(xs: Sequence[Any]) -> Any:
    """the values side by side (joined along axis 1, or axis 0 for 1-D values)"""
    xs = tuple(xs)
    if not xs:
        raise ValueError("hstack: needs at least one value")
    return apply(RULES["hstack"], *xs)


def pad(x: Any, pad_width: Any, mode: str = "constant", constant_values: float = 0.0) -> Any:
    """x with ``pad_width`` = (before, after) entries of ``constant_values`` around each axis"""
    if mode != "constant":
        raise NotImplementedError(f"pad: only mode='constant' has a rule, got mode={mode!r}; "
                                  "build other paddings from getitem and concatenate")
    if isinstance(constant_values, Traced):
        raise TypeError("pad: constant_values must be a constant number; to differentiate "
                        "with respect to it, concatenate a traced border instead")
    ndim = len(shape_of(x))
    widths = np.broadcast_to(np.asarray(pad_width, dtype=int), (ndim, 2))
    return apply(RULES["pad"], x, pad_width=tuple((int(b), int(a)) for b, a in widths),
                 constant_values=float(constant_values))


def sort(x: Any, axis: int | None = -1) -> Any:
    """x sorted along ``axis`` (of the flattened x for None); ties keep their order"""
    if axis is None:
        return sort(ravel(x), 0)
    return apply(RULES["sort"], x, axis=_one_axis(axis, len(shape_of(x)), "sort"))


def einsum(subscripts: str, *operands: Any, optimize: Any = False) -> Any:
    """Σ over repeated indices, in Einstein's notation: einsum("ij,jk->ik", A, B) = A B

    ``optimize`` is accepted for numpy's sake and ignored: the rule contracts in one call."""
    spec = einsum_notation.normalise(subscripts, [shape_of(x) for x in operands])
    return apply(RULES["einsum"], *operands, subscripts=spec)


def tensordot(a: Any, b: Any, axes: int | Sequence[Any] = 2) -> Any:
    """Σ a·b over the given axes of a and b (the last ``axes`` of a with the first of b)"""
    na, nb = len(shape_of(a)), len(shape_of(b))
    if isinstance(axes, numbers.Integral):
        axes_a, axes_b = tuple(range(na - int(axes), na)), tuple(range(int(axes)))
    else:
        axes_a, axes_b = _int_tuple(axes[0]), _int_tuple(axes[1])
    if len(axes_a) != len(axes_b):
        raise ValueError(f"tensordot: {len(axes_a)} axes of a but {len(axes_b)} of b; pair "
                         "each contracted axis of a with one of b")
    return apply(RULES["tensordot"], a, b,
                 axes=(tuple(_one_axis(i, na, "tensordot") for i in axes_a),
                       tuple(_one_axis(i, nb, "tensordot") for i in axes_b)))


def outer(a: Any, b: Any) -> Any:
    """aᵢ bⱼ for the flattened a and b"""
    return apply(RULES["outer"], a, b)


def inner(a: Any, b: Any) -> Any:
    """Σ a·b over the last axis of each (a·b for a scalar)"""
    if not shape_of(a) or not shape_of(b):
        return multiply(a, b)
    return apply(RULES["inner"], a, b)


def trace(x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    """Σᵢ x[i, i + offset] over two axes"""
    ndim = len(shape_of(x))
    axis1, axis2 = _one_axis(axis1, ndim, "trace"), _one_axis(axis2, ndim, "trace")
    if axis1 == axis2:
        raise ValueError(f"trace: axis1 and axis2 are both {axis1}; give two different axes")
    return apply(RULES["trace"], x, offset=int(offset), axis1=axis1, axis2=axis2)


def diag(x: Any, k: int = 0) -> Any:
    """the k-th diagonal of a matrix, or the square matrix with vector x on it"""
    if len(shape_of(x)) not in (1, 2):
        raise ValueError(f"diag: x must be 1-D or 2-D, got shape {shape_of(x)}")
    return apply(RULES["diag"], x, k=int(k))


def kron(a: Any, b: Any) -> Any:
    """the Kronecker product: block (i, j) is a[i, j] b"""
    return apply(RULES["kron"], a, b)


def prod(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    """Π x over ``axis`` (all axes by default)"""
    return apply(RULES["prod"], x, axis=_axes(x, axis, "prod"), keepdims=keepdims)


def min(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:  # noqa: A001
    """min of x over ``axis`` (ties share the gradient equally)"""
    return apply(RULES["min"], x, axis=_axes(x, axis, "min"), keepdims=keepdims)


def var(x: Any, axis: Axis = None, ddof: int = 0, keepdims: bool = False) -> Any:
    """variance Σ (x - mean)² / (n - ddof) over ``axis``"""
    return apply(RULES["var"], x, axis=_axes(x, axis, "var"), ddof=int(ddof),
                 keepdims=keepdims)


def std(x: Any, axis: Axis = None, ddof: int = 0, keepdims: bool = False) -> Any:
    """standard deviation √var over ``axis``"""
    return apply(RULES["std"], x, axis=_axes(x, axis, "std"), ddof=int(ddof),
                 keepdims=keepdims)


def cumsum(x: Any, axis: int | None = None) -> Any:
    """running sums along ``axis`` (of the flattened x for None)"""
    if axis is None:
        return cumsum(ravel(x), 0)
    return apply(RULES["cumsum"], x, axis=_one_axis(axis, len(shape_of(x)), "cumsum"))


def norm(x: Any, ord: Any = None, axis: Axis = None,  # noqa: A002 - numpy's name
         keepdims: bool = False) -> Any:
    """‖x‖: the 2-norm (Frobenius for matrices) by default, or (Σ |x|ᵖ)^(1/p) for ord=p"""
    axes = _axes(x, axis, "norm")
    count = len(shape_of(x)) if axes is None else len(axes)
    if ord in (None, "fro") or (ord == 2 and count == 1):
        p = 2.0
    elif isinstance(ord, numbers.Real) and count == 1 and 1 <= ord < np.inf:
        p = float(ord)
    elif ord in (np.inf, -np.inf) and count == 1:
        reduce = max if ord > 0 else min
        return reduce(abs(x), axis=axes, keepdims=keepdims)
    else:
        raise NotImplementedError(
            f"norm: ord={ord!r} over {count} axes has no rule; vector p-norms (p ≥ 1, inf) "
            "and the Frobenius norm are supported; for a matrix 2-norm use the largest "
            "singular value"
        )
    return apply(RULES["norm"], x, p=p, axis=axes, keepdims=keepdims)


def solve(a: Any, b: Any) -> Any:
    """x with A x = b (b a vector, or a matrix of right-hand sides)"""
    return apply(RULES["solve"], a, b)


def inv(a: Any) -> Any:
    """A⁻¹ (of each matrix in a stack)"""
    return apply(RULES["inv"], a)


def det(a: Any) -> Any:
    """det A (of each matrix in a stack)"""
    return apply(RULES["det"], a)


def slogdet(a: Any) -> tuple[Any, Any]:
    """(sign, log |det A|): the sign is a constant, the logarithm is differentiable"""
    sign = np.sign(np.linalg.det(primal_value(a)))
    return sign, apply(RULES["logabsdet"], a)


def _at_least_2d(x: Any, who: str) -> None:
    if len(shape_of(x)) < 2:
        raise ValueError(f"{who}: needs a matrix (or a stack of them), got shape {shape_of(x)}")


def _int_tuple(value: int | Sequence[int]) -> tuple[int, ...]:
    return (int(value),) if isinstance(value, numbers.Integral) else tuple(int(v) for v in value)


_UFUNCS.update({
    "minimum": minimum, "square": square, "log1p": log1p, "expm1": expm1, "log2": log2,
    "log10": log10, "cosh": cosh, "sinh": sinh, "arcsin": arcsin, "arccos": arccos,
    "arctan": arctan, "arctan2": arctan2, "logaddexp": logaddexp, "remainder": mod,
})
_FUNCTIONS.update({
    "where": where, "clip": clip, "tril": tril, "triu": triu, "repeat": repeat, "tile": tile,
    "swapaxes": swapaxes, "moveaxis": moveaxis, "squeeze": squeeze, "expand_dims": expand_dims,
    "ravel": ravel, "flip": flip, "roll": roll, "vstack": vstack, "hstack": hstack, "pad": pad,
    "sort": sort, "einsum": einsum, "tensordot": tensordot, "outer": outer, "inner": inner,
    "trace": trace, "diag": diag, "kron": kron, "prod": prod, "min": min, "amin": min,
    "var": var, "std": std, "cumsum": cumsum, "norm": norm, "solve": solve, "inv": inv,
    "det": det, "slogdet": slogdet,
})
__all__ += [
    "minimum", "square", "log1p", "expm1", "log2", "log10", "cosh", "sinh", "arcsin", "arccos",
    "arctan", "arctan2", "logaddexp", "mod", "where", "clip", "tril", "triu", "repeat", "tile",
    "swapaxes", "moveaxis", "squeeze", "expand_dims", "ravel", "flip", "roll", "vstack",
    "hstack", "pad", "sort", "einsum", "tensordot", "outer", "inner", "trace", "diag", "kron",
    "prod", "min", "var", "std", "cumsum", "norm", "solve", "inv", "det", "slogdet",
]
