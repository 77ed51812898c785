"""Fast in-place kernels for replaying a tape: a side table keyed by the rule's name.

The rule table (``course_ad.rules``) says *what* each primitive computes; these kernels
compute the same thing into a buffer the tape planned once (numpy's ``out=``), so a replayed
step allocates nothing. They are an optimisation only: an op without a kernel, or with
shapes a kernel does not take, replays through its rule's primal and VJP functions.

A kernel holds
- ``forward(out, *args, **params)``: writes the primal into ``out`` and returns it (with
  ``out=None``, a new value: how a scalar result is computed);
- ``vjp[i](g, out, *args, dst=None, **params)``: input i's cotangent, written into ``dst``
  when given (it has that cotangent's full shape), otherwise returned (``add_into[i]``, where
  given, adds it into an adjoint in place instead); ``IDENTITY`` marks a
  cotangent that is ``g`` itself (the tape then hands ``g``'s buffer on, copying nothing);
- ``reads[i]``: the primal values that VJP reads ("out" or argument positions), so the
  tape's planner knows how long each value must live;
- ``view``: the forward returns a view of its first argument instead of filling a buffer
  (``copies``: it returns a new array, as numpy's gather does).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Kernel", "KERNELS", "IDENTITY", "NEGATE", "kernel_for"]


def IDENTITY(g, out, *args, dst=None, **params):  # noqa: N802 - a marker, named like a constant
    """x̄ += v̄: the cotangent passes through unchanged."""
    if dst is None:
        return g
    np.copyto(dst, g)
    return dst


@dataclass(frozen=True)
class Kernel:
    """Replay functions of one primitive: forward into a buffer, VJPs into buffers."""

    forward: Callable[..., Any]
    vjp: tuple[Callable[..., Any] | None, ...]
    reads: tuple[frozenset, ...]
    view: bool = False  # (also set for a forward that returns a new array: no buffer either)
    copies: bool = False  # the forward returns a new array, not a view
    elementwise: bool = False  # the forward is one ufunc call: it may write over an input
    accepts: Callable[..., bool] | None = None  # (arg shapes, params) -> usable here?
    # the same question for plain argument values, asked by the eager sweep: the kernel's
    # VJPs (called without ``dst``) then replace the rule's, in fewer numpy calls and without
    # the dispatch the rules need to run on traced values too (gradients of gradients)
    takes: Callable[..., bool] | None = None
    # The forward and the VJPs into ``dst`` as source templates, for a replay that writes the
    # numpy calls out instead of calling the functions above: {0}, {1} are the arguments,
    # {out} the output buffer, {g} the cotangent, {v} the output value, {dst} the adjoint
    # buffer, {axis} etc. the (static) parameters.
    code: str | None = None
    vjp_code: tuple[str | None, ...] = ()
    add_into: tuple[Callable[..., Any] | None, ...] = ()  # per input: adds x̄ into ``target``


def kernel_for(op: str, shapes: list[tuple[int, ...]], params: dict) -> Kernel | None:
    """The kernel for ``op`` on arguments of these shapes, or None (replay the rule)."""
    if op == "getitem" and _basic(params["index"]):
        return GETITEM_VIEW
    if op == "getitem" and _distinct_positions(params["index"]):
        return GETITEM_DISTINCT
    kernel = KERNELS.get(op)
    if kernel is None or (kernel.accepts is not None and not kernel.accepts(shapes, params)):
        return None
    return kernel


def _into(dst, value):
    if dst is None:
        return value
    np.copyto(dst, value)
    return dst


def kept_shape(shape, axis):
    """The shape with the reduced axes back as size 1 (a reduction's keepdims shape)."""
    if axis is None:
        return (1,) * len(shape)
    kept = list(shape)
    for a in axis:
        kept[a] = 1
    return kept


def _restored(g, x, axis, keepdims):
    """A reduced cotangent with its reduced axes back as size 1 (broadcasts against x)."""
    if keepdims:
        return g
    kept = kept_shape(x.shape, axis)
    return g.reshape(kept) if type(g) is np.ndarray else np.reshape(g, kept)


# --------------------------------------------------------------------------------------
# Elementwise
# --------------------------------------------------------------------------------------


def _add(out, x, y):
    return np.add(x, y, out=out)


def _sub(out, x, y):
    return np.subtract(x, y, out=out)


def _mul(out, x, y):
    return np.multiply(x, y, out=out)


def _div(out, x, y):
    return np.divide(x, y, out=out)


def _neg(out, x):
    return np.negative(x, out=out)


def _exp(out, x):
    return np.exp(x, out=out)


def _log(out, x):
    return np.log(x, out=out)


def _tanh(out, x):
    return np.tanh(x, out=out)


def _relu(out, x):
    return np.maximum(x, 0.0, out=out)


def NEGATE(g, out, x, y=None, *, dst=None):  # noqa: N802 - a marker, like IDENTITY
    """ȳ += -v̄"""
    return np.negative(g, out=dst)


def _times_y(g, out, x, y, *, dst=None):
    """x̄ += v̄ y"""
    return np.multiply(g, y, out=dst)


def _times_x(g, out, x, y, *, dst=None):
    """ȳ += v̄ x"""
    return np.multiply(g, x, out=dst)


def _over_y(g, out, x, y, *, dst=None):
    """x̄ += v̄ / y"""
    return np.divide(g, y, out=dst)


def _div_y(g, out, x, y, *, dst=None):
    """ȳ += -v̄ v / y"""
    if dst is None:
        return -(g * out) / y
    shared = np.multiply(g, out, out=dst)
    np.divide(shared, y, out=shared)
    return np.negative(shared, out=shared)


def _exp_vjp(g, out, x, *, dst=None):
    """x̄ += v̄ v"""
    return np.multiply(g, out, out=dst)


def _log_vjp(g, out, x, *, dst=None):
    """x̄ += v̄ / x"""
    return np.divide(g, x, out=dst)


def _tanh_vjp(g, out, x, *, dst=None):
    """x̄ += v̄ (1 - v²)"""
    if dst is None:
        return g * (1.0 - out * out)
    factor = np.multiply(out, out, out=dst)
    np.subtract(1.0, factor, out=factor)
    return np.multiply(g, factor, out=factor)


def _relu_vjp(g, out, x, *, dst=None):
    """x̄ += v̄ [v > 0]  (v > 0 exactly where x > 0, and v outlives x on the tape)"""
    if dst is None:
        return np.multiply(g, out > 0.0)
    np.greater(out, 0.0, out=dst)  # the mask as 0.0 and 1.0, straight into the buffer
    return np.multiply(dst, g, out=dst)


def _same_shapes(shapes, params):
    """Elementwise kernels: the output shape is the broadcast of the inputs' shapes."""
    return True


# --------------------------------------------------------------------------------------
# matmul, reductions, shapes
# --------------------------------------------------------------------------------------


def _matmul(out, a, b):
    return np.matmul(a, b, out=out)


def _matmul_a(g, out, a, b, *, dst=None):
    """Ā += V̄ Bᵀ"""
    return np.matmul(g, b.T, out=dst)


def _matmul_b(g, out, a, b, *, dst=None):
    """B̄ += Aᵀ V̄, computed as (V̄ᵀ A)ᵀ into a column-major B̄ where it can.

    The same product with its result transposed: for a weight gradient (A a batch of inputs,
    B̄ tall and narrow) OpenBLAS runs it 5-15% faster (benchmarks/, MLP steps); an eager B̄
    is then a column-major array, and a tape plans that layout for its buffer."""
    if dst is None:
        return np.matmul(g.T, a).T
    if dst.flags.f_contiguous and not dst.flags.c_contiguous:
        np.matmul(g.T, a, out=dst.T)
        return dst
    return np.matmul(a.T, g, out=dst)


def _matrices(shapes, params):
    return len(shapes) == 2 and len(shapes[0]) == 2 and len(shapes[1]) == 2


def _sum(out, x, *, axis, keepdims):
    if out is None:
        return np.add.reduce(x, axis, None, None, keepdims)
    return np.add.reduce(x, axis=axis, keepdims=keepdims, out=out)


def _spread(g, x, axis, keepdims, dst, scale=None):
    """v̄ (times ``scale``) repeated over the reduced axes, into ``dst`` or a new array of
    x's shape: a writeable array of its own, since an eager sweep may hand it to the user."""
    if dst is None:
        dst = np.empty(x.shape, g.dtype if type(g) is np.ndarray or isinstance(g, np.generic)
                       else x.dtype)
    if type(g) is not np.ndarray or g.ndim == 0:
        dst.fill(g if scale is None else g * scale)
    elif scale is None:
        np.copyto(dst, _restored(g, x, axis, keepdims))
    else:
        np.multiply(_restored(g, x, axis, keepdims), scale, out=dst)
    return dst


def _sum_vjp(g, out, x, *, axis, keepdims, dst=None):
    """x̄ += v̄ broadcast back over the summed axes"""
    return _spread(g, x, axis, keepdims, dst)


def _count(x, axis):
    if axis is None:
        return x.size
    shape = x.shape
    return math.prod(shape[a] for a in axis)


def _mean(out, x, *, axis, keepdims):
    if out is None:
        return np.add.reduce(x, axis, None, None, keepdims) / _count(x, axis)
    np.add.reduce(x, axis=axis, keepdims=keepdims, out=out)
    return np.divide(out, _count(x, axis), out=out)


def _mean_vjp(g, out, x, *, axis, keepdims, dst=None):
    """x̄ += v̄ / n"""
    return _spread(g, x, axis, keepdims, dst, 1.0 / _count(x, axis))


def _max(out, x, *, axis, keepdims):
    return np.maximum.reduce(x, axis=axis, keepdims=keepdims, out=out)


def _max_vjp(g, out, x, *, axis, keepdims, dst=None):
    """x̄ += v̄ at the arg max (shared equally between ties)"""
    hits = np.equal(x, _restored(out, x, axis, keepdims))
    share = _restored(g, x, axis, keepdims)
    if np.count_nonzero(hits) != np.size(out):  # ties: each of k maxima gets v̄ / k
        ties = np.add.reduce(hits, axis=axis, keepdims=True, dtype=x.dtype)  # float32 stays
        share = np.divide(share, ties)
    return np.multiply(hits, share, out=dst)


def _max_vjp_add(g, out, x, *, axis, keepdims, target):
    """x̄ += v̄ at the arg max, added in place where x attains it (one ufunc, no product)"""
    hits = np.equal(x, _restored(out, x, axis, keepdims))
    share = _restored(g, x, axis, keepdims)
    if np.count_nonzero(hits) != out.size:  # ties: each of k maxima gets v̄ / k
        share = np.divide(share, np.add.reduce(hits, axis=axis, keepdims=True))
    np.add(target, share, out=target, where=hits)


def _axis_reduction(shapes, params):
    return len(shapes) == 1 and len(shapes[0]) >= 1


def _two_matrices(a, b) -> bool:
    return type(a) is np.ndarray and type(b) is np.ndarray and a.ndim == 2 and b.ndim == 2


def _an_array(x) -> bool:
    return type(x) is np.ndarray and x.ndim >= 1


def _reshape(out, x, *, shape):
    return np.reshape(x, shape)


def _reshape_vjp(g, out, x, *, shape, dst=None):
    """x̄ += reshape(v̄)"""
    return _into(dst, np.reshape(g, np.shape(x)))


def _transpose(out, x, *, axes):
    return np.transpose(x, axes)


def _transpose_vjp(g, out, x, *, axes, dst=None):
    """x̄ += v̄ with the inverse permutation"""
    return _into(dst, np.transpose(g, np.argsort(axes)))


def _broadcast(out, x, *, shape):
    return np.broadcast_to(x, shape)


def _getitem(out, x, *, index):
    return x[index]  # numpy gathers into a new array: one call, no copy into a buffer


def _getitem_view(out, x, *, index):
    return x[index]


def _basic(index) -> bool:
    """Basic indexing (ints, slices, None, ...) gives a view; arrays of indices copy."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, int | np.integer | slice | type(None) | type(Ellipsis))
               and not isinstance(i, bool | np.bool_) for i in items)


def _zeros_like_input(g, x, dst):
    """dst cleared, or new zeros of x's shape in the cotangent's precision."""
    if dst is None:
        if type(g) is np.ndarray and type(x) is np.ndarray:
            return np.zeros(x.shape, g.dtype if g.dtype.kind == "f" else np.float64)
        return np.zeros(np.shape(x), dtype=np.result_type(g, float))
    dst.fill(0.0)
    return dst


def _getitem_vjp(g, out, x, *, index, dst=None):
    """x̄[index] += v̄ (repeated indices add up)"""
    total = _zeros_like_input(g, x, dst)
    np.add.at(total, index, g)
    return total


def _getitem_vjp_add(g, out, x, *, index, target):
    """x̄[index] += v̄, added in place (repeated indices add up)"""
    np.add.at(target, index, g)


def _getitem_unique_vjp(g, out, x, *, index, dst=None):
    """x̄[index] = v̄ where no position is picked twice (one row index per row)"""
    total = _zeros_like_input(g, x, dst)
    total[index] = g
    return total


def _distinct_positions(index) -> bool:
    """An index of 1-D integer arrays of one length, one of them without repeats (such as
    ``np.arange(n)`` in ``logp[np.arange(n), y]``): no position of x is picked twice."""
    if not isinstance(index, tuple) or len(index) < 1:
        return False
    arrays = [i for i in index if isinstance(i, np.ndarray)]
    if len(arrays) != len(index) or any(a.ndim != 1 or a.dtype.kind not in "iu" for a in arrays):
        return False
    if len({a.shape for a in arrays}) != 1:
        return False
    return any(type(a) is np.ndarray and len(np.unique(a)) == len(a) for a in arrays)

def _reads(*names):
    return frozenset(names)


KERNELS: dict[str, Kernel] = {
    "add": Kernel(_add, (IDENTITY, IDENTITY), (_reads(), _reads()), elementwise=True,
                  code="np.add({0}, {1}, out={out})"),
    "sub": Kernel(_sub, (IDENTITY, NEGATE), (_reads(), _reads()), elementwise=True,
                  code="np.subtract({0}, {1}, out={out})"),
    "mul": Kernel(_mul, (_times_y, _times_x), (_reads(1), _reads(0)), elementwise=True,
                  code="np.multiply({0}, {1}, out={out})"),
    "div": Kernel(_div, (_over_y, _div_y), (_reads(1), _reads("out", 1)), elementwise=True,
                  code="np.divide({0}, {1}, out={out})"),
    "neg": Kernel(_neg, (NEGATE,), (_reads(),), elementwise=True,
                  code="np.negative({0}, out={out})"),
    "exp": Kernel(_exp, (_exp_vjp,), (_reads("out"),), elementwise=True,
                  code="np.exp({0}, out={out})"),
    "log": Kernel(_log, (_log_vjp,), (_reads(0),), elementwise=True,
                  code="np.log({0}, out={out})"),
    "tanh": Kernel(_tanh, (_tanh_vjp,), (_reads("out"),), elementwise=True,
                   code="np.tanh({0}, out={out})"),
    "relu": Kernel(_relu, (_relu_vjp,), (_reads("out"),), elementwise=True,
                   code="np.maximum({0}, 0.0, out={out})",
                   vjp_code=("np.greater({v}, 0.0, out={dst}); "
                             "np.multiply({dst}, {g}, out={dst})",)),
    "matmul": Kernel(_matmul, (_matmul_a, _matmul_b), (_reads(1), _reads(0)),
                     accepts=_matrices, takes=_two_matrices, code="np.matmul({0}, {1}, out={out})",
                     vjp_code=("np.matmul({g}, {1}.T, out={dst})", None)),
    "sum": Kernel(_sum, (_sum_vjp,), (_reads(),), accepts=_axis_reduction, takes=_an_array,
                  code="np.add.reduce({0}, axis={axis}, keepdims={keepdims}, out={out})"),
    "mean": Kernel(_mean, (_mean_vjp,), (_reads(),), accepts=_axis_reduction,
                   takes=_an_array),
    "max": Kernel(_max, (_max_vjp,), (_reads(0, "out"),), accepts=_axis_reduction,
                  takes=_an_array,
                  code="np.maximum.reduce({0}, axis={axis}, keepdims={keepdims}, out={out})",
                  add_into=(_max_vjp_add,)),
    "reshape": Kernel(_reshape, (_reshape_vjp,), (_reads(),), view=True),
    "transpose": Kernel(_transpose, (_transpose_vjp,), (_reads(),), view=True),
    "broadcast_to": Kernel(_broadcast, (IDENTITY,), (_reads(),), view=True),
    "getitem": Kernel(_getitem, (_getitem_vjp,), (_reads(),), view=True, copies=True,
                      add_into=(_getitem_vjp_add,)),
}
GETITEM_DISTINCT = Kernel(_getitem, (_getitem_unique_vjp,), (_reads(),), view=True, copies=True,
                          add_into=(_getitem_vjp_add,))
GETITEM_VIEW = Kernel(_getitem_view, (_getitem_vjp,), (_reads(),), view=True,
                      add_into=(_getitem_vjp_add,))
