"""Reverse mode: graph nodes that remember how they were made, and the adjoint sweep.

A ``ReverseDiff`` node keeps its ``value``, its ``parents`` (the traced inputs, in argument
order), its ``op`` and the input values its VJP rules need. ``backward()`` visits the graph
once in reverse topological order and pushes adjoints to the parents: v̄ⱼ += v̄ᵢ ∂φᵢ/∂vⱼ,
Griewank's incremental adjoint recursion. Plain numbers and arrays that enter an operation
are constants: no VJP is ever computed for them.
"""

from __future__ import annotations

import itertools
import math
import operator
from typing import Any

import numpy as np

from .dispatch import (
    Traced,
    as_value,
    complex_error,
    evaluate,
    is_complex,
    ones,
    primal,
    shape_of,
    zeros,
)
from .forward import _show
from .ops import Operators, unbroadcast

__all__ = ["ReverseDiff", "topological_order"]

_sweeps = itertools.count(1)
_created = itertools.count()
_creation = operator.attrgetter("_id")


class ReverseDiff(Operators, Traced):
    """A node of the computational graph: ``value``, ``parents``, ``op``, ``vjp`` and ``grad``.

    Leaves are made by you (``ReverseDiff(2.0)``, optionally with a ``name`` for pictures);
    every other node is made by an operation. After ``f.backward()`` every node's ``grad``
    holds ∂f/∂node for that call.
    """

    __slots__ = ("value", "grad", "parents", "op", "name", "_rule", "_args", "_argnums",
                 "_params", "_rank", "_mark", "_id")

    def __init__(self, value: Any, *, name: str = "", level: int = 0) -> None:
        self.value = as_value(value, "ReverseDiff")
        self.grad: Any = None
        self.parents: tuple[ReverseDiff, ...] = ()
        self.op = ""
        self.name = name
        self._rule = None
        self._args: tuple = ()
        self._argnums: tuple[int, ...] = ()
        self._params: dict = {}
        self._rank = 2 * level + 1
        self._mark = 0
        self._id = next(_created)

    @property
    def level(self) -> int:
        return self._rank // 2

    @property
    def argnums(self) -> tuple[int, ...]:
        """The argument position of each parent (``x - 3`` has parent x at position 0)."""
        return self._argnums

    @property
    def inputs(self) -> tuple[Any, ...]:
        """All arguments of the operation, parents as nodes and constants as values."""
        args = list(self._args)
        for parent, i in zip(self.parents, self._argnums):
            args[i] = parent
        return tuple(args)

    @property
    def params(self) -> dict:
        """Static parameters of the operation (``axis``, ``shape``, ``index``, ...)."""
        return self._params

    def __repr__(self) -> str:
        op = f", op={self.op!r}" if self.op else ""
        name = f", name={self.name!r}" if self.name else ""
        return f"ReverseDiff(value={_show(self.value)}, grad={_show(self.grad)}{op}{name})"

    def vjp(self, cotangent: Any) -> tuple[Any, ...]:
        """The cotangent each parent receives from this node: v̄ ∂v/∂parent, one per parent."""
        rule = self._rule
        if rule is None:
            return ()
        return tuple(rule.cotangent(i, cotangent, self.value, self._args, self._params)
                     for i in self._argnums)

    def backward(self, seed: Any = None, *, create_graph: bool = False) -> None:
        """Set ``grad`` on every node of this graph to ∂(seed · self)/∂node.

        Visits each node once, in reverse topological order; adjoints of a node used several
        times add up. Calling it again recomputes from scratch (it never accumulates), and a
        later ``g.backward()`` sets fresh gradients for ``g``'s graph. With
        ``create_graph=True`` the gradients are ``ReverseDiff`` nodes themselves, so they can
        be differentiated again.
        """
        seed = _check_seed(self, seed)
        order = topological_order(self, reset_grads=True)
        self.grad = seed
        for node in reversed(order):
            g = node.grad
            parents = node.parents
            if g is None:
                node.grad = zeros(shape_of(node.value), node.value)
                continue
            if not parents:
                continue
            rule = node._rule
            params = node._params
            if create_graph:
                args, out = node.inputs, node
            else:
                args, out = node._args, node.value
            # Rule.cotangent, inlined: this loop runs once per edge of every sweep
            vjps = rule.vjp
            variadic = rule.variadic
            for parent, i in zip(parents, node._argnums):
                if variadic:
                    c = vjps[0](g, out, *args, argnum=i, **params)
                else:
                    vjp = vjps[i]
                    if vjp is None:
                        raise rule.not_differentiable(i, "VJP")
                    c = vjp(g, out, *args, **params) if params else vjp(g, out, *args)
                pv = parent.value
                if type(c) is not float or type(pv) is not float:
                    target = pv.shape if type(pv) is np.ndarray else shape_of(pv)
                    have = c.shape if type(c) is np.ndarray else shape_of(c)
                    if have != target:
                        c = unbroadcast(c, target)
                previous = parent.grad
                parent.grad = c if previous is None else previous + c

    def _apply(self, rule: Any, args: tuple, params: dict) -> ReverseDiff:
        """Record an operation: the node's value, its traced parents and its constants."""
        rank = self._rank
        values = list(args)
        parents = []
        argnums = []
        nested = False
        for i, a in enumerate(args):
            if isinstance(a, Traced):
                if a._rank == rank:  # the same rank is the same engine at the same level
                    values[i] = value = a.value
                    parents.append(a)
                    argnums.append(i)
                    nested = nested or isinstance(value, Traced)  # traced by an outer level
                else:
                    nested = True
            elif type(a) is not float and (a.dtype.kind == "c" if type(a) is np.ndarray
                                           else is_complex(a)):  # only constants: leaves are real
                raise complex_error(rule.name, a)
        node = ReverseDiff.__new__(type(self))
        node.value = (evaluate if nested else primal)(rule, values, params)
        node.grad = None
        node.parents = tuple(parents)
        node.op = rule.name
        node.name = ""
        node._rule = rule
        node._args = tuple(values)
        node._argnums = tuple(argnums)
        node._params = params
        node._rank = rank
        node._mark = 0
        node._id = next(_created)
        return node


def topological_order(output: ReverseDiff, reset_grads: bool = False) -> list[ReverseDiff]:
    """Every node that ``output`` depends on, each parent before its children.

    A node is always created after its parents, so the order of creation is a topological
    order: walk the graph once with an explicit stack (no recursion, so graphs of millions of
    nodes work; each node is visited once however many paths reach it), then sort the nodes
    found by creation number. ``reset_grads`` clears each ``grad`` on the way, the backward
    sweep's first step."""
    stamp = next(_sweeps)
    output._mark = stamp
    if reset_grads:
        output.grad = None
    found = [output]
    stack = [output]
    while stack:
        for parent in stack.pop().parents:
            if parent._mark != stamp:
                parent._mark = stamp
                if reset_grads:
                    parent.grad = None
                found.append(parent)
                stack.append(parent)
    found.sort(key=_creation)
    return found


def _check_seed(output: ReverseDiff, seed: Any) -> Any:
    """The output's adjoint: 1 for a single number (of any shape, such as (1,) or (1, 1),
    in the output's precision), else the given seed, checked against the output's shape."""
    shape = shape_of(output.value)
    if seed is None:
        if shape != () and math.prod(shape) != 1:
            raise ValueError(
                f"backward: the output has shape {shape}, not a scalar, so there is no single "
                f"gradient; pass a seed cotangent of shape {shape} (e.g. "
                f"f.backward(np.ones({shape})) gives the gradient of f.sum()), or reduce the "
                "output to a scalar first"
            )
        return ones(shape, output.value)
    seed = as_value(seed, "backward seed")
    if shape_of(seed) != shape:
        raise ValueError(
            f"backward: the seed has shape {shape_of(seed)} but the output has shape {shape}; "
            "the seed is the output's adjoint and must have the output's shape"
        )
    return seed

