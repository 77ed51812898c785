"""Shape and index rules: triangles, repeats, tiles, axis moves, flips, rolls, stacks, pads, sort.

All of these are linear maps that only move, copy or drop entries, so each tangent rule is
the same operation on the tangent (with the tangent's batch axes left in front) and each
adjoint rule moves the cotangent back: copies add up, dropped entries get zero. One record
per primitive, as in ``course_ad.rules``.
"""

from __future__ import annotations

import math

import numpy as np

from . import ops
from .dispatch import primal_value, shape_of
from .registry import Rule, register
from .rules import _batch, _with_batch

__all__: list[str] = []


def _shifted(axes, nb):
    """Axes of a primal, as axes of its tangent with ``nb`` batch axes in front."""
    return tuple(a + nb for a in axes)


# --------------------------------------------------------------------------------------
# Triangles
# --------------------------------------------------------------------------------------


def tril_jvp(dx, out, x, *, k):
    """V̇ = tril(Ẋ)"""
    return ops.tril(dx, k)


def tril_vjp(g, out, x, *, k):
    """X̄ += tril(V̄)"""
    return ops.tril(g, k)


def triu_jvp(dx, out, x, *, k):
    """V̇ = triu(Ẋ)"""
    return ops.triu(dx, k)


def triu_vjp(g, out, x, *, k):
    """X̄ += triu(V̄)"""
    return ops.triu(g, k)


def _tril(x, *, k):
    return np.tril(x, k)


def _triu(x, *, k):
    return np.triu(x, k)


def _triangle_examples(rng):
    return [((rng.standard_normal((3, 3)),), {"k": 0}), ((rng.standard_normal((3, 4)),),
                                                         {"k": 1}),
            ((rng.standard_normal((2, 3, 3)),), {"k": -1})]


register(Rule("tril", _tril, (tril_jvp,), (tril_vjp,), "tril", r"V = \operatorname{tril}(X)",
              r"\dot V = \operatorname{tril}(\dot X)",
              r"\bar X \mathrel{+}= \operatorname{tril}(\bar V)", examples=_triangle_examples))
register(Rule("triu", _triu, (triu_jvp,), (triu_vjp,), "triu", r"V = \operatorname{triu}(X)",
              r"\dot V = \operatorname{triu}(\dot X)",
              r"\bar X \mathrel{+}= \operatorname{triu}(\bar V)", examples=_triangle_examples))


# --------------------------------------------------------------------------------------
# Copies: repeat and tile
# --------------------------------------------------------------------------------------


def repeat_jvp(dx, out, x, *, repeats, axis):
    """V̇ = repeat(Ẋ)"""
    batch = _batch(dx, x)
    if axis is None:
        flat = ops.reshape(dx, batch + (math.prod(shape_of(x)),))
        return ops.repeat(flat, repeats, axis=len(batch))
    return ops.repeat(dx, repeats, axis=axis + len(batch))


def repeat_vjp(g, out, x, *, repeats, axis):
    """X̄ += V̄ summed over each group of copies"""
    shape = shape_of(x)
    if axis is None:
        groups = ops.reshape(g, (math.prod(shape), repeats))
        return ops.reshape(ops.sum(groups, axis=1), shape)
    split = shape[:axis] + (shape[axis], repeats) + shape[axis + 1:]
    return ops.sum(ops.reshape(g, split), axis=axis + 1)


def tile_jvp(dx, out, x, *, reps):
    """V̇ = tile(Ẋ)"""
    batch = _batch(dx, x)
    padded = ops.reshape(dx, batch + _padded_shape(x, reps))
    return ops.tile(padded, (1,) * len(batch) + reps)


def tile_vjp(g, out, x, *, reps):
    """X̄ += Σ over the tiles of V̄"""
    shape = _padded_shape(x, reps)
    interleaved = tuple(n for pair in zip(reps, shape) for n in pair)
    summed = ops.sum(ops.reshape(g, interleaved), axis=tuple(range(0, 2 * len(reps), 2)))
    return ops.reshape(summed, shape_of(x))


def _padded_shape(x, reps):
    """x's shape with leading 1s up to the number of tiling axes, as numpy pads it."""
    shape = shape_of(x)
    return (1,) * (len(reps) - len(shape)) + shape


def _repeat(x, *, repeats, axis):
    return np.repeat(x, repeats, axis)


def _tile(x, *, reps):
    return np.tile(x, reps)


def _repeat_examples(rng):
    x = rng.standard_normal((2, 3))
    return [((x,), {"repeats": 2, "axis": 0}), ((x,), {"repeats": 3, "axis": 1}),
            ((x,), {"repeats": 2, "axis": None}), ((1.5,), {"repeats": 3, "axis": None})]


def _tile_examples(rng):
    return [((rng.standard_normal((2, 3)),), {"reps": (2, 1)}),
            ((rng.standard_normal(3),), {"reps": (2, 2)}),
            ((rng.standard_normal((2, 1, 2)),), {"reps": (1, 3, 2)})]


register(Rule("repeat", _repeat, (repeat_jvp,), (repeat_vjp,), "repeat",
              r"V = \operatorname{repeat}(X)", r"\dot V = \operatorname{repeat}(\dot X)",
              r"\bar X \mathrel{+}= \textstyle\sum_{\text{copies}} \bar V",
              examples=_repeat_examples))
register(Rule("tile", _tile, (tile_jvp,), (tile_vjp,), "tile",
              r"V = \operatorname{tile}(X)", r"\dot V = \operatorname{tile}(\dot X)",
              r"\bar X \mathrel{+}= \textstyle\sum_{\text{tiles}} \bar V",
              examples=_tile_examples))


# --------------------------------------------------------------------------------------
# Axis moves: swapaxes, moveaxis, squeeze, expand_dims, ravel, flip, roll
# --------------------------------------------------------------------------------------


def swapaxes_jvp(dx, out, x, *, axis1, axis2):
    """V̇ = swapaxes(Ẋ)"""
    nb = len(_batch(dx, x))
    return ops.swapaxes(dx, axis1 + nb, axis2 + nb)


def swapaxes_vjp(g, out, x, *, axis1, axis2):
    """X̄ += swapaxes(V̄): a swap is its own inverse"""
    return ops.swapaxes(g, axis1, axis2)


def moveaxis_jvp(dx, out, x, *, source, destination):
    """V̇ = moveaxis(Ẋ)"""
    nb = len(_batch(dx, x))
    return ops.moveaxis(dx, _shifted(source, nb), _shifted(destination, nb))


def moveaxis_vjp(g, out, x, *, source, destination):
    """X̄ += V̄ with the axes moved back"""
    return ops.moveaxis(g, destination, source)


def squeeze_jvp(dx, out, x, *, axis):
    """V̇ = squeeze(Ẋ)"""
    return ops.squeeze(dx, _shifted(axis, len(_batch(dx, x))))


def squeeze_vjp(g, out, x, *, axis):
    """X̄ += V̄ with the size-1 axes put back"""
    return ops.reshape(g, shape_of(x))


def expand_dims_jvp(dx, out, x, *, axis):
    """V̇ = expand_dims(Ẋ)"""
    return ops.expand_dims(dx, _shifted(axis, len(_batch(dx, x))))


def expand_dims_vjp(g, out, x, *, axis):
    """X̄ += V̄ without the new axes"""
    return ops.reshape(g, shape_of(x))


def ravel_jvp(dx, out, x):
    """V̇ = ravel(Ẋ)"""
    return ops.reshape(dx, _batch(dx, x) + shape_of(out))


def ravel_vjp(g, out, x):
    """X̄ += V̄ in x's shape"""
    return ops.reshape(g, shape_of(x))


def flip_jvp(dx, out, x, *, axis):
    """V̇ = flip(Ẋ)"""
    return ops.flip(dx, _shifted(axis, len(_batch(dx, x))))


def flip_vjp(g, out, x, *, axis):
    """X̄ += flip(V̄): a flip is its own inverse"""
    return ops.flip(g, axis)


def roll_jvp(dx, out, x, *, shift, axis):
    """V̇ = roll(Ẋ)"""
    return ops.roll(dx, shift, _shifted(axis, len(_batch(dx, x))))


def roll_vjp(g, out, x, *, shift, axis):
    """X̄ += V̄ rolled back"""
    return ops.roll(g, tuple(-s for s in shift), axis)


def _swapaxes(x, *, axis1, axis2):
    return np.swapaxes(x, axis1, axis2)


def _moveaxis(x, *, source, destination):
    return np.moveaxis(x, source, destination)


def _squeeze(x, *, axis):
    return np.squeeze(x, axis)


def _expand_dims(x, *, axis):
    return np.expand_dims(x, axis)


def _flip(x, *, axis):
    return np.flip(x, axis)


def _roll(x, *, shift, axis):
    return np.roll(x, shift, axis)


def _swapaxes_examples(rng):
    return [((rng.standard_normal((2, 3)),), {"axis1": 0, "axis2": 1}),
            ((rng.standard_normal((2, 3, 4)),), {"axis1": 2, "axis2": 0})]


def _moveaxis_examples(rng):
    x = rng.standard_normal((2, 3, 4))
    return [((x,), {"source": (0,), "destination": (2,)}),
            ((x,), {"source": (2, 0), "destination": (0, 1)})]


def _squeeze_examples(rng):
    x = rng.standard_normal((1, 3, 1, 2))
    return [((x,), {"axis": (0, 2)}), ((x,), {"axis": (2,)}),
            ((rng.standard_normal((1, 1)),), {"axis": (0, 1)})]


def _expand_dims_examples(rng):
    return [((rng.standard_normal((2, 3)),), {"axis": (0,)}),
            ((rng.standard_normal((2, 3)),), {"axis": (1, 3)}), ((0.5,), {"axis": (0,)})]


def _ravel_examples(rng):
    return [((rng.standard_normal((2, 3)),), {}), ((rng.standard_normal((2, 1, 2)),), {})]


def _flip_examples(rng):
    x = rng.standard_normal((2, 3))
    return [((x,), {"axis": (0,)}), ((x,), {"axis": (0, 1)}),
            ((rng.standard_normal(4),), {"axis": (0,)})]


def _roll_examples(rng):
    x = rng.standard_normal((3, 4))
    return [((x,), {"shift": (1,), "axis": (0,)}), ((x,), {"shift": (-1, 2), "axis": (0, 1)}),
            ((rng.standard_normal(5),), {"shift": (7,), "axis": (0,)})]


register(Rule("swapaxes", _swapaxes, (swapaxes_jvp,), (swapaxes_vjp,), "swap",
              r"V = \operatorname{swapaxes}(X)", r"\dot V = \operatorname{swapaxes}(\dot X)",
              r"\bar X \mathrel{+}= \operatorname{swapaxes}(\bar V)", examples=_swapaxes_examples))
register(Rule("moveaxis", _moveaxis, (moveaxis_jvp,), (moveaxis_vjp,), "move",
              r"V = \operatorname{moveaxis}(X)", r"\dot V = \operatorname{moveaxis}(\dot X)",
              r"\bar X \mathrel{+}= \operatorname{moveaxis}^{-1}(\bar V)",
              examples=_moveaxis_examples))
register(Rule("squeeze", _squeeze, (squeeze_jvp,), (squeeze_vjp,), "squeeze",
              r"V = \operatorname{squeeze}(X)", r"\dot V = \operatorname{squeeze}(\dot X)",
              r"\bar X \mathrel{+}= \operatorname{reshape}(\bar V)", examples=_squeeze_examples))
register(Rule("expand_dims", _expand_dims, (expand_dims_jvp,), (expand_dims_vjp,), "expand",
              r"V = \operatorname{expand\_dims}(X)",
              r"\dot V = \operatorname{expand\_dims}(\dot X)",
              r"\bar X \mathrel{+}= \operatorname{reshape}(\bar V)",
              examples=_expand_dims_examples))
register(Rule("ravel", np.ravel, (ravel_jvp,), (ravel_vjp,), "ravel",
              r"v = \operatorname{ravel}(X)", r"\dot v = \operatorname{ravel}(\dot X)",
              r"\bar X \mathrel{+}= \operatorname{reshape}(\bar v)", examples=_ravel_examples))
register(Rule("flip", _flip, (flip_jvp,), (flip_vjp,), "flip",
              r"V = \operatorname{flip}(X)", r"\dot V = \operatorname{flip}(\dot X)",
              r"\bar X \mathrel{+}= \operatorname{flip}(\bar V)", examples=_flip_examples))
register(Rule("roll", _roll, (roll_jvp,), (roll_vjp,), "roll",
              r"V = \operatorname{roll}(X, s)", r"\dot V = \operatorname{roll}(\dot X, s)",
              r"\bar X \mathrel{+}= \operatorname{roll}(\bar V, -s)", examples=_roll_examples))


# --------------------------------------------------------------------------------------
# Joins: vstack and hstack (any number of inputs, like stack and concatenate)
# --------------------------------------------------------------------------------------


def vstack_jvp(tangents, out, *xs):
    """V̇ = vstack(Ẋ₁, …, Ẋₙ)"""
    pieces = [ops.reshape(t, _batch(t, x) + np.atleast_2d(primal_value(x)).shape)
              for t, x in zip(tangents, xs)]
    return ops.concatenate(pieces, axis=-len(shape_of(out)))


def vstack_vjp(g, out, *xs, argnum):
    """X̄ₖ += the rows of V̄ that Xₖ filled"""
    rows = [np.atleast_2d(primal_value(x)).shape[0] for x in xs]
    start = sum(rows[:argnum])
    return ops.reshape(ops.getitem(g, (slice(start, start + rows[argnum]),)),
                       shape_of(xs[argnum]))


def hstack_jvp(tangents, out, *xs):
    """V̇ = hstack(Ẋ₁, …, Ẋₙ)"""
    pieces = [ops.reshape(t, _batch(t, x) + np.atleast_1d(primal_value(x)).shape)
              for t, x in zip(tangents, xs)]
    return ops.concatenate(pieces, axis=_hstack_axis(xs) - len(shape_of(out)))


def hstack_vjp(g, out, *xs, argnum):
    """X̄ₖ += the columns of V̄ that Xₖ filled"""
    axis = _hstack_axis(xs)
    widths = [np.atleast_1d(primal_value(x)).shape[axis] for x in xs]
    start = sum(widths[:argnum])
    index = (slice(None),) * axis + (slice(start, start + widths[argnum]),)
    return ops.reshape(ops.getitem(g, index), shape_of(xs[argnum]))


def _hstack_axis(xs):
    """hstack joins vectors end to end (axis 0) and everything else side by side (axis 1)."""
    return 0 if len(shape_of(xs[0])) <= 1 else 1


def _vstack(*xs):
    return np.vstack(xs)


def _hstack(*xs):
    return np.hstack(xs)


def _vstack_examples(rng):
    return [((rng.standard_normal((2, 3)), rng.standard_normal((1, 3))), {}),
            ((rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal((2, 3))), {}),
            ((1.5, -0.5), {})]


def _hstack_examples(rng):
    return [((rng.standard_normal((2, 3)), rng.standard_normal((2, 1))), {}),
            ((rng.standard_normal(3), rng.standard_normal(2)), {}), ((1.5, -0.5, 2.0), {})]


register(Rule("vstack", _vstack, (vstack_jvp,), (vstack_vjp,), "vstack",
              r"V = [X_1; \dots; X_n]",
              r"\dot V = \operatorname{vstack}(\dot X_1, \dots, \dot X_n)",
              r"\bar X_k \mathrel{+}= \bar V_{(k)}", variadic=True, examples=_vstack_examples))
register(Rule("hstack", _hstack, (hstack_jvp,), (hstack_vjp,), "hstack",
              r"V = [X_1 \cdots X_n]", r"\dot V = \operatorname{hstack}(\dot X_1, \dots, \dot X_n)",
              r"\bar X_k \mathrel{+}= \bar V_{(k)}", variadic=True, examples=_hstack_examples))


# --------------------------------------------------------------------------------------
# pad and sort
# --------------------------------------------------------------------------------------


def pad_jvp(dx, out, x, *, pad_width, constant_values):
    """V̇ = Ẋ padded with zeros (the border is a constant)"""
    nb = len(_batch(dx, x))
    return ops.pad(dx, ((0, 0),) * nb + pad_width)


def pad_vjp(g, out, x, *, pad_width, constant_values):
    """X̄ += V̄ without the border"""
    index = tuple(slice(before, before + n) for (before, _), n in zip(pad_width, shape_of(x)))
    return ops.getitem(g, index)


def sort_jvp(dx, out, x, *, axis):
    """V̇ = Ẋ in x's sorted order"""
    return ops.getitem(dx, _with_batch(_sorting(x, axis), len(_batch(dx, x))))


def sort_vjp(g, out, x, *, axis):
    """X̄ += V̄ put back where each entry came from"""
    return ops.scatter_add(g, index=_sorting(x, axis), shape=shape_of(x))


def _sorting(x, axis):
    """The index that sorts x along ``axis``: open grids, the permutation on ``axis``."""
    xv = np.asarray(primal_value(x))
    grids = list(np.indices(xv.shape, sparse=True))
    grids[axis] = np.argsort(xv, axis=axis, kind="stable")
    return tuple(grids)


def _pad(x, *, pad_width, constant_values):
    return np.pad(x, pad_width, mode="constant", constant_values=constant_values)


def _sort(x, *, axis):
    return np.sort(x, axis=axis, kind="stable")


def _pad_examples(rng):
    return [((rng.standard_normal((2, 3)),), {"pad_width": ((1, 0), (2, 1)),
                                              "constant_values": 0.0}),
            ((rng.standard_normal(3),), {"pad_width": ((2, 2),), "constant_values": -1.5})]


def _sort_examples(rng):
    return [((rng.standard_normal((3, 4)),), {"axis": 1}),
            ((rng.standard_normal((3, 4)),), {"axis": 0}), ((rng.standard_normal(5),),
                                                            {"axis": 0})]


register(Rule("pad", _pad, (pad_jvp,), (pad_vjp,), "pad", r"V = \operatorname{pad}(X, c)",
              r"\dot V = \operatorname{pad}(\dot X, 0)",
              r"\bar X \mathrel{+}= \bar V_{\text{inside}}", examples=_pad_examples))
register(Rule("sort", _sort, (sort_jvp,), (sort_vjp,), "sort",
              r"V = X_{\pi}", r"\dot V = \dot X_{\pi}", r"\bar X_{\pi} \mathrel{+}= \bar V",
              examples=_sort_examples))
