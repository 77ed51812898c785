"""The reverse sweep of a graph seen before, written out once as straight-line code.

A training loop builds the same graph at every step. The generic sweep (``ReverseDiff``)
pays at every node for questions whose answers do not change between steps: which kernel,
does it take these values, is the cotangent the node's own adjoint, must it be summed back
to its input's shape, is this the end of a log-sum-exp block. When a graph of the same form
is swept a second time, this module writes its sweep out once, as one Python function with
those answers built in: each node's VJP is one line, as in the adjoint code of the lecture
notes and as a person would write backpropagation by hand.

Such code is right only for the graph it was written for, so before it changes anything it
checks that the graph it is given has that form (otherwise the generic sweep runs):
- every node has the recorded rule, argument positions and static parameters;
- every parent is the recorded one, by identity (``x * x`` is not ``x * y``), and all nodes
  are distinct (their creation numbers increase in the recorded order);
- every value has the recorded type and shape.

Only first-order sweeps over plain numpy values whose every operation has a kernel
(``course_ad.kernels``) are written out, for graphs of at most ``MAX_NODES`` nodes with a
scalar output and the default seed. The function holds rules and kernels, never a node or
a value, so it keeps no graph alive.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .kernels import IDENTITY, KERNELS, NEGATE
from .ops import unbroadcast

__all__ = ["MAX_NODES", "run", "seen", "write_sweep"]

MAX_NODES = 256  # longer graphs (a checkpointed chain, a scalar graph) keep the generic sweep
CANDIDATES = 4  # written sweeps kept per output operation, the most recent first
WRITES = 16  # at most this many sweeps written per output operation (varying graphs)

_WRITTEN: dict[tuple, list[Callable[[Any], bool]]] = {}
_SIGHTINGS: dict[tuple, int] = {}
_WRITES: dict[tuple, int] = {}
_VALUE_TYPES = (np.ndarray, np.float64, np.float32)
_SLOTS = ("_first", "_second")


def run(output: Any, every_node: bool) -> bool:
    """Sweep ``output``'s graph with code written for its form, if there is one: True if so."""
    written = _WRITTEN.get((output.op, every_node))
    if written:
        for sweep in written:
            if sweep(output):
                return True
    return False


def seen(output: Any, order: list, every_node: bool, fused_block: Callable) -> None:
    """The generic sweep just swept ``order``: write its code the second time its form recurs.

    ``fused_block(node)`` is the eager engine's matcher of log-sum-exp and log-softmax blocks
    (None where ``every_node``: ``backward()`` keeps every node's adjoint)."""
    if not 2 <= len(order) <= MAX_NODES:
        return
    key = (output.op, every_node)
    form = (every_node, tuple([node.op for node in order]))  # cheap, and enough to count by
    count = _SIGHTINGS.get(form, 0)
    if count < 0:  # a form that cannot be written out
        return
    if len(_SIGHTINGS) > 4096:
        _SIGHTINGS.clear()
    if count == 0 or _WRITES.get(key, 0) >= WRITES:
        _SIGHTINGS[form] = 1
        return
    sweep = write_sweep(order, every_node, fused_block)
    if sweep is None:
        _SIGHTINGS[form] = -1
        return
    _SIGHTINGS[form] = 0
    _WRITES[key] = _WRITES.get(key, 0) + 1
    _WRITTEN[key] = [sweep] + _WRITTEN.get(key, [])[:CANDIDATES - 1]


def write_sweep(order: list, every_node: bool,
                fused_block: Callable | None = None) -> Callable[[Any], bool] | None:
    """The sweep of the graph ``order`` (parents before children, the output last) as one
    function ``sweep(output) -> bool``, or None if this graph cannot be written out."""
    if not _writable(order):
        return None
    position = {id(node): k for k, node in enumerate(order)}
    last = len(order) - 1
    names: dict[str, Any] = {"np": np, "unbroadcast": unbroadcast, "missing": _MISSING}
    check: list[str] = []
    loaded = {last}
    for k in range(last, -1, -1):  # load and check each node, from the output down
        node = order[k]
        if node._first is None:
            check.append(f"if n{k}._first is not None: return False")
            continue
        names[f"R{k}"] = node._rule
        check.append(f"if n{k}._rule is not R{k} or n{k}._argnums != {node._argnums!r}: "
                     "return False")
        if node._params and _comparable(node._params):
            check.append(f"p = n{k}._params")
            check.append(f"if len(p) != {len(node._params)}: return False")
            for key, value in node._params.items():
                check.append(f"q = p.get({key!r}, missing)")
                check.append(f"if not ({_same(value, 'q', names)}): return False")
        for slot, parent in zip(_SLOTS, node.parents):
            p = position[id(parent)]
            if p > k:
                return None  # not in creation order: never for a recorded graph
            if p in loaded:  # reached before, by another path: the same node again
                check.append(f"if n{k}.{slot} is not n{p}: return False")
            else:
                check.append(f"n{p} = n{k}.{slot}")
                loaded.add(p)
    # Distinct nodes: creation numbers that increase in the recorded order. Where only the
    # leaves' adjoints are read, distinct leaves suffice: a node reached twice as two
    # recorded nodes pushes each share of its adjoint through the same linear VJP.
    distinct = [k for k, node in enumerate(order) if every_node or node._first is None]
    if len(distinct) > 1:
        check.append("if not (" + " < ".join(f"n{k}._id" for k in distinct) + "): return False")
    for k, node in enumerate(order):
        check.append(f"v{k} = n{k}.value")
        if not _decides_shapes(node, k == last):
            continue  # its type and shape follow from its parents', its rule and parameters
        value = node.value
        names[f"T{k}"] = type(value)
        test = f"type(v{k}) is not T{k}"
        if type(value) is np.ndarray:
            test += f" or v{k}.shape != {value.shape!r}"
        check.append(f"if {test}: return False")
        kernel = KERNELS.get(node.op) if node._first is not None else None
        if kernel is not None and kernel.takes is not None and node._values is not None:
            names[f"takes{k}"] = kernel.takes
            check.append(f"if not takes{k}(*n{k}._values): return False")

    sweep: list[str] = [f"g{last} = 1.0"]
    uses = [0] * len(order)
    uses[last] = 1
    for k in range(last, -1, -1):
        node = order[k]
        if node._first is None or not uses[k]:
            continue
        edges = _edges(node, k, position, every_node, fused_block, names)
        for p, c, shape_differs in edges:
            if shape_differs:  # the adjoint of broadcasting: summed back to p's shape
                c = f"unbroadcast({c}, {np.shape(order[p].value)!r})"
            sweep.append(f"g{p} = {c}" if not uses[p] else f"g{p} = g{p} + {c}")
            uses[p] += 1
    if every_node and not all(uses):
        return None  # a node the sweep never reaches: the generic sweep gives it zeros
    for k in range(last + 1):
        sweep.append(f"n{k}.grad = g{k}" if uses[k] else f"n{k}.grad = None")
    sweep.append("return True")
    source = "\n".join([f"def sweep(n{last}):"] + [f"    {line}" for line in check + sweep])
    code = compile(source, f"<adjoint code of {order[-1].op}, {len(order)} nodes>", "exec")
    exec(code, names)
    function = names["sweep"]
    function.source = source
    return function


def _edges(node: Any, k: int, position: dict, every_node: bool, fused_block: Callable | None,
           names: dict) -> list[tuple[int, str, bool]]:
    """Node k's adjoint pushed to its parents: (parent position, the expression of its
    cotangent, whether that must be summed back to the parent's shape)."""
    shape = np.shape(node.value)
    if not every_node and fused_block is not None:
        block = fused_block(node)
        if block is not None:  # a log-softmax or log-sum-exp: one adjoint, into x
            vjp, x, e, t, axis = block
            names[f"F{k}"] = vjp
            names[f"A{k}"] = axis
            x, e, t = (position[id(v)] for v in (x, e, t))
            return [(x, f"F{k}(g{k}, v{k}, v{x}, v{e}, v{t}, axis=A{k})", False)]
    kernel = KERNELS[node.op]
    if node._values is None:
        args = ", ".join(f"v{position[id(p)]}" for p in node.parents)
    else:
        args = f"*n{k}._values"
    params = f", **n{k}._params" if node._params else ""
    edges = []
    for parent, i in zip(node.parents, node._argnums):
        p = position[id(parent)]
        vjp = kernel.vjp[i]
        # Only an elementwise VJP (or v̄ itself) gives a cotangent of the node's shape, which
        # broadcasting may have made larger than the parent's; the others give the parent's.
        differs = np.shape(parent.value) != shape and (vjp is IDENTITY or kernel.elementwise)
        if vjp is IDENTITY:
            line = f"g{k}"
        elif vjp is NEGATE:  # summed back first, then negated: the smaller array
            line = (f"np.negative(unbroadcast(g{k}, {np.shape(parent.value)!r}))"
                    if differs else f"np.negative(g{k})")
            differs = False
        else:
            names[f"K{k}_{i}"] = vjp
            line = f"K{k}_{i}(g{k}, v{k}, {args}{params})"
        edges.append((p, line, differs))
    return edges


def _writable(order: list) -> bool:
    """Plain numpy values only, every operation with a kernel that takes its values and a
    VJP for each traced input, two parents at most, a scalar output."""
    output = order[-1]
    if type(output.value) not in (np.float64, float):  # the seed 1.0
        return False
    for node in order:
        if type(node.value) not in _VALUE_TYPES and node is not output:
            return False
        if node._first is None:
            continue
        if node._many is not None or node._rule.variadic:
            return False
        kernel = KERNELS.get(node.op)
        if kernel is None:
            return False
        args = node._args
        if kernel.takes is not None and not kernel.takes(*args):
            return False
        if any(kernel.vjp[i] is None for i in node._argnums):
            return False
    return True


def _decides_shapes(node: Any, output: bool) -> bool:
    """Must this node's value type and shape be checked? Those of a leaf, of a node with a
    constant argument or with parameters not compared (index arrays), and the output's; every
    other node's follow from its parents' by its (checked) rule and parameters."""
    return (output or node._first is None or node._values is not None
            or bool(node._params) and not _comparable(node._params))


def _same(value: Any, name: str, names: dict) -> str:
    """A test that ``name`` is ``value``: types first, so that an array where the recording
    had a number is a difference and not an ambiguous truth value."""
    if value is None or value is Ellipsis or type(value) is bool:
        return f"{name} is {value!r}"
    if type(value) is tuple:
        return " and ".join([f"type({name}) is tuple and len({name}) == {len(value)}"]
                            + [f"({_same(v, f'{name}[{i}]', names)})"
                               for i, v in enumerate(value)])
    kind = f"K_{type(value).__name__}"
    names[kind] = type(value)
    return f"type({name}) is {kind} and {name} == {value!r}"


_MISSING = object()


def _comparable(params: dict) -> bool:
    """Parameters that compare by ``==`` (axes, flags, basic indices), not arrays."""
    stack = list(params.values())
    while stack:
        v = stack.pop()
        if isinstance(v, tuple):
            stack.extend(v)
        elif not isinstance(v, int | float | bool | str | slice | type(None) | type(Ellipsis)
                            | np.integer):
            return False
    return True
