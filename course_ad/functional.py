"""The functional API, shaped like JAX: transformations that take a function, return a function.

``grad``, ``value_and_grad``, ``vjp`` and ``jacrev`` run reverse mode; ``derivative``,
``jvp`` and ``jacfwd`` run forward mode; ``hessian`` and ``hvp`` run forward over reverse.
Each call traces at a fresh level, so the transformations nest: ``grad(grad(f))`` and
``derivative(lambda x: x * derivative(lambda y: x + y)(1.0))`` are right.

Arguments and results may be pytrees (``course_ad.pytree``): the gradient with respect to a
dict of arrays is a dict with the same keys, and a Jacobian of a tree-valued function is the
output's tree holding, at each leaf, the input's tree of blocks ``out.shape + in.shape``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import ops
from .dispatch import new_level, primal_value, shape_of, zeros
from .forward import ForwardDiff
from .pytree import (
    LEAF,
    TreeDef,
    check_structure,
    describe,
    differentiable_leaves,
    flatten,
    tree_map,
)
from .reverse import ReverseDiff

__all__ = ["grad", "value_and_grad", "derivative", "jvp", "vjp", "jacfwd", "jacrev",
           "hessian", "hvp"]

Argnums = int | Sequence[int]


def value_and_grad(f: Callable[..., Any], argnums: Argnums = 0,
                   has_aux: bool = False) -> Callable[..., Any]:
    """x ↦ (f(x), ∇f(x)) in one reverse sweep: the gradient costs a few evaluations of f.

    ``argnums`` picks the arguments to differentiate (a tuple gives a tuple of gradients);
    each may be a pytree, and its gradient has the same nesting. With ``has_aux`` f returns
    ``(value, aux)`` and the result is ``((value, aux), grad)``."""
    many, positions = _positions(argnums)

    def value_and_grad_f(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
        level = new_level()
        inputs, args = _trace_args(args, positions, level, "grad", ReverseDiff)
        result = f(*args, **kwargs)
        out, aux = _split_aux(result, has_aux, "grad")
        if type(out) is ReverseDiff and type(out.value) in _SCALARS:
            pass  # the usual case: a scalar loss, nothing to check
        elif not _is_leaf(out) or math.prod(shape_of(out)) != 1:
            returned = (f"a {type(out).__name__}" if not _is_leaf(out) else
                        f"shape {shape_of(out)} (any shape holding a single number, such as "
                        "(1,), would do)")
            raise ValueError(
                f"grad: {_name(f)} must return a scalar, but it returned {returned}; "
                "use jacrev for a Jacobian or vjp for a vector-Jacobian product"
            )
        traced = _traced_at(out, level, ReverseDiff)
        if traced:
            out._sweep(None, create_graph=False, every_node=False)  # only the leaves are read
        grads = tuple(_gradients(leaves, treedef, traced) for leaves, treedef in inputs)
        value = out.value if traced else out
        if has_aux:  # aux is data to look at: this level's nodes become their values
            aux = tree_map(lambda v: v.value if _traced_at(v, level, ReverseDiff) else v, aux)
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
    """(f(x), v̄ ↦ v̄ᵀ J): one forward evaluation, then any number of reverse sweeps.

    The cotangent v̄ has the nesting of f's result; the pullback returns one cotangent per
    primal, each nested like that primal."""
    level = new_level()
    inputs, args = _trace_args(primals, tuple(range(len(primals))), level, "vjp", ReverseDiff)
    out_leaves, out_def = flatten(f(*args))
    traced = [_traced_at(leaf, level, ReverseDiff) for leaf in out_leaves]

    def vjp_fn(cotangent: Any) -> tuple[Any, ...]:
        cotangents = ([cotangent] if out_def.is_leaf
                      else check_structure(out_def, cotangent, "vjp: the cotangent"))
        seeded = [(leaf, c) for leaf, c, t in zip(out_leaves, cotangents, traced) if t]
        _forget(leaf for leaves, _ in inputs for leaf in leaves)
        if len(seeded) == 1:
            seeded[0][0].backward(seeded[0][1])
        elif seeded:  # one sweep for all outputs: the adjoint of Σₖ ⟨v̄ₖ, outₖ⟩
            _weighted_total(seeded, out_def).backward()
        return tuple(treedef.unflatten([_grad_of(leaf) if seeded else _zeros_like(leaf.value)
                                        for leaf in leaves]) for leaves, treedef in inputs)

    values = [leaf.value if t else leaf for leaf, t in zip(out_leaves, traced)]
    return out_def.unflatten(values), vjp_fn


def jvp(f: Callable[..., Any], primals: Sequence[Any],
        tangents: Sequence[Any]) -> tuple[Any, Any]:
    """(f(x), J ẋ): one forward sweep carrying the tangents ẋ next to the values.

    Each tangent is nested like its primal; the output tangent is nested like f's result."""
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: got {len(primals)} primals but {len(tangents)} tangents; give "
                         "one tangent per primal, as tuples")
    level = new_level()
    args = []
    for i, (primal, tangent) in enumerate(zip(primals, tangents)):
        leaves, treedef = differentiable_leaves(primal, "jvp", "primal", i)
        directions = ([tangent] if treedef.is_leaf
                      else check_structure(treedef, tangent, f"jvp: tangent {i}"))
        args.append(treedef.unflatten([ForwardDiff(p, t, level=level)
                                       for p, t in zip(leaves, directions)]))
    out_leaves, out_def = flatten(f(*args))
    values, tangents_out = [], []
    for leaf in out_leaves:
        if _traced_at(leaf, level, ForwardDiff):
            values.append(leaf.value)
            tangents_out.append(leaf.grad)
        else:
            values.append(leaf)
            tangents_out.append(_zeros_like(leaf))
    return out_def.unflatten(values), out_def.unflatten(tangents_out)


def derivative(f: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """x ↦ f'(x) for a function of one scalar, by forward mode (one sweep)."""

    def derivative_f(x: Any) -> Any:
        if shape_of(x) != ():
            raise ValueError(f"derivative: x must be a scalar, got shape {shape_of(x)}; use "
                             "grad for a gradient or jacfwd for a Jacobian")
        return jvp(f, (x,), (1.0,))[1]

    return derivative_f


def jacfwd(f: Callable[..., Any], argnums: Argnums = 0) -> Callable[..., Any]:
    """x ↦ ∂f/∂x by forward mode: all n input directions as one batch of tangents.

    The result has shape ``f(x).shape + x.shape``; for pytrees, f's result nesting holds the
    input's nesting of such blocks (a tuple of them for a tuple ``argnums``)."""
    many, positions = _positions(argnums)

    def jacfwd_f(*args: Any) -> Any:
        level = new_level()
        inputs, args = _trace_args(args, positions, level, "jacfwd", ForwardDiff)
        n = _size(inputs)
        out_leaves, out_def = flatten(f(*args))
        blocks = []
        for out in out_leaves:
            if _traced_at(out, level, ForwardDiff):
                out_shape = shape_of(out.value)
                rows = ops.transpose(ops.reshape(out.grad, (n, math.prod(out_shape))))
                blocks.append(_split_columns(rows, out_shape, inputs, many))
            else:
                blocks.append(_split_columns(None, shape_of(out), inputs, many))
        return out_def.unflatten(blocks)

    return jacfwd_f


def jacrev(f: Callable[..., Any], argnums: Argnums = 0) -> Callable[..., Any]:
    """x ↦ ∂f/∂x by reverse mode: one backward sweep per output entry.

    The result has shape ``f(x).shape + x.shape``, nested for pytrees as ``jacfwd``'s."""
    many, positions = _positions(argnums)

    def jacrev_f(*args: Any) -> Any:
        level = new_level()
        inputs, args = _trace_args(args, positions, level, "jacrev", ReverseDiff)
        leaves = [leaf for group, _ in inputs for leaf in group]
        out_leaves, out_def = flatten(f(*args))
        blocks = []
        for out in out_leaves:
            if not _traced_at(out, level, ReverseDiff):
                blocks.append(_split_columns(None, shape_of(out), inputs, many))
                continue
            out_shape = shape_of(out.value)
            m = math.prod(out_shape)
            rows: list[list[Any]] = [[] for _ in leaves]
            for seed in np.eye(m, dtype=_dtype(out.value)).reshape((m,) + out_shape):
                _forget(leaves)
                out.backward(seed)
                for row, leaf in zip(rows, leaves):
                    row.append(_grad_of(leaf))
            per_leaf = [ops.reshape(ops.stack(row), out_shape + shape_of(leaf.value))
                        for row, leaf in zip(rows, leaves)]
            blocks.append(_regroup(per_leaf, inputs, many))
        return out_def.unflatten(blocks)

    return jacrev_f


def hessian(f: Callable[..., Any], argnums: Argnums = 0) -> Callable[..., Any]:
    """x ↦ ∇²f(x), forward over reverse: the Jacobian (forward mode) of the gradient."""
    return jacfwd(grad(f, argnums), argnums)


def hvp(f: Callable[..., Any], x: Any, v: Any) -> Any:
    """∇²f(x) v without forming the Hessian: one forward sweep through the gradient.

    ``v`` is nested like ``x``, and so is the result."""
    return jvp(grad(f), (x,), (v,))[1]


# --------------------------------------------------------------------------------------
# Helpers: tracing the leaves of the chosen arguments, regrouping the results
# --------------------------------------------------------------------------------------

Inputs = list[tuple[list[Any], TreeDef]]


def _trace_args(args: Sequence[Any], positions: tuple[int, ...], level: int, who: str,
                kind: type) -> tuple[Inputs, list[Any]]:
    """Replace each chosen argument by the same tree of traced leaves: ``ReverseDiff`` nodes,
    or, for ``jacfwd``, ``ForwardDiff`` duals where leaf k carries the columns of the n × n
    identity that belong to its entries, so one batched sweep pushes every direction."""
    args = list(args)
    count = len(args)
    inputs: Inputs = []
    for i in positions:
        if not -count <= i < count:
            raise ValueError(f"{who}: argnums {i} is out of range for {count} arguments")
        leaves, treedef = differentiable_leaves(args[i], who, "argument", i % count)
        if kind is ReverseDiff:  # a bare array is the common case: no tree to rebuild
            if treedef is LEAF:
                leaves = [ReverseDiff(leaves[0], level=level)]
                args[i] = leaves[0]
            else:
                leaves = [ReverseDiff(leaf, level=level) for leaf in leaves]
                args[i] = treedef.unflatten(leaves)
        inputs.append((leaves, treedef))
    if kind is ForwardDiff:
        n = _size(inputs)
        identity = np.eye(n, dtype=_common_dtype(inputs))
        start = 0
        for k, (leaves, treedef) in enumerate(inputs):
            duals = []
            for leaf in leaves:
                shape = shape_of(leaf)
                size = math.prod(shape)
                seeds = identity[:, start:start + size].reshape((n,) + shape)
                duals.append(ForwardDiff(leaf, seeds, level=level))
                start += size
            inputs[k] = (duals, treedef)
            args[positions[k]] = treedef.unflatten(duals)
    return inputs, args


def _size(inputs: Inputs) -> int:
    """n, the number of input entries: the sum of the leaves' sizes."""
    return sum(math.prod(shape_of(leaf)) for leaves, _ in inputs
               for leaf in leaves)


def _split_columns(rows: Any, out_shape: tuple[int, ...], inputs: Inputs, many: bool) -> Any:
    """Cut an (m, n) Jacobian into one block ``out_shape + leaf shape`` per input leaf
    (zeros when ``rows`` is None: the output does not depend on the inputs)."""
    per_leaf = []
    start = 0
    for leaves, _ in inputs:
        for leaf in leaves:
            shape = shape_of(leaf.value)
            size = math.prod(shape)
            if rows is None:
                per_leaf.append(np.zeros(out_shape + shape, _dtype(leaf)))
            else:
                columns = rows if start == 0 and size == shape_of(rows)[1] else \
                    ops.getitem(rows, (slice(None), slice(start, start + size)))
                per_leaf.append(ops.reshape(columns, out_shape + shape))
            start += size
    return _regroup(per_leaf, inputs, many)


def _regroup(per_leaf: list[Any], inputs: Inputs, many: bool) -> Any:
    """One value per input leaf, nested back as the arguments were (a tuple if ``many``)."""
    groups = []
    start = 0
    for leaves, treedef in inputs:
        groups.append(treedef.unflatten(per_leaf[start:start + len(leaves)]))
        start += len(leaves)
    return tuple(groups) if many else groups[0]


def _weighted_total(seeded: list[tuple[ReverseDiff, Any]], out_def: TreeDef) -> Any:
    """Σₖ ⟨v̄ₖ, outₖ⟩: its gradient is the pullback of all seeded outputs in one sweep."""
    total = None
    for leaf, cotangent in seeded:
        if shape_of(cotangent) != shape_of(leaf.value):
            raise ValueError(
                f"vjp: a cotangent has shape {shape_of(cotangent)} but its output has shape "
                f"{shape_of(leaf.value)} (outputs nested as {describe(out_def)}); give each "
                "output's cotangent that output's shape"
            )
        term = ops.sum(leaf * cotangent) if shape_of(cotangent) else leaf * cotangent
        total = term if total is None else total + term
    return total


_SCALARS = (float, np.float64, np.float32)


def _positions(argnums: Argnums) -> tuple[bool, tuple[int, ...]]:
    if isinstance(argnums, int):
        return False, (argnums,)
    return True, tuple(argnums)


def _is_leaf(value: Any) -> bool:
    return value is not None and not isinstance(value, list | tuple | dict)


def _split_aux(result: Any, has_aux: bool, who: str) -> tuple[Any, Any]:
    if not has_aux:
        return result, None
    if not (isinstance(result, tuple) and len(result) == 2):
        raise ValueError(f"{who}: with has_aux=True the function must return (value, aux)")
    return result


def _traced_at(out: Any, level: int, kind: type) -> bool:
    """Is ``out`` a value of this transformation (and not a constant or an outer level's)?"""
    return isinstance(out, kind) and out.level == level


def _gradients(leaves: list[ReverseDiff], treedef: TreeDef, traced: bool) -> Any:
    """The leaves' adjoints nested as the argument was (zeros if f ignored its inputs)."""
    if treedef is LEAF:
        return _grad_of(leaves[0]) if traced else _zeros_like(leaves[0].value)
    return treedef.unflatten([_grad_of(leaf) if traced else _zeros_like(leaf.value)
                              for leaf in leaves])


def _forget(leaves: Any) -> None:
    """Clear the leaves' adjoints: a sweep that does not reach a leaf must leave it zero, not
    the adjoint of an earlier sweep."""
    for leaf in leaves:
        leaf.grad = None


def _grad_of(leaf: ReverseDiff) -> Any:
    return _zeros_like(leaf.value) if leaf.grad is None else leaf.grad


def _zeros_like(value: Any) -> Any:
    return zeros(shape_of(value), value)


def _dtype(x: Any) -> np.dtype:
    """float32 stays float32; everything else computes in float64."""
    dtype = getattr(primal_value(x), "dtype", None)
    return dtype if dtype is not None and dtype.kind == "f" else np.dtype(np.float64)


def _common_dtype(inputs: Inputs) -> np.dtype:
    """The precision of jacfwd's identity: float32 only when every input leaf is float32."""
    return np.result_type(np.float32, *(_dtype(leaf) for leaves, _ in inputs for leaf in leaves))


def _name(f: Callable[..., Any]) -> str:
    return getattr(f, "__name__", "f")
