"""Pictures: computational graphs with values, tangents and adjoints; lecture plots.

Everything is drawn with matplotlib's object API (no pyplot in library code, no system
binary). ``draw(output)`` lays the graph out (``course_ad.layout``) and returns a ``GraphView``
that shows itself as SVG in a notebook and saves SVG or PNG; the same input gives the same
bytes. ``to_dot`` writes Graphviz DOT text for those who have Graphviz.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from .graph import Graph, Step, _bar, _dot, _fmt, forward_sweep, reverse_sweep, trace
from .layout import Layout, layered_layout

__all__ = ["draw", "GraphView", "to_dot", "plot_step_size_error", "plot_expression_swell",
           "render_frame", "layout_for", "Frame"]

NON_COMMUTATIVE = {"sub", "div", "pow", "matmul", "concatenate", "stack", "maximum"}
COLOURS = {
    "pending": ("#ffffff", "#9aa0a6"),  # fill, text
    "done": ("#e7f4ea", "#1f2328"),
    "adjoint": ("#efe7fb", "#1f2328"),
    "active": ("#ffd166", "#1f2328"),
}
INPUT_EDGE, OUTPUT_EDGE, NODE_EDGE = "#2b6cb0", "#1f2328", "#6b7280"
HOT_EDGE, EDGE = "#e8590c", "#7b8794"
FONT = 8.5
INCH_PER_UNIT = 0.8


@dataclass
class Frame:
    """What one picture shows: which values and derivatives are known, what is active."""

    mode: str  # "values", "forward" or "reverse"
    values: dict[int, Any] = field(default_factory=dict)
    derivatives: dict[int, Any] = field(default_factory=dict)
    active: int | None = None
    hot_edge: tuple[int, int, int] | None = None  # (source, target, argnum) highlighted
    caption: str = ""

    @classmethod
    def from_step(cls, mode: str, step: Step, steps_total: int, index: int) -> Frame:
        hot = None
        if step.kind == "adjoint" and step.source is not None:
            hot = (step.node, step.source, step.argnum)
        return cls(mode, dict(step.values), dict(step.derivatives), step.node, hot,
                   f"step {index + 1}/{steps_total}: {step.text}")


class GraphView:
    """A drawn graph: ``to_svg()``, ``to_png()``, and shown as SVG in a notebook."""

    def __init__(self, graph: Graph, frame: Frame, layout: Layout | None = None,
                 title: str = "") -> None:
        self.graph = graph
        self.frame = frame
        self.title = title
        self.labels = [_node_lines(graph, n, frame) for n in graph.nodes]
        self.layout = layout or layered_layout(graph, box=_box_size(self.labels))

    def _repr_svg_(self) -> str:
        return self.to_svg()

    def to_svg(self) -> str:
        """The picture as SVG text: real <text> elements, identical bytes for identical input."""
        figure = self._figure()
        buffer = io.StringIO()
        with matplotlib.rc_context({"svg.hashsalt": self._salt(), "svg.fonttype": "none"}):
            figure.savefig(buffer, format="svg", metadata={"Date": None})
        return buffer.getvalue()

    def to_png(self, dpi: int = 110) -> bytes:
        """The picture as PNG bytes."""
        buffer = io.BytesIO()
        self._figure().savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
        return buffer.getvalue()

    def save(self, path: str) -> None:
        data = self.to_png() if str(path).endswith(".png") else self.to_svg().encode()
        with open(path, "wb") as handle:
            handle.write(data)

    def _salt(self) -> str:
        """Element ids unique to this picture: many SVGs on one page must not share ids."""
        text = repr((self.labels, self.frame.active, self.frame.hot_edge, self.title))
        return "cad-" + hashlib.sha1(text.encode()).hexdigest()[:12]

    def _figure(self) -> Figure:
        layout, graph = self.layout, self.graph
        xmin, xmax, ymin, ymax = layout.extent
        pad = 0.35
        title_space = 0.45 if self.title else 0.0
        width = (xmax - xmin + 2 * pad) * INCH_PER_UNIT
        height = (ymax - ymin + 2 * pad + title_space) * INCH_PER_UNIT
        figure = Figure(figsize=(max(width, 2.0), max(height, 1.2)))
        ax = figure.add_axes((0, 0, 1, 1))
        ax.set_xlim(xmin - pad, xmax + pad)
        ax.set_ylim(ymin - pad, ymax + pad + title_space)
        ax.set_axis_off()
        if self.title:
            ax.text((xmin + xmax) / 2, ymax + pad / 2 + title_space / 2, self.title,
                    ha="center", va="center", fontsize=FONT + 2, weight="bold")
        boxes = {n.index: self._draw_node(ax, n) for n in graph.nodes}
        self._draw_edges(ax, boxes)
        return figure

    def _draw_node(self, ax, node) -> FancyBboxPatch:
        x, y = self.layout.positions[node.index]
        w, h = self.layout.box
        state = _state(node.index, self.frame)
        fill, ink = COLOURS[state]
        if node.is_input:
            edge, lw = INPUT_EDGE, 1.6
        elif node.index == self.graph.output:
            edge, lw = OUTPUT_EDGE, 2.0
        else:
            edge, lw = NODE_EDGE, 1.0
        box = FancyBboxPatch((x - w / 2, y - h / 2), w, h,
                             boxstyle="round,pad=0,rounding_size=0.12", facecolor=fill,
                             edgecolor=edge, linewidth=lw, zorder=3)
        ax.add_patch(box)
        ax.text(x, y, "\n".join(self.labels[node.index]), ha="center", va="center",
                fontsize=FONT, color=ink, zorder=4, linespacing=1.35, family="DejaVu Sans")
        return box

    def _draw_edges(self, ax, boxes) -> None:
        graph, layout = self.graph, self.layout
        seen: dict[tuple[int, int], int] = {}
        for edge, chain in zip(graph.edges, layout.chains):
            pair = (edge.source, edge.target)
            repeat = seen.get(pair, 0)
            seen[pair] = repeat + 1
            twice = sum(1 for e in graph.edges if (e.source, e.target) == pair) > 1
            hot = self.frame.hot_edge == (edge.source, edge.target, edge.argnum)
            colour, width = (HOT_EDGE, 2.4) if hot else (EDGE, 1.1)
            backwards = hot and self.frame.mode == "reverse"  # the adjoint flows back
            style = f"arc3,rad={0.28 if repeat == 0 else -0.28}" if twice else "arc3"
            for a, b in zip(chain[:-2], chain[1:-1]):  # bends of a long edge: plain segments
                ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-", color=colour, lw=width,
                                             shrinkA=0, shrinkB=0, zorder=1))
            start = chain[-2]
            patch_a = boxes[edge.source] if len(chain) == 2 else None
            arrow = FancyArrowPatch(start, chain[-1], patchA=patch_a, patchB=boxes[edge.target],
                                    arrowstyle="<|-" if backwards else "-|>", mutation_scale=11,
                                    color=colour, lw=width,
                                    connectionstyle=style, shrinkA=0 if patch_a is None else 1,
                                    shrinkB=1, zorder=2)
            ax.add_patch(arrow)
            target = graph.nodes[edge.target]
            op = target.rule.name if target.rule else target.op
            if op in NON_COMMUTATIVE:  # which argument is which matters here
                tx, ty = chain[-1]
                sx, sy = chain[-2]
                lx, ly = tx + (sx - tx) * 0.42, ty + (sy - ty) * 0.42
                ax.text(lx, ly, str(edge.argnum), fontsize=FONT - 1.5, ha="center",
                        va="center", color="#475569", zorder=5,
                        bbox={"boxstyle": "circle,pad=0.15", "fc": "white", "ec": "#cbd5e1",
                              "lw": 0.6})


def _state(index: int, frame: Frame) -> str:
    if frame.active == index:
        return "active"
    if frame.mode == "reverse" and index in frame.derivatives:
        return "adjoint"
    if index in frame.values:
        return "done"
    return "pending"


def _node_lines(graph: Graph, node, frame: Frame) -> list[str]:
    expression = graph.expression(node)
    head = node.name if node.is_input else f"{node.name} = {expression}"
    if len(head) > 22:
        head = f"{node.name} = {node.rule.symbol if node.rule else node.op}(…)"
    value = frame.values.get(node.index)
    lines = [head, "" if value is None else _compact(value)]
    if frame.mode == "forward":
        lines.append(f"{_dot(node)} = {_compact(frame.derivatives[node.index])}"
                     if node.index in frame.derivatives else "")
    elif frame.mode == "reverse":
        lines.append(f"{_bar(node)} = {_compact(frame.derivatives[node.index])}"
                     if node.index in frame.derivatives else "")
    return lines


def _compact(x: Any) -> str:
    if isinstance(x, np.ndarray) and x.ndim:
        return f"array{x.shape}"
    return _fmt(x)


def _box_size(labels: list[list[str]]) -> tuple[float, float]:
    widest = max(len(line) for lines in labels for line in lines)
    rows = max(len(lines) for lines in labels)
    return max(1.55, 0.088 * widest + 0.3), 0.2 + 0.19 * rows


def layout_for(graph: Graph, frames: list[Frame]) -> Layout:
    """One layout whose boxes fit every frame's labels, so nodes stay put while stepping."""
    labels = [_node_lines(graph, n, frame) for frame in frames for n in graph.nodes]
    return layered_layout(graph, box=_box_size(labels))


def draw(output: Any, mode: str | None = None, *, seed: Any = None, step: int | None = None,
         names: dict[str, Any] | None = None, title: str = "") -> GraphView:
    """Draw the graph of ``output``: values; with ``mode="forward"`` the tangents too, with
    ``mode="reverse"`` the adjoints. ``step`` shows the sweep after that many steps."""
    graph = output if isinstance(output, Graph) else trace(output, names)
    if mode is None:
        frame = Frame("values", {n.index: n.value for n in graph.nodes})
        return GraphView(graph, frame, title=title)
    if mode not in ("forward", "reverse"):
        raise ValueError(f"draw: mode must be None, 'forward' or 'reverse', got {mode!r}")
    steps = forward_sweep(graph, seed) if mode == "forward" else reverse_sweep(
        graph, 1.0 if seed is None else seed)
    index = len(steps) - 1 if step is None else step
    if not 0 <= index < len(steps):
        raise ValueError(f"draw: step {step} is out of range; this sweep has {len(steps)} steps")
    frame = Frame.from_step(mode, steps[index], len(steps), index)
    if step is None:
        frame.active, frame.hot_edge = None, None
    return GraphView(graph, frame, title=title)


def render_frame(graph: Graph, layout: Layout, frame: Frame) -> str:
    """SVG of one frame with a fixed layout (the explorer keeps nodes in place while stepping)."""
    return GraphView(graph, frame, layout=layout).to_svg()


def to_dot(output: Any, names: dict[str, Any] | None = None) -> str:
    """Graphviz DOT text of the graph (render it with ``dot -Tsvg`` if you have Graphviz)."""
    graph = output if isinstance(output, Graph) else trace(output, names)
    lines = ["digraph course_ad {", "  rankdir=LR;",
             '  node [shape=box, style="rounded", fontname="DejaVu Sans", fontsize=10];']
    for n in graph.nodes:
        label = (n.name if n.is_input else f"{n.name} = {graph.expression(n)}")
        label += f"\\n{_compact(n.value)}"
        extra = ', color="#2b6cb0", penwidth=1.6' if n.is_input else ""
        if n.index == graph.output:
            extra = ", penwidth=2"
        lines.append(f'  n{n.index} [label="{_escape(label)}"{extra}];')
    for e in graph.edges:
        lines.append(f'  n{e.source} -> n{e.target} [label="{e.argnum}", fontsize=8];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\\\\n", "\\n")


# --------------------------------------------------------------------------------------
# Lecture plots
# --------------------------------------------------------------------------------------


def plot_step_size_error(study, ax=None):
    """log-log error of difference quotients against h: truncation falls with h, round-off
    rises as h shrinks; their sum has a minimum (near √ε forward, ∛ε central)."""
    if ax is None:
        figure = Figure(figsize=(6.4, 4.2), layout="constrained")
        ax = figure.add_subplot()
    styles = {"forward": ("o-", "forward difference"), "backward": ("v-", "backward difference"),
              "central": ("s-", "central difference"), "complex": ("^-", "complex step")}
    floor = 1e-17  # exact zeros cannot be drawn on a log axis
    for method, errors in study.errors.items():
        marker, label = styles.get(method, ("-", method))
        ax.loglog(study.h, np.maximum(errors, floor), marker, ms=3.5, lw=1.2, label=label)
    eps = np.finfo(float).eps
    scale = abs(study.exact) or 1.0
    ax.loglog(study.h, 0.5 * study.h * scale, "k--", lw=0.8, alpha=0.5, label="slope +1 (O(h))")
    ax.loglog(study.h, eps / study.h * scale, "k:", lw=0.9, alpha=0.6, label="slope −1 (ε/h)")
    ax.axvline(np.sqrt(eps), color="#999", lw=0.8)
    ax.text(np.sqrt(eps) * 1.3, 1e-15, "√ε", color="#666", fontsize=9)
    ax.set(xlabel="step h", ylabel="absolute error", ylim=(floor / 3, 10),
           title="Error of difference quotients against step size")
    ax.invert_xaxis()
    ax.grid(alpha=0.25, which="both")
    ax.legend(fontsize=8, loc="lower left")
    return ax.figure


def plot_expression_swell(max_factors: int = 8, ax=None):
    """Size of the symbolic derivative of x·sin(x)·exp(x)·… (n factors) against n, next to
    the cost of AD, which grows like the function itself."""
    from . import symbolic as sym

    factors = [lambda e: ("sin", e), lambda e: ("exp", e), lambda e: ("cos", e),
               lambda e: ("log", ("add", e, sym.const(2)))]
    x = sym.var("x")
    n_values, f_sizes, raw, simplified = [], [], [], []
    for n in range(1, max_factors + 1):
        f = x
        for k in range(1, n):
            f = ("mul", f, factors[(k - 1) % len(factors)](x))
        d = sym.diff(f)
        n_values.append(n)
        f_sizes.append(sym.size(f))
        raw.append(sym.size(d))
        simplified.append(sym.size(sym.simplify(d)))
    if ax is None:
        figure = Figure(figsize=(6.4, 4.0), layout="constrained")
        ax = figure.add_subplot()
    ax.plot(n_values, raw, "o-", label="symbolic derivative, as produced")
    ax.plot(n_values, simplified, "s-", label="symbolic derivative, constants folded")
    ax.plot(n_values, [3 * s for s in f_sizes], "^-", label="AD: ≤ 3 × the function's size")
    ax.plot(n_values, f_sizes, "k--", lw=0.9, label="the function itself")
    ax.set(xlabel="number of factors n in x·sin x·eˣ·cos x·…", ylabel="expression size (nodes)",
           title="Expression swell: symbolic derivatives grow faster than the function")
    ax.grid(alpha=0.25)
    ax.legend(fontsize=8)
    return ax.figure
