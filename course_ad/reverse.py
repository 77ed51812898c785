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
from typing import Any, NamedTuple

import numpy as np

from . import adjoint_code, fusion
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
from .kernels import IDENTITY, KERNELS, NEGATE
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

    # The parents live in two slots (a tuple only for three or more) rather than in a tuple
    # of their own: one container per node instead of two halves the work of Python's cycle
    # collector, which otherwise dominates the time of building large scalar graphs.
    # For the same reason a node whose every argument is a parent keeps no tuple of their
    # values (``_values`` is None): they are its parents' values.
    __slots__ = ("value", "grad", "op", "name", "_first", "_second", "_many", "_rule",
                 "_values", "_argnums", "_params", "_rank", "_mark", "_id")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass that changes ``_apply`` (to record or count operations) sees the binary
        operators there too: the two-argument fast path is ReverseDiff's own."""
        super().__init_subclass__(**kwargs)
        if "_apply" in cls.__dict__ and "_apply2" not in cls.__dict__:
            cls._apply2 = Traced._apply2

    def __init__(self, value: Any, *, name: str = "", level: int = 0) -> None:
        if type(value) is not np.ndarray or value.dtype.kind != "f":
            value = as_value(value, "ReverseDiff")
        self.value = value
        self.grad: Any = None
        self.op = ""
        self.name = name
        self._first = self._second = self._many = None
        self._rule = None
        self._values: tuple | None = ()
        self._argnums: tuple[int, ...] = ()
        self._params: dict = _NO_PARAMS
        self._rank = 2 * level + 1
        self._mark = 0
        self._id = next(_created)

    @property
    def parents(self) -> tuple[ReverseDiff, ...]:
        """The traced inputs, in argument order (``x * x`` has parents ``(x, x)``)."""
        if self._many is not None:
            return self._many
        first = self._first
        if first is None:
            return ()
        second = self._second
        return (first,) if second is None else (first, second)

    @property
    def _args(self) -> tuple:
        """Every argument's value, constants included, in argument order."""
        values = self._values
        return tuple(p.value for p in self.parents) if values is None else values

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
        self._sweep(seed, create_graph, every_node=True)

    def _sweep(self, seed: Any, create_graph: bool, every_node: bool) -> None:
        """The reverse sweep. ``every_node=False`` is for callers that read the leaves'
        adjoints only (``grad``, ``value_and_grad``, ``vjp``): a log-softmax or log-sum-exp
        written from primitives then sends its adjoint straight to its input
        (``course_ad.fusion``), and nodes the sweep never reaches keep ``grad`` None instead
        of an array of zeros. ``backward()`` keeps every node's adjoint: pictures show them."""
        if seed is None and not create_graph and adjoint_code.run(self, every_node):
            return  # a graph of a form swept before, by code written for that form
        seed = _check_seed(self, seed)
        order = topological_order(self, reset_grads=True)
        self.grad = seed
        # Adjoints this sweep summed into a fresh array of its own: later contributions are
        # added into that buffer in place. Any other adjoint may be shared (a rule can pass
        # v̄ on unchanged, the seed is the caller's), so the first sum is never in place.
        owned = set()
        cancelled: set[tuple[int, int]] = set()  # edges whose adjoint is exactly zero
        uses = None
        for node in reversed(order):
            g = node.grad
            first = node._first
            if g is None:
                if every_node:
                    node.grad = zeros(shape_of(node.value), node.value)
                continue
            if first is None:
                continue
            rule = node._rule
            params = node._params
            second = node._second
            parents = node._many or ((first,) if second is None else (first, second))
            if create_graph:
                args, out = node.inputs, node
            else:
                args, out = node._values, node.value
                if args is None:  # every argument is a parent: their values
                    if node._many is not None:
                        args = tuple(p.value for p in parents)
                    else:
                        args = (first.value,) if second is None else (first.value, second.value)
            # Rule.cotangent, inlined: this loop runs once per edge of every sweep. On plain
            # numpy values a first-order sweep uses the tape's kernels (Kernel.takes), the same
            # VJPs in fewer numpy calls; everything else (floats, nested levels) the rule's.
            kernel = None
            if not create_graph and type(out) in _NUMPY and not isinstance(g, Traced):
                kernel = KERNELS.get(node.op)
                if kernel is not None and kernel.takes is not None and not kernel.takes(*args):
                    kernel = None
            vjps = rule.vjp if kernel is None else kernel.vjp
            variadic = rule.variadic
            argnums = node._argnums
            block = None
            if kernel is not None and node.op in fusion.BLOCK_ENDS and (
                    second is not None and (first.op == "log" or second.op == "log")):
                block = _block(node)
            if block is not None and every_node:  # every adjoint kept, none of the zero ones
                if uses is None:
                    uses = _uses(order)
                cancelled.update((id(v), i) for v, i in fusion.cancelled_edges(
                    block.match, lambda v, uses=uses: uses.get(id(v), 0)))
            elif block is not None:  # a log-softmax or log-sum-exp: one adjoint, into x
                parents, argnums, vjps = (block.match.x,), _FIRST, (block.vjp,)
                args, params = block.values, {"axis": block.match.axis}
            for parent, i in zip(parents, argnums):
                if cancelled and (id(node), i) in cancelled:
                    continue
                if variadic:
                    c = vjps[0](g, out, *args, argnum=i, **params)
                else:
                    vjp = vjps[i]
                    if vjp is None:
                        raise rule.not_differentiable(i, "VJP")
                    if vjp is IDENTITY:
                        c = g
                    elif vjp is NEGATE and type(g) is np.ndarray and g.shape != shape_of(
                            pv := parent.value):  # -v̄ summed back: sum first, then negate
                        c = np.negative(unbroadcast(g, shape_of(pv)))
                    else:
                        c = vjp(g, out, *args, **params) if params else vjp(g, out, *args)
                pv = parent.value
                previous = parent.grad
                if type(c) is float and type(pv) is float:  # a scalar graph: nothing to fit
                    parent.grad = c if previous is None else previous + c
                    continue
                if type(c) is np.ndarray and type(pv) is np.ndarray:
                    if c.shape != pv.shape:
                        c = unbroadcast(c, pv.shape)
                else:
                    c = _fit(c, pv)
                if previous is None:
                    parent.grad = c
                    if kernel is not None and type(c) is np.ndarray and c.base is None \
                            and c is not g:  # a kernel's fresh array: later adds go into it
                        owned.add(parent)
                elif type(c) is np.ndarray and parent in owned and c.dtype is previous.dtype:
                    previous += c
                else:
                    parent.grad = total = previous + c
                    if type(total) is np.ndarray:
                        owned.add(parent)
        if not create_graph and type(seed) is float and seed == 1.0:
            adjoint_code.seen(self, order, every_node, _block)

    def _apply(self, rule: Any, args: tuple, params: dict) -> ReverseDiff:
        """Record an operation: the node's value, its traced parents and its constants."""
        rank = self._rank
        if len(args) == 1 and args[0] is self and not isinstance(self.value, Traced):
            value = self.value  # one argument, this node's own (sin(x), x.sum(axis=0), ...)
            try:
                out = rule.primal(value, **params) if params else rule.primal(value)
            except (TypeError, ValueError, IndexError):
                out = primal(rule, (value,), params)  # raises the error that explains
            node = _record(type(self), rule, out, None, _FIRST, params or _NO_PARAMS, rank)
            node._first = self
            return node
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
        out = (evaluate if nested else primal)(rule, values, params)
        argnums = tuple(argnums)
        node = _record(type(self), rule, out, None if len(parents) == len(args) else tuple(values),
                       _SHARED.get(argnums, argnums), params or _NO_PARAMS, rank)
        if len(parents) > 2:
            node._many = tuple(parents)
        node._first = parents[0]
        if len(parents) == 2:
            node._second = parents[1]
        return node

    def _apply2(self, rule: Any, x: Any, y: Any) -> ReverseDiff:
        """``_apply`` for a primitive of two arguments without parameters (the operators):
        the common cases of a scalar graph recorded without building lists."""
        rank = self._rank
        if isinstance(x, Traced):
            xv = x.value
            if isinstance(y, Traced):
                yv = y.value
                if x._rank != rank or y._rank != rank or isinstance(xv, Traced) \
                        or isinstance(yv, Traced):
                    return self._apply(rule, (x, y), _NO_PARAMS)
                parents, argnums, values = (x, y), _BOTH, None
            else:
                if isinstance(xv, Traced):
                    return self._apply(rule, (x, y), _NO_PARAMS)
                if type(y) is not float and (y.dtype.kind == "c" if type(y) is np.ndarray
                                             else is_complex(y)):  # leaves are real
                    raise complex_error(rule.name, y)
                yv = y
                parents, argnums, values = (x, None), _FIRST, (xv, y)
        else:
            yv = y.value
            if isinstance(yv, Traced):
                return self._apply(rule, (x, y), _NO_PARAMS)
            if type(x) is not float and (x.dtype.kind == "c" if type(x) is np.ndarray
                                         else is_complex(x)):  # leaves are real
                raise complex_error(rule.name, x)
            xv = x
            parents, argnums, values = (y, None), _SECOND, (x, yv)
        try:
            out = rule.primal(xv, yv)
        except (TypeError, ValueError, IndexError):
            out = primal(rule, (xv, yv), _NO_PARAMS)  # raises the error that explains
        node = self.__class__.__new__(self.__class__)  # _record, inlined: once per operator
        node.value = out
        node.grad = None
        node.op = rule.name
        node.name = ""
        node._first, node._second = parents
        node._many = None
        node._rule = rule
        node._values = values
        node._argnums = argnums
        node._params = _NO_PARAMS
        node._rank = rank
        node._mark = 0
        node._id = next(_created)
        return node


_NUMPY = frozenset({np.ndarray, np.float64, np.float32, np.float16})  # values kernels take
_NO_PARAMS: dict = {}  # shared by every operation without parameters; never written to
_FIRST, _SECOND, _BOTH = (0,), (1,), (0, 1)
_SHARED = {(0,): _FIRST, (1,): _SECOND, (0, 1): _BOTH}


def _record(cls: type, rule: Any, value: Any, values: tuple | None, argnums: tuple,
            params: dict, rank: int) -> ReverseDiff:
    """A new node without parents yet: the caller fills ``_first``, ``_second``, ``_many``."""
    node = cls.__new__(cls)
    node.value = value
    node.grad = None
    node.op = rule.name
    node.name = ""
    node._first = node._second = node._many = None
    node._rule = rule
    node._values = values
    node._argnums = argnums
    node._params = params
    node._rank = rank
    node._mark = 0
    node._id = next(_created)
    return node


class _Block(NamedTuple):
    """A log-softmax or log-sum-exp of arrays ending in a node: its match and fused VJP."""

    match: fusion.Match
    vjp: Any

    @property
    def values(self) -> tuple:
        """The fused VJP's arguments after v̄ and v: the values of x, e and t."""
        return self.match.x.value, self.match.e.value, self.match.t.value


def _block(y: ReverseDiff) -> _Block | None:
    """The fused block of arrays that ends in y, if y ends one (``course_ad.fusion``)."""
    found = fusion.match(y, _op_of, _inputs_of)
    if found is None:
        return None
    if not (type(found.x.value) is np.ndarray and type(found.e.value) is np.ndarray
            and type(found.t.value) is np.ndarray):
        return None
    return _Block(found, fusion.log_softmax_vjp if found.kind == fusion.Block.LOG_SOFTMAX
                  else fusion.logsumexp_vjp)


def _uses(order: list[ReverseDiff]) -> dict[int, int]:
    """How many arguments each node of the graph is (by node identity)."""
    count: dict[int, int] = {}
    for node in order:
        first = node._first
        if first is None:
            continue
        for parent in node._many or (first, node._second):
            if parent is not None:
                count[id(parent)] = count.get(id(parent), 0) + 1
    return count


def _op_of(v: Any) -> str | None:
    return (v.op or None) if isinstance(v, ReverseDiff) else None


def _inputs_of(v: Any) -> tuple:
    if not isinstance(v, ReverseDiff):
        return ()
    return v.parents if v._values is None else v.inputs  # all parents: no tuple to rebuild


def _fit(c: Any, pv: Any) -> Any:
    """A cotangent in its input's form: reduced to the input's shape (the adjoint of
    broadcasting, in one place for every rule), and a Python float for a Python float."""
    target = pv.shape if type(pv) is np.ndarray else shape_of(pv)
    have = c.shape if type(c) is np.ndarray else shape_of(c)
    if have != target:
        return unbroadcast(c, target)
    if type(pv) is float and type(c) is np.float64:
        return float(c)
    return c


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
        node = stack.pop()
        first = node._first
        if first is None:
            continue
        for parent in node._many or (first, node._second):
            if parent is not None and parent._mark != stamp:
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
    value = output.value
    if seed is None and (type(value) is float or type(value) is np.float64):
        return 1.0  # the usual case: a float64 scalar loss
    shape = shape_of(value)
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

