"""Dispatch a primitive to the engine that traces it.

Every primitive call, ``sin(x)`` or ``x * y``, comes here. When no argument is traced the
rule's primal runs on plain numbers; otherwise the argument of highest *rank* handles the
call. The rank orders nested transformations: a transformation started later sees its own
values first and treats everything else, including values traced by an outer
transformation, as constants. That single rule gives grad-of-grad, forward-over-reverse
Hessians and nested derivatives without perturbation confusion.
"""

from __future__ import annotations

import itertools
import numbers
from typing import Any

import numpy as np

__all__ = ["Traced", "apply", "apply2", "evaluate", "primal", "as_value", "primal_value",
           "new_level", "shape_of", "zeros", "ones", "is_complex", "complex_error"]

_levels = itertools.count(1)


def new_level() -> int:
    """A fresh transformation level, higher than every level handed out before."""
    return next(_levels)


class Traced:
    """Base of ``ForwardDiff`` and ``ReverseDiff``: a value that an engine follows.

    ``_rank`` is ``2 * level`` for forward mode and ``2 * level + 1`` for reverse mode, so
    that at the same level a reverse node wraps a forward one (forward over reverse).
    """

    __slots__ = ()
    _rank: int

    def _apply(self, rule: Any, args: tuple, params: dict) -> Traced:  # pragma: no cover
        raise NotImplementedError

    def _apply2(self, rule: Any, x: Any, y: Any) -> Traced:
        """``_apply`` for two arguments and no parameters; engines may specialise it."""
        return self._apply(rule, (x, y), {})


def apply(rule: Any, *args: Any, **params: Any) -> Any:
    """Run primitive ``rule`` on ``args``: plain numbers in, plain numbers out; else trace."""
    top = None
    for a in args:
        if isinstance(a, Traced) and (top is None or a._rank > top._rank):
            top = a
    if top is not None:
        return top._apply(rule, args, params)
    try:  # primal(), inlined: the rules' own operations on plain arrays come this way
        return rule.primal(*args, **params) if params else rule.primal(*args)
    except (TypeError, ValueError, IndexError) as err:
        raise _explain(rule, args, params, err) from err


def apply2(rule: Any, x: Any, y: Any) -> Any:
    """``apply`` for a primitive of two arguments and no parameters (``x * y``, ``x + 1``).

    The same choice of engine, without packing arguments: in a graph of Python floats this
    runs once per node, so its cost is most of the cost of recording the graph."""
    if isinstance(x, Traced):
        if isinstance(y, Traced) and y._rank > x._rank:
            return y._apply2(rule, x, y)
        return x._apply2(rule, x, y)
    if isinstance(y, Traced):
        return y._apply2(rule, x, y)
    try:
        return rule.primal(x, y)
    except (TypeError, ValueError, IndexError) as err:
        raise _explain(rule, (x, y), {}, err) from err


def evaluate(rule: Any, values: tuple | list, params: dict) -> Any:
    """The primal of ``rule`` on values that may still be traced by an outer level."""
    for v in values:
        if isinstance(v, Traced):
            return apply(rule, *values, **params)
    return primal(rule, values, params)


def primal(rule: Any, values: tuple | list, params: dict) -> Any:
    """The rule's primal function on plain values, with errors that name the operation."""
    try:
        return rule.primal(*values, **params) if params else rule.primal(*values)
    except (TypeError, ValueError, IndexError) as err:
        raise _explain(rule, values, params, err) from err


def as_value(value: Any, who: str) -> Any:
    """Check and normalise a value given to an engine: floats stay floats, ints become floats,
    sequences become float arrays; anything else is a ``TypeError`` that says what to do."""
    kind = type(value)
    if kind is float:
        return value
    if kind is np.ndarray and value.dtype.kind == "f":
        return value
    if isinstance(value, Traced):
        return value
    if isinstance(value, bool | np.bool_):
        return float(value)
    if isinstance(value, np.floating) and value.dtype != np.float64:
        return value  # float32 (or float16) stays in its precision
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, numbers.Complex) or (
            isinstance(value, np.ndarray) and value.dtype.kind == "c"):
        raise complex_error(who, value)
    if isinstance(value, list | tuple | np.ndarray):
        try:
            array = np.asarray(value)
        except ValueError as err:  # ragged nested lists
            raise TypeError(
                f"{who}: cannot make a numeric array from {_describe(value)}: {err}"
            ) from err
        except TypeError as err:  # traced values inside refuse to become array entries
            raise TypeError(
                f"{who}: got a sequence of traced values; combine them with "
                "course_ad.stack([...]) instead of a list or np.array"
            ) from err
        if array.dtype.kind in "biu":
            return array.astype(np.float64)
        if array.dtype.kind == "f":
            return array
        if array.dtype.kind == "c":
            raise complex_error(who, value)
    raise TypeError(
        f"{who}: the value must be a real number or a numpy array of numbers, "
        f"got {_describe(value)}. Convert it first, e.g. float(x) or np.asarray(x, dtype=float)."
    )


def is_complex(value: Any) -> bool:
    """Is this plain value complex? The engines refuse it: course_ad differentiates real
    functions only (for complex numbers the conventions of autograd, JAX and torch differ).
    Leaves are checked when made, so only constants entering an operation need this."""
    return isinstance(value, complex | np.complexfloating) or (
        type(value) is np.ndarray and value.dtype.kind == "c")


def complex_error(who: str, value: Any) -> TypeError:
    """The error for a complex leaf or constant, naming the engine or the operation."""
    return TypeError(
        f"{who}: got a complex value ({_describe(value)}); course_ad differentiates functions "
        "of real floating-point numbers only. Write the function on the real and imaginary "
        "parts as two real inputs (or on abs and angle), and differentiate that."
    )


def primal_value(x: Any) -> Any:
    """Strip every level of tracing: the plain number or array underneath."""
    while isinstance(x, Traced):
        x = x.value  # type: ignore[attr-defined]
    return x


def shape_of(x: Any) -> tuple[int, ...]:
    """Shape of a plain or traced value (``()`` for Python numbers)."""
    kind = type(x)
    if kind is np.ndarray:
        return x.shape
    if kind is float:
        return ()
    x = primal_value(x)
    if type(x) is np.ndarray:
        return x.shape
    return x.shape if isinstance(x, np.ndarray | np.generic) else np.shape(x)


def zeros(shape: tuple[int, ...], like: Any = None) -> Any:
    """A zero of this shape: a Python float for a scalar, an array otherwise; in the
    precision of ``like`` when that is a float32 (or other non-float64) value."""
    dtype = _float_dtype(like)
    if dtype is None:
        return np.zeros(shape) if shape else 0.0
    return np.zeros(shape, dtype)[()]


def ones(shape: tuple[int, ...], like: Any = None) -> Any:
    """A one of this shape (the default seed), in the precision of ``like`` as ``zeros``."""
    dtype = _float_dtype(like)
    if dtype is None:
        return np.ones(shape) if shape else 1.0
    return np.ones(shape, dtype)[()]


def _float_dtype(like: Any) -> np.dtype | None:
    """The dtype of a plain or traced value when it is a float type other than float64."""
    if like is None or type(like) is float:
        return None
    like = primal_value(like)
    dtype = getattr(like, "dtype", None)
    if dtype is None or dtype.kind != "f" or dtype == np.float64:
        return None
    return dtype


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


def _explain(rule: Any, values: tuple | list, params: dict, err: Exception) -> Exception:
    """Turn numpy's error into one that names the operation, the shapes and the fix."""
    kinds = [
        "shape " + str(np.shape(v)) if isinstance(v, np.ndarray | numbers.Number) else _describe(v)
        for v in values
    ]
    listed = " and ".join(kinds)
    extra = f" with {params}" if params else ""
    if not all(isinstance(v, np.ndarray | np.generic | numbers.Number) for v in values):
        return TypeError(
            f"{rule.name}: cannot apply to {listed}; operands must be numbers, numpy arrays, "
            "ForwardDiff or ReverseDiff values"
        )
    shapes = [np.shape(v) for v in values]
    if rule.name == "matmul" and len(shapes) == 2:
        a, b = shapes
        inner_a = a[-1] if a else None
        inner_b = b[-2] if len(b) >= 2 else (b[0] if b else None)
        return ValueError(
            f"matmul: shapes {a} and {b} do not align (inner sizes {inner_a} and {inner_b}); "
            "the last axis of the left operand must match the first (or second to last) axis "
            "of the right one; transpose one of them?"
        )
    if rule.elementwise and len(values) > 1:
        return ValueError(
            f"{rule.name}: shapes {' and '.join(map(str, shapes))} do not broadcast: numpy "
            "compares shapes from the right and each pair of sizes must be equal or 1"
        )
    return type(err)(f"{rule.name}: cannot apply to {listed}{extra}: {err}")
