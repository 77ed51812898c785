"""Computational graphs, their sweeps, and evaluation-trace tables.

``trace(output)`` turns any object with ``value``, ``parents`` and ``op`` (``ReverseDiff`` or a
student's own class) into a ``Graph`` whose nodes are numbered as Griewank and Walther do:
inputs v₁₋ₙ … v₀, then v₁, v₂, … in evaluation order. ``forward_sweep`` and ``reverse_sweep``
replay the graph step by step with the rule table, recording every value, tangent and adjoint
update; ``trace_table`` shows the steps as the lecture's table, and the pictures and the
explorer are drawn from the same steps, so they always agree.
"""

from __future__ import annotations

import html
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import ops
from .dispatch import primal_value, shape_of
from .reverse import ReverseDiff, topological_order
from .rules import RULES, Rule

__all__ = ["Graph", "GraphNode", "Edge", "Step", "trace", "forward_sweep", "reverse_sweep",
           "trace_table", "TraceTable", "subscript"]

# the ops students' classes name by their operator symbol
OP_ALIASES = {"+": "add", "-": "sub", "*": "mul", "/": "div", "**": "pow", "@": "matmul",
              "neg": "neg", "exp": "exp", "log": "log", "sin": "sin", "cos": "cos",
              "tanh": "tanh", "relu": "relu", "ReLU": "relu", "sigmoid": "sigmoid"}
INFIX = {"add": "+", "sub": "−", "mul": "×", "div": "/", "pow": "^", "matmul": "@"}

_SUBSCRIPTS = str.maketrans("0123456789-", "₀₁₂₃₄₅₆₇₈₉₋")


def subscript(index: int) -> str:
    """v with a Unicode subscript: subscript(-1) == 'v₋₁'."""
    return "v" + str(index).translate(_SUBSCRIPTS)


@dataclass
class GraphNode:
    """One value of the trace: its name, how it was computed and from what."""

    index: int  # position in evaluation order
    number: int  # Griewank's number: inputs 1-n..0, then 1, 2, ...
    name: str  # display name: "v₋₁", or the user's variable name
    op: str  # "" for inputs
    value: Any
    parents: tuple[int, ...] = ()  # node index per edge (a parent used twice appears twice)
    argnums: tuple[int, ...] = ()  # argument position of each parent
    args: tuple[Any, ...] = ()  # every argument's value, constants included
    params: dict = field(default_factory=dict)
    rule: Rule | None = None
    source: Any = field(default=None, repr=False)  # the traced object itself

    @property
    def is_input(self) -> bool:
        return not self.parents and not self.op

    @property
    def griewank(self) -> str:
        return subscript(self.number)


@dataclass(frozen=True)
class Edge:
    source: int
    target: int
    argnum: int


@dataclass
class Graph:
    """Nodes in evaluation order (inputs first), edges with argument positions, one output."""

    nodes: list[GraphNode]
    edges: list[Edge]
    output: int

    @property
    def inputs(self) -> list[GraphNode]:
        return [n for n in self.nodes if n.is_input]

    def expression(self, node: GraphNode) -> str:
        """How a node is computed from the others: 'v₋₁ / v₀', 'sin(v₁)', 'v₃ × 2'."""
        if node.is_input:
            return "input"
        operands = [self._operand(node, pos) for pos in range(len(node.args))]
        rule = node.rule
        name = rule.name if rule else node.op
        if name in INFIX and len(operands) == 2:
            return f"{operands[0]} {INFIX[name]} {operands[1]}"
        if name == "neg":
            return f"−{operands[0]}"
        extra = ", ".join(f"{k}={_short(v)}" for k, v in node.params.items() if k != "labels")
        return f"{name}({', '.join(operands + ([extra] if extra else []))})"

    def _operand(self, node: GraphNode, position: int) -> str:
        if position in node.argnums:
            return self.nodes[node.parents[node.argnums.index(position)]].name
        return _short(node.args[position])


def trace(output: Any, names: dict[str, Any] | None = None) -> Graph:
    """The graph of ``output``: every node it depends on, found without recursion.

    Works for any object with ``value``, ``parents`` and ``op``. ``names`` maps variable
    names to traced objects (``names=locals()`` works) to label nodes the way your code does;
    otherwise inputs with a ``name`` attribute keep it and the rest are v₁₋ₙ … v₀, v₁, …"""
    for attribute in ("value", "parents", "op"):
        if not hasattr(output, attribute):
            raise TypeError(f"trace: needs an object with value, parents and op (a ReverseDiff "
                            f"or your own node class); {type(output).__name__} has no "
                            f"{attribute!r}")
    order = _evaluation_order(output)
    inputs = [obj for obj in order if not _parents(obj)]
    others = [obj for obj in order if _parents(obj)]
    ordered = inputs + others
    position = {id(obj): i for i, obj in enumerate(ordered)}
    labels = {id(obj): name for name, obj in (names or {}).items()
              if hasattr(obj, "parents") and not name.startswith("_")}
    nodes, edges = [], []
    for i, obj in enumerate(ordered):
        number = i - len(inputs) + 1
        parents = tuple(position[id(p)] for p in _parents(obj))
        argnums = tuple(getattr(obj, "argnums", range(len(parents))))
        args = _arguments(obj, parents, argnums, ordered)
        own_name = getattr(obj, "name", "") if not parents else ""
        name = labels.get(id(obj)) or own_name or subscript(number)
        rule = _rule_of(obj)
        nodes.append(GraphNode(i, number, name, _op_name(obj), primal_value(obj.value), parents,
                               argnums, args, dict(getattr(obj, "params", {}) or {}), rule, obj))
        edges += [Edge(p, i, a) for p, a in zip(parents, argnums)]
    return Graph(nodes, edges, position[id(output)])


def _parents(obj: Any) -> tuple:
    return tuple(getattr(obj, "parents", ()) or ())


def _op_name(obj: Any) -> str:
    op = getattr(obj, "op", "") or ""
    return op if isinstance(op, str) else getattr(op, "__name__", str(op))


def _rule_of(obj: Any) -> Rule | None:
    rule = getattr(obj, "_rule", None)
    if isinstance(rule, Rule):
        return rule
    op = _op_name(obj)
    return RULES.get(OP_ALIASES.get(op, op))


def _arguments(obj, parents, argnums, ordered) -> tuple:
    stored = getattr(obj, "_args", None)
    if stored is not None and len(stored) >= len(parents):
        return tuple(primal_value(v) for v in stored)
    return tuple(primal_value(ordered[p].value) for p in parents)


def _evaluation_order(output: Any) -> list[Any]:
    """Parents before children: for ReverseDiff the order the program made the nodes in,
    otherwise an explicit-stack depth-first search."""
    if isinstance(output, ReverseDiff):
        return topological_order(output)
    order, seen = [], {id(output)}
    stack = [(output, iter(_parents(output)))]
    while stack:
        node, pending = stack[-1]
        for parent in pending:
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append((parent, iter(_parents(parent))))
                break
        else:
            stack.pop()
            order.append(node)
    return order


# --------------------------------------------------------------------------------------
# Sweeps: the steps of the forward and reverse mode, recorded
# --------------------------------------------------------------------------------------


@dataclass
class Step:
    """One step of a sweep, with what it computed and the line that says so."""

    kind: str  # "input", "value", "tangent", "seed", "adjoint"
    node: int
    text: str
    amount: Any = None  # the value, tangent or adjoint contribution computed
    source: int | None = None  # reverse: the node whose adjoint is pushed back
    argnum: int | None = None  # reverse: the argument position of the edge used
    partial: Any = None  # the local partial ∂v_i/∂v_j (scalar graphs)
    values: dict[int, Any] = field(default_factory=dict)  # node -> value so far
    derivatives: dict[int, Any] = field(default_factory=dict)  # node -> tangent or adjoint
    # (source, target, argnum) -> what the edge has carried so far: forward, its term
    # ∂vᵢ/∂vⱼ·v̇ⱼ of v̇ᵢ; reverse, its term v̄ᵢ·∂vᵢ/∂vⱼ of v̄ⱼ (scalar edges only)
    flows: dict[tuple[int, int, int], Any] = field(default_factory=dict)


def forward_sweep(graph: Graph, seed: dict[str, Any] | int | None = None) -> list[Step]:
    """Values and tangents node by node: v̇ᵢ = Σⱼ ∂vᵢ/∂vⱼ · v̇ⱼ.

    ``seed`` gives the input tangents: an input's position (1 for ẋ₁ = 1, the default), or
    a dict from input name to tangent."""
    tangents_in = _seed_tangents(graph, seed)
    values, tangents, flows, steps = {}, {}, {}, []
    for node in graph.nodes:
        values[node.index] = node.value
        if node.is_input:
            tangents[node.index] = tangents_in[node.index]
            steps.append(Step("input", node.index, f"{node.name} = {_fmt(node.value)},  "
                              f"{_dot(node)} = {_fmt(tangents[node.index])}",
                              tangents[node.index],
                              values=dict(values), derivatives=dict(tangents)))
            continue
        inputs: list[Any] = [None] * len(node.args)  # constants carry no tangent
        for parent, argnum in zip(node.parents, node.argnums):
            inputs[argnum] = tangents[parent] if inputs[argnum] is None else (
                inputs[argnum] + tangents[parent])
        total = (None if node.rule is None else
                 node.rule.tangent(inputs, node.value, node.args, node.params))
        terms = [(_local_partial(node, argnum), graph.nodes[parent])
                 for parent, argnum in zip(node.parents, node.argnums)]
        for (partial, parent), argnum in zip(terms, node.argnums):
            if partial is not None and _known_scalar(tangents[parent.index]):
                flows[(parent.index, node.index, argnum)] = partial * tangents[parent.index]
        tangents[node.index] = total
        sum_text = _signed_sum([(p, _dot(n)) for p, n in terms])
        steps.append(Step("tangent", node.index,
                          f"{node.name} = {graph.expression(node)} = {_fmt(node.value)},  "
                          f"{_dot(node)} = {sum_text} = {_fmt(total)}", total,
                          values=dict(values), derivatives=dict(tangents), flows=dict(flows)))
    return steps


def reverse_sweep(graph: Graph, seed: Any = 1.0) -> list[Step]:
    """The primal sweep (values are stored), then adjoints backwards: v̄ⱼ += v̄ᵢ · ∂vᵢ/∂vⱼ.

    One step per ``+=`` update, so a value used twice visibly receives two contributions."""
    values, steps = {}, []
    for node in graph.nodes:
        values[node.index] = node.value
        kind = "input" if node.is_input else "value"
        text = (f"{node.name} = {_fmt(node.value)}" if node.is_input else
                f"{node.name} = {graph.expression(node)} = {_fmt(node.value)}")
        steps.append(Step(kind, node.index, text, node.value, values=dict(values)))
    out = graph.nodes[graph.output]
    adjoints: dict[int, Any] = {out.index: _as_float(seed)}
    flows: dict[tuple[int, int, int], Any] = {}
    steps.append(Step("seed", out.index, f"{_bar(out)} = {_fmt(seed)}", seed,
                      values=dict(values), derivatives=dict(adjoints)))
    for node in reversed(graph.nodes):
        if node.index not in adjoints or not node.parents:
            continue
        g = adjoints[node.index]
        for parent, argnum in zip(node.parents, node.argnums):
            contribution, partial = _adjoint_term(node, argnum, g, graph.nodes[parent])
            previous = adjoints.get(parent)
            adjoints[parent] = contribution if previous is None else previous + contribution
            target = graph.nodes[parent]
            if _known_scalar(contribution):
                flows[(parent, node.index, argnum)] = contribution
            factor = _fmt(partial) if partial is not None else f"∂{node.name}/∂{target.name}"
            steps.append(Step("adjoint", parent,
                              f"{_bar(target)} += {_bar(node)} · {factor} = {_fmt(contribution)}"
                              + ("" if previous is None else f"  (now {_fmt(adjoints[parent])})"),
                              contribution, source=node.index, argnum=argnum, partial=partial,
                              values=dict(values), derivatives=dict(adjoints),
                              flows=dict(flows)))
    return steps


def _seed_tangents(graph: Graph, seed: Any) -> dict[int, Any]:
    inputs = graph.inputs
    if seed is None:
        seed = 1
    if isinstance(seed, numbers.Integral):
        if not 1 <= seed <= len(inputs):
            raise ValueError(f"forward_sweep: seed={seed} picks input {seed}, but the graph has "
                             f"{len(inputs)} inputs; give 1..{len(inputs)} or a dict of tangents")
        seed = {inputs[seed - 1].name: 1.0}
    unknown = set(seed) - {n.name for n in inputs}
    if unknown:
        raise ValueError(f"forward_sweep: no input named {sorted(unknown)}; the inputs are "
                         f"{[n.name for n in inputs]}")
    return {n.index: _as_float(seed.get(n.name, 0.0)) * np.ones(shape_of(n.value))
            if shape_of(n.value) else _as_float(seed.get(n.name, 0.0)) for n in inputs}


def _local_partial(node: GraphNode, argnum: int) -> Any:
    """∂vᵢ/∂vⱼ as a number, for a scalar node of a scalar argument (else None: not shown)."""
    rule = node.rule
    if rule is None or rule.variadic or not (_scalar(node.value) and _scalar(node.args[argnum])):
        return None
    return rule.jvp[argnum](1.0, node.value, *node.args, **node.params)


def _adjoint_term(node: GraphNode, argnum: int, g: Any, parent: GraphNode) -> tuple[Any, Any]:
    """A parent's share of v̄ᵢ (reduced to the parent's shape), and the local partial."""
    if node.rule is None:
        return None, None
    share = node.rule.cotangent(argnum, g, node.value, node.args, node.params)
    return ops.unbroadcast(share, shape_of(parent.value)), _local_partial(node, argnum)


def _signed_sum(terms: list[tuple[Any, str]]) -> str:
    """'2.0000·v̇₋₁ − 6.0000·v̇₀': coefficient times symbol, signs folded in."""
    text = ""
    for coefficient, symbol in terms:
        if coefficient is None:
            part, negative = f"∂·{symbol}", False
        else:
            negative = _scalar(coefficient) and float(np.real(primal_value(coefficient))) < 0
            part = f"{_fmt(-coefficient if negative else coefficient)}·{symbol}"
        if not text:
            text = ("−" if negative else "") + part
        else:
            text += (" − " if negative else " + ") + part
    return text


def _scalar(x: Any) -> bool:
    return shape_of(x) == ()


def _known_scalar(x: Any) -> bool:
    return x is not None and _scalar(x)


def _as_float(x: Any) -> Any:
    return float(x) if isinstance(x, numbers.Real) else np.asarray(x, dtype=float)


def _dot(node: GraphNode) -> str:
    return _mark(node.name, "\u0307")


def _bar(node: GraphNode) -> str:
    return _mark(node.name, "\u0304")


def _mark(name: str, combining: str) -> str:
    """Put a dot or bar over the first letter: v₂ → v̇₂, x → ẋ."""
    return name[0] + combining + name[1:] if name else name


def _fmt(x: Any, precision: int = 4) -> str:
    """Fixed-precision numbers (numpy scalars shown as plain floats)."""
    if x is None:
        return "—"
    x = primal_value(x)
    if isinstance(x, np.ndarray) and x.ndim:
        return np.array2string(x, precision=precision, threshold=6, separator=", ",
                               suppress_small=True)
    value = float(np.real(x))
    text = f"{value:.{precision}f}"
    return "0.0000"[: precision + 2] if text.lstrip("-") == "0." + "0" * precision else text


def _short(x: Any) -> str:
    if isinstance(x, np.ndarray):
        return f"array{x.shape}" if x.size > 4 else np.array2string(x, precision=3,
                                                                     separator=",")
    if isinstance(x, numbers.Real) and not isinstance(x, bool | np.bool_):
        return f"{float(x):g}"
    return repr(x)


# --------------------------------------------------------------------------------------
# Evaluation-trace tables
# --------------------------------------------------------------------------------------


@dataclass
class TraceTable:
    """The evaluation trace as a table: forward (values and tangents) or reverse (values,
    then adjoint updates from the output back to the inputs)."""

    graph: Graph
    steps: list[Step]
    mode: str
    active: int | None = None  # a step to highlight

    @property
    def rows(self) -> list[dict[str, Any]]:
        """One dict per step: name, kind, text, amount (for tests and for your own views)."""
        return [{"step": i + 1, "kind": s.kind, "node": self.graph.nodes[s.node].name,
                 "text": s.text, "amount": s.amount} for i, s in enumerate(self.steps)]

    def __repr__(self) -> str:
        title = ("forward mode: values and tangents" if self.mode == "forward" else
                 "reverse mode: values, then adjoints from the output back")
        lines = [f"Evaluation trace, {title}"]
        for i, step in enumerate(self.steps):
            marker = "▶" if self.active == i else " "
            lines.append(f"{marker}{i + 1:>3}  {step.text}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return self.to_html()

    def to_html(self, active: int | None = None) -> str:
        active = self.active if active is None else active
        head = ("<th>step</th><th>primal trace</th><th>tangent</th>" if self.mode == "forward"
                else "<th>step</th><th>sweep</th><th>line</th>")
        rows = []
        for i, step in enumerate(self.steps):
            classes = ["cad-row", f"cad-{step.kind}"]
            if active is not None:
                classes.append("cad-active" if i == active else
                               "cad-done" if i < active else "cad-pending")
            if self.mode == "forward":
                primal, _, tangent = step.text.partition(",  ")
                cells = f"<td>{html.escape(primal)}</td><td>{html.escape(tangent)}</td>"
            else:
                sweep = "forward (values)" if step.kind in ("input", "value") else "reverse"
                cells = f"<td>{sweep}</td><td>{html.escape(step.text)}</td>"
            rows.append(f"<tr class='{' '.join(classes)}'><td>{i + 1}</td>{cells}</tr>")
        return (f"<style>{_TABLE_CSS}</style><table class='cad-trace cad-{self.mode}'>"
                f"<tr>{head}</tr>{''.join(rows)}</table>")


_TABLE_CSS = (
    ".cad-trace{border-collapse:collapse;font-family:monospace;font-size:12.5px}"
    ".cad-trace td,.cad-trace th{padding:2px 10px;text-align:left;border-bottom:1px solid #ddd;"
    "white-space:nowrap}"
    ".cad-trace .cad-active{background:#ffe8a3;font-weight:bold}"
    ".cad-trace .cad-pending{color:#9a9a9a}"
    ".cad-trace .cad-seed td,.cad-trace .cad-adjoint td{color:inherit}"
)


def trace_table(output: Any, mode: str = "forward", *, seed: Any = None,
                names: dict[str, Any] | None = None) -> TraceTable:
    """The evaluation trace of ``output`` in Griewank and Walther's style.

    ``mode="forward"``: each row is vᵢ with its value and tangent v̇ᵢ (``seed`` picks the input
    direction, input 1 by default). ``mode="reverse"``: the values, then ``v̄ⱼ += v̄ᵢ · ∂vᵢ/∂vⱼ``
    updates from the output back (``seed`` is v̄ of the output, 1 by default)."""
    if mode not in ("forward", "reverse"):
        raise ValueError(f"trace_table: mode must be 'forward' or 'reverse', got {mode!r}")
    graph = output if isinstance(output, Graph) else trace(output, names)
    if mode == "forward":
        return TraceTable(graph, forward_sweep(graph, seed), mode)
    return TraceTable(graph, reverse_sweep(graph, 1.0 if seed is None else seed), mode)
