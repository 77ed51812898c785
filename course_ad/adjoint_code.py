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
- every parent is the recorded one, by identity (``x * x`` is not ``x * y``), and the leaves
  (with ``backward()`` or a max in the graph, all nodes) are distinct: their creation
  numbers increase in the recorded order;
- the leaves, the output, and the nodes with a constant argument or an index array have the
  recorded type, shape and dtype; every other value's follow from those.

Only first-order sweeps over plain numpy values whose every operation has a kernel
(``course_ad.kernels``) are written out, for graphs of at most ``MAX_NODES`` nodes with a
scalar output and the default seed, and no 0-d value but the output with two adjoint
contributions. Contributions are added in the generic sweep's order, so the adjoints are
its own to the bit. The function holds rules and kernels, never a node or
a value, so it keeps no graph alive.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import fusion
from .dispatch import zeros
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

    ``fused_block(node)`` is the eager engine's matcher of log-sum-exp and log-softmax blocks:
    fused into one adjoint, or with ``every_node`` (``backward()``, which keeps every node's
    adjoint) only their edges with an exactly zero adjoint skipped."""
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
    names: dict[str, Any] = {"np": np, "unbroadcast": unbroadcast, "zeros": zeros,
                             "missing": _MISSING}
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
            p = position[id(parent)]  # below k: a parent is made before its children
            if p in loaded:  # reached before, by another path: the same node again
                check.append(f"if n{k}.{slot} is not n{p}: return False")
            else:
                check.append(f"n{p} = n{k}.{slot}")
                loaded.add(p)
    # Distinct nodes: creation numbers that increase in the recorded order. Where only the
    # leaves' adjoints are read, distinct leaves suffice: a node reached twice as two
    # recorded nodes pushes each share of its adjoint through the same linear VJP. Not with a
    # max in the graph: the log-sum-exp matcher compares nodes by identity, and two recorded
    # nodes that are now one (x − max x written from two equal x) would fuse in the generic
    # sweep, rounding otherwise than the code written unfused.
    all_distinct = every_node or any(node.op == "max" for node in order)
    distinct = [k for k, node in enumerate(order) if all_distinct or node._first is None]
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
            names[f"D{k}"] = value.dtype
            test += f" or v{k}.shape != {value.shape!r} or v{k}.dtype is not D{k}"
        check.append(f"if {test}: return False")
        kernel = KERNELS.get(node.op) if node._first is not None else None
        if kernel is not None and kernel.takes is not None and node._values is not None:
            names[f"takes{k}"] = kernel.takes
            check.append(f"if not takes{k}(*n{k}._values): return False")

    # Contributions to each adjoint are gathered and summed where that adjoint is first
    # needed: a fresh array of the sweep's own first, then the others added into it in place
    # (a basic index's adjoint scattered straight in), when every value is float64.
    in_place = all(np.result_type(node.value) == np.float64 for node in order)
    pending: list[list[tuple[str, bool, str | None]]] = [[] for _ in order]
    uses = [0] * len(order)  # how many arguments each node is
    for node in order:
        for parent in node.parents:
            uses[position[id(parent)]] += 1
    cancelled: set = set()  # (node, argument) edges whose adjoint is exactly zero
    pending[last].append(("1.0", False, None))
    sweep: list[str] = []
    for k in range(last, -1, -1):
        node = order[k]
        if not pending[k]:
            continue
        if len(pending[k]) > 1 and k != last and np.shape(node.value) == ():
            # A 0-d adjoint's sum is a numpy scalar or a 0-d array as the generic sweep's
            # kernel outputs and in-place adds happen to make it: no one line gives both (and
            # an index's adjoint cannot be scattered into a numpy scalar).
            return None
        sweep += _summed(k, pending[k], in_place)
        if node._first is None:
            continue
        for p, c, fresh, into in _edges(node, k, position, every_node, fused_block, names,
                                        uses, cancelled):
            pending[p].append((c, fresh, into))
    reached = [bool(contributions) for contributions in pending]
    for k in range(last + 1):  # a node no adjoint reaches: zeros from backward(), else None
        unreached = f"zeros({np.shape(order[k].value)!r}, v{k})" if every_node else "None"
        sweep.append(f"n{k}.grad = g{k}" if reached[k] else f"n{k}.grad = {unreached}")
    sweep.append("return True")
    source = "\n".join([f"def sweep(n{last}):"] + [f"    {line}" for line in check + sweep])
    code = compile(source, f"<adjoint code of {order[-1].op}, {len(order)} nodes>", "exec")
    exec(code, names)
    function = names["sweep"]
    function.source = source
    return function


def _edges(node: Any, k: int, position: dict, every_node: bool, fused_block: Callable | None,
           names: dict, uses: list[int], cancelled: set) -> list[tuple[int, str, bool, str | None]]:
    """Node k's adjoint pushed to its parents: (parent position, the expression of its
    cotangent, whether that is a fresh array of the sweep's own, and where one exists, the
    statement that adds it into an adjoint ``{target}`` in place instead)."""
    shape = np.shape(node.value)
    block = None
    if fused_block is not None and node.op in fusion.BLOCK_ENDS:
        block = fused_block(node)
    if block is not None and every_node:  # every adjoint kept, but none of the zero ones
        cancelled.update((id(v), i) for v, i in fusion.cancelled_edges(
            block.match, lambda v: uses[position[id(v)]]))
    elif block is not None:  # a log-softmax or log-sum-exp: one adjoint, into x
        names[f"F{k}"] = block.vjp
        names[f"A{k}"] = block.match.axis
        x, e, t = (position[id(v)] for v in (block.match.x, block.match.e, block.match.t))
        return [(x, f"F{k}(g{k}, v{k}, v{x}, v{e}, v{t}, axis=A{k})", True, None)]
    kernel = KERNELS[node.op]
    if node._values is None:
        args = ", ".join(f"v{position[id(p)]}" for p in node.parents)
    else:
        args = f"*n{k}._values"
    params = f", **n{k}._params" if node._params else ""
    edges = []
    for parent, i in zip(node.parents, node._argnums):
        if (id(node), i) in cancelled:
            continue
        p = position[id(parent)]
        vjp = kernel.vjp[i]
        parent_shape = np.shape(parent.value)
        # Only an elementwise VJP (or v̄ itself) gives a cotangent of the node's shape, which
        # broadcasting may have made larger than the parent's; the others give the parent's.
        differs = parent_shape != shape and (vjp is IDENTITY or kernel.elementwise)
        into = None
        if vjp is IDENTITY:
            c, fresh = f"g{k}", False  # v̄ itself: shared, never added into
        elif vjp is NEGATE:  # summed back first, then negated: the smaller array
            c = f"np.negative({_summed_back(f'g{k}', shape, parent_shape)})" if differs \
                else f"np.negative(g{k})"
            fresh, differs = True, False
        else:
            names[f"K{k}_{i}"] = vjp
            c = f"K{k}_{i}(g{k}, v{k}, {args}{params})"
            fresh = node.op not in _VIEWS
            # A scatter adds v̄'s entries into x̄ one by one: where an index array repeats a
            # position that is (x̄ + a) + b, not the generic sweep's x̄ + (a + b). So only a
            # basic index (no position twice) scatters; an index array's adjoint is made
            # whole first, as the generic sweep makes it.
            if kernel.add_into and kernel.add_into[i] is not None and not differs and not (
                    node.op == "getitem" and not _comparable(node._params)):
                names[f"I{k}_{i}"] = kernel.add_into[i]
                into = f"I{k}_{i}(g{k}, v{k}, {args}, target={{target}}{params})"
        if differs:  # the adjoint of broadcasting: summed back to the parent's shape
            c, fresh = _summed_back(c, shape, parent_shape), True
        edges.append((p, c, fresh, into))
    return edges


def _summed_back(c: str, have: tuple[int, ...], shape: tuple[int, ...]) -> str:
    """``unbroadcast(c, shape)`` for a cotangent of the known shape ``have``, written out as
    one reduction where it is one: over leading axes (a bias), or over kept size-1 axes."""
    lead = len(have) - len(shape)
    ones = tuple(lead + i for i, n in enumerate(shape) if n == 1 and have[lead + i] != 1)
    if lead > 0 and not ones:
        return f"np.add.reduce({c}, axis={tuple(range(lead))!r})"
    if lead == 0 and ones:
        return f"np.add.reduce({c}, axis={ones!r}, keepdims=True)"
    return f"unbroadcast({c}, {shape!r})"


def _summed(k: int, contributions: list, in_place: bool) -> list[str]:
    """The statements that make g{k}, node k's adjoint, from its contributions."""
    scatters = in_place and any(into is not None for _, _, into in contributions)
    # The generic sweep adds contributions in the order they arrive. Two add up to the same
    # float in either order, three need not ((c + a) + b is not (a + b) + c): the array to
    # start from is one of the first two, so the sums stay the generic sweep's to the bit.
    head = contributions[:2]
    first = next((c for c in head if c[1] and c[2] is None),  # a fresh array
                 next((c for c in head if scatters and c[2] is None),  # to copy
                      next((c for c in head if c[1]), contributions[0])))
    rest = [c for c in contributions if c is not first]
    if scatters and not first[1] and any(into is not None for _, _, into in rest):
        lines, owned = [f"g{k} = {first[0]}.copy()"], True  # a buffer to scatter into
    else:
        lines, owned = [f"g{k} = {first[0]}"], first[1]
    for c, _, into in rest:
        if in_place and owned and into is not None:
            lines.append(into.format(target=f"g{k}"))
        elif in_place and owned:
            lines.append(f"g{k} += {c}")
        else:
            lines.append(f"g{k} = g{k} + {c}")
            owned = True
    return lines


_VIEWS = frozenset({"reshape", "transpose"})  # VJPs that return a view of v̄


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
    kind, constant = f"K_{type(value).__name__}", f"C{len(names)}"
    names[kind], names[constant] = type(value), value
    return f"type({name}) is {kind} and {name} == {constant}"


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
