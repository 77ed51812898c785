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
from matplotlib.font_manager import FontProperties
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.textpath import TextToPath

from .graph import Graph, Step, _bar, _dot, _fmt, forward_sweep, reverse_sweep, trace
from .layout import Layout, layered_layout

__all__ = ["draw", "GraphView", "to_dot", "plot_step_size_error", "plot_expression_swell",
           "render_frame", "layout_for", "Frame"]

COLOURS = {
    "pending": ("#ffffff", "#6b7280"),  # fill, text
    "done": ("#e7f4ea", "#1f2328"),
    "adjoint": ("#efe7fb", "#1f2328"),
    "active": ("#ffd166", "#1f2328"),
}
INPUT_EDGE, OUTPUT_EDGE, NODE_EDGE = "#2b6cb0", "#1f2328", "#6b7280"
HOT_EDGE, EDGE, FLOW_INK = "#e8590c", "#7b8794", "#9a3412"
FONT = 11.0  # points: readable at 100 % zoom, in nodes, edge labels and the legend alike
FAMILY = "DejaVu Sans"
INCH_PER_UNIT = 0.8
MAX_WIDTH = 10.5  # inches (about 1000 px): wider left-to-right graphs are drawn top-down
PAD = 0.35  # data units around the drawing

# what each colour means, per kind of picture (the legend under every graph)
LEGEND = {
    "values": [("done", "value computed"), ("input", "input"), ("output", "output")],
    "forward": [("pending", "not reached yet"), ("done", "value and tangent known"),
                ("active", "this step"), ("input", "input"), ("output", "output")],
    "reverse": [("pending", "not reached yet"), ("done", "value stored"),
                ("adjoint", "adjoint known"), ("active", "this step"), ("input", "input"),
                ("output", "output")],
}
FLOW_NOTE = {
    "forward": "number on an edge vⱼ → vᵢ: its term ∂vᵢ/∂vⱼ · v̇ⱼ of v̇ᵢ",
    "reverse": "number on an edge vⱼ → vᵢ: its term v̄ᵢ · ∂vᵢ/∂vⱼ of v̄ⱼ",
}


@dataclass
class Frame:
    """What one picture shows: which values and derivatives are known, what is active."""

    mode: str  # "values", "forward" or "reverse"
    values: dict[int, Any] = field(default_factory=dict)
    derivatives: dict[int, Any] = field(default_factory=dict)
    active: int | None = None
    hot_edge: tuple[int, int, int] | None = None  # reverse: the edge the adjoint flows back on
    caption: str = ""
    flows: dict[tuple[int, int, int], Any] = field(default_factory=dict)  # edge -> its term
    hot_edges: tuple[tuple[int, int, int], ...] = ()  # forward: the edges into the active node

    @classmethod
    def from_step(cls, mode: str, step: Step, steps_total: int, index: int) -> Frame:
        hot, incoming = None, ()
        if step.kind == "adjoint" and step.source is not None:
            hot = (step.node, step.source, step.argnum)
        elif step.kind == "tangent":
            incoming = tuple(edge for edge in step.flows if edge[1] == step.node)
        return cls(mode, dict(step.values), dict(step.derivatives), step.node, hot,
                   f"step {index + 1}/{steps_total}: {step.text}", dict(step.flows), incoming)


class GraphView:
    """A drawn graph: ``to_svg()``, ``to_png()``, and shown as SVG in a notebook.

    Nodes show name, value and tangent or adjoint, coloured by what the sweep knows (the
    legend says which colour is which); edges show what they carry in a sweep."""

    def __init__(self, graph: Graph, frame: Frame, layout: Layout | None = None,
                 title: str = "", legend: bool = True, direction: str | None = None) -> None:
        self.graph = graph
        self.frame = frame
        self.title = title
        self.legend = legend
        self.labels = [_node_lines(graph, n, frame) for n in graph.nodes]
        self.layout = layout or _fitting_layout(graph, self.labels, direction)

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

    @property
    def size(self) -> tuple[float, float]:
        """Width and height of the picture in inches (at 100 % zoom, 96 px per inch)."""
        return self._geometry()[0]

    def _salt(self) -> str:
        """Element ids unique to this picture: many SVGs on one page must not share ids."""
        text = repr((self.labels, self.frame.active, self.frame.hot_edge, self.title))
        return "cad-" + hashlib.sha1(text.encode()).hexdigest()[:12]

    def _legend_entries(self) -> list[tuple[str, str]]:
        if not self.legend:
            return []
        shown = {_state(n.index, self.frame) for n in self.graph.nodes} | {"input", "output"}
        entries = [e for e in LEGEND.get(self.frame.mode, LEGEND["values"]) if e[0] in shown]
        if self.frame.mode in FLOW_NOTE and self.frame.flows:
            entries.append(("flow", FLOW_NOTE[self.frame.mode]))
        return entries

    def _geometry(self):
        """Figure size, the drawing's extent, and the legend's rows (in data units)."""
        xmin, xmax, ymin, ymax = self.layout.extent
        title_space = 0.5 if self.title else 0.0
        width = max((xmax - xmin + 2 * PAD) * INCH_PER_UNIT, 2.0)
        rows = _legend_rows(self._legend_entries(), width / INCH_PER_UNIT - 2 * PAD)
        if rows:  # the legend may be wider than a small graph: widen the picture to fit it
            width = max(width, (max(r[-1][0] + r[-1][2] for r in rows) + 2 * PAD) * INCH_PER_UNIT)
        legend_space = LEGEND_ROW * len(rows) + (0.15 if rows else 0.0)
        height = (ymax - ymin + 2 * PAD + title_space + legend_space) * INCH_PER_UNIT
        return (width, max(height, 1.2)), title_space, legend_space, rows

    def _figure(self) -> Figure:
        layout, graph = self.layout, self.graph
        xmin, xmax, ymin, ymax = layout.extent
        (width, height), title_space, legend_space, rows = self._geometry()
        figure = Figure(figsize=(width, height))
        ax = figure.add_axes((0, 0, 1, 1))
        centre = (xmin + xmax) / 2
        half = width / INCH_PER_UNIT / 2
        bottom = ymin - PAD - legend_space
        ax.set_xlim(centre - half, centre + half)
        ax.set_ylim(bottom, bottom + height / INCH_PER_UNIT)
        ax.set_axis_off()
        if self.title:
            ax.text(centre, ymax + PAD / 2 + title_space / 2, self.title,
                    ha="center", va="center", fontsize=FONT + 1.5, weight="bold", family=FAMILY)
        boxes = {n.index: self._draw_node(ax, n) for n in graph.nodes}
        self._draw_edges(ax, boxes)
        self._draw_legend(ax, rows, centre - half + PAD, ymin - PAD)
        return figure

    def _draw_node(self, ax, node) -> FancyBboxPatch:
        x, y = self.layout.positions[node.index]
        w, h = self.layout.size_of(node.index)
        fill, ink = COLOURS[_state(node.index, self.frame)]
        edge, lw = _border(node, self.graph)
        box = FancyBboxPatch((x - w / 2, y - h / 2), w, h,
                             boxstyle="round,pad=0,rounding_size=0.12", facecolor=fill,
                             edgecolor=edge, linewidth=lw, zorder=3)
        ax.add_patch(box)
        ax.text(x, y, "\n".join(self.labels[node.index]), ha="center", va="center",
                fontsize=FONT, color=ink, zorder=4, linespacing=LINE_SPACING, family=FAMILY)
        return box

    def _draw_edges(self, ax, boxes) -> None:
        graph, layout, frame = self.graph, self.layout, self.frame
        seen: dict[tuple[int, int], int] = {}
        for edge, chain in zip(graph.edges, layout.chains):
            pair = (edge.source, edge.target)
            repeat = seen.get(pair, 0)
            seen[pair] = repeat + 1
            twice = sum(1 for e in graph.edges if (e.source, e.target) == pair) > 1
            key = (edge.source, edge.target, edge.argnum)
            hot = frame.hot_edge == key or key in frame.hot_edges
            colour, width = (HOT_EDGE, 2.4) if hot else (EDGE, 1.1)
            backwards = hot and frame.mode == "reverse"  # the adjoint flows back
            rad = (0.28 if repeat == 0 else -0.28) if twice else 0.0
            for a, b in zip(chain[:-2], chain[1:-1]):  # bends of a long edge: plain segments
                ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-", color=colour, lw=width,
                                             shrinkA=0, shrinkB=0, zorder=1))
            start = chain[-2]
            patch_a = boxes[edge.source] if len(chain) == 2 else None
            arrow = FancyArrowPatch(start, chain[-1], patchA=patch_a, patchB=boxes[edge.target],
                                    arrowstyle="<|-" if backwards else "-|>", mutation_scale=12,
                                    color=colour, lw=width, connectionstyle=f"arc3,rad={rad}",
                                    shrinkA=0 if patch_a is None else 1, shrinkB=1, zorder=2)
            ax.add_patch(arrow)
            if key in frame.flows:  # what this edge carried: a term of the sum at its end
                (sx, sy), (tx, ty) = start, chain[-1]
                t = self._gap_middle(edge, len(chain) == 2, sx, tx)
                # the middle of the gap on the arc (a quadratic Bézier: mid + rad/2 · normal)
                lx = sx + t * (tx - sx) + rad / 2 * (ty - sy)
                ly = sy + t * (ty - sy) - rad / 2 * (tx - sx)
                ax.text(lx, ly, _fmt(frame.flows[key]), fontsize=FONT, ha="center",
                        va="center", color=HOT_EDGE if hot else FLOW_INK, zorder=5,
                        family=FAMILY, weight="bold" if hot else "normal",
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white",
                              "ec": HOT_EDGE if hot else "#e5e7eb", "lw": 0.6})

    def _gap_middle(self, edge, from_node: bool, sx: float, tx: float) -> float:
        """Where along the last segment the space between the two boxes is centred (left to
        right, boxes of different widths shift it; top-down it is the middle)."""
        if self.layout.direction != "right" or tx == sx:
            return 0.5
        start = self.layout.size_of(edge.source)[0] / 2 if from_node else 0.0
        end = self.layout.size_of(edge.target)[0] / 2
        return (start + (tx - sx) - end) / 2 / (tx - sx)

    def _draw_legend(self, ax, rows, left, top) -> None:
        unit = FONT / 72 / INCH_PER_UNIT  # one em in data units
        for r, row in enumerate(rows):
            y = top - LEGEND_ROW * (r + 0.5) - 0.1
            for x, (kind, text), _width in row:
                x = left + x
                if kind == "flow":
                    ax.text(x, y, "1.00", fontsize=FONT, ha="left", va="center", color=FLOW_INK,
                            family=FAMILY, bbox={"boxstyle": "round,pad=0.15", "fc": "white",
                                                 "ec": "#e5e7eb", "lw": 0.6})
                    ax.text(x + SWATCH + 1.6 * unit, y, text, fontsize=FONT, ha="left",
                            va="center", color="#374151", family=FAMILY)
                    continue
                fill, edge, lw = _swatch(kind)
                ax.add_patch(FancyBboxPatch((x, y - SWATCH / 2), SWATCH, SWATCH,
                                            boxstyle="round,pad=0,rounding_size=0.06",
                                            facecolor=fill, edgecolor=edge, linewidth=lw,
                                            zorder=3))
                ax.text(x + SWATCH + 0.5 * unit, y, text, fontsize=FONT, ha="left",
                        va="center", color="#374151", family=FAMILY)


LINE_SPACING = 1.35
LEGEND_ROW = 0.42  # data units per legend row
SWATCH = 0.26  # data units


def _border(node, graph: Graph) -> tuple[str, float]:
    if node.is_input:
        return INPUT_EDGE, 1.8
    if node.index == graph.output:
        return OUTPUT_EDGE, 2.4
    return NODE_EDGE, 1.0


def _swatch(kind: str) -> tuple[str, str, float]:
    """Fill, border colour and border width of a legend swatch."""
    if kind == "input":
        return "#ffffff", INPUT_EDGE, 1.8
    if kind == "output":
        return "#ffffff", OUTPUT_EDGE, 2.4
    return COLOURS[kind][0], NODE_EDGE, 1.0


def _legend_rows(entries, available: float):
    """Place legend entries left to right, wrapping at ``available`` data units.

    Each row is a list of (x offset, entry, width)."""
    unit = FONT / 72 / INCH_PER_UNIT
    rows: list[list] = []
    x = 0.0
    for kind, text in entries:
        label = "1.00" if kind == "flow" else ""
        width = SWATCH + (1.6 if label else 0.5) * unit + text_width(text + label)
        if rows and x + width <= max(available, width) and rows[-1]:
            rows[-1].append((x, (kind, text), width))
        else:
            rows.append([(0.0, (kind, text), width)])
            x = 0.0
        x = rows[-1][-1][0] + width + 1.4 * unit
    return rows


_TEXT_PATH = TextToPath()
_FONT_PROPERTIES = FontProperties(family=FAMILY, size=FONT)


def text_width(text: str) -> float:
    """Width of one line of text at FONT points, in data units (measured, not guessed)."""
    width, _, _ = _TEXT_PATH.get_text_width_height_descent(text, _FONT_PROPERTIES, ismath=False)
    return width / 72 / INCH_PER_UNIT


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
    if len(head) > 24:
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
    """A number, a short vector in full (up to 3 entries), else the shape of the array."""
    if isinstance(x, np.ndarray) and x.ndim:
        if x.ndim > 1 or x.size > 3:
            return f"array{x.shape}"
        return "[" + ", ".join(_fmt(v) for v in x) + "]"
    return _fmt(x)


def _line_height() -> float:
    return FONT * LINE_SPACING / 72 / INCH_PER_UNIT


def _box_size(labels: list[list[str]]) -> tuple[float, float]:
    """A box that fits the widest line and the most lines, measured at FONT points."""
    widest = max(text_width(line) for lines in labels for line in lines)
    rows = max(len(lines) for lines in labels)
    return max(1.3, widest + 0.24), 0.2 + _line_height() * rows


def _widths(graph: Graph, labels: list[list[str]]) -> dict[int, float]:
    """Each node's own width: its widest line in any of the frames given (labels per node,
    frame after frame), so the boxes stay put while the explorer steps."""
    widths: dict[int, float] = {}
    for position, lines in enumerate(labels):
        index = graph.nodes[position % len(graph.nodes)].index
        width = max(1.1, max(text_width(line) for line in lines) + 0.24)
        widths[index] = max(widths.get(index, 0.0), width)
    return widths


def _gap(labels: list[list[str]]) -> tuple[float, float]:
    """Room between boxes for a number on an edge (the widest value or derivative)."""
    number = max((text_width(line.split(" = ")[-1]) for lines in labels for line in lines[1:]
                  if line and "[" not in line), default=0.6)
    return max(0.9, number + 0.28), 0.5


def _fitting_layout(graph: Graph, labels: list[list[str]], direction: str | None) -> Layout:
    """Left to right when that fits MAX_WIDTH inches, else top-down (or as asked)."""
    if direction not in (None, "right", "down"):
        raise ValueError(f"draw: direction must be None, 'right' or 'down', got {direction!r}")
    box, gap, widths = _box_size(labels), _gap(labels), _widths(graph, labels)
    layout = layered_layout(graph, box=box, gap=gap, direction=direction or "right",
                            widths=widths)
    xmin, xmax, _, _ = layout.extent
    if direction is None and (xmax - xmin + 2 * PAD) * INCH_PER_UNIT > MAX_WIDTH:
        layout = layered_layout(graph, box=box, gap=gap, direction="down", widths=widths)
    return layout


def layout_for(graph: Graph, frames: list[Frame], direction: str | None = None) -> Layout:
    """One layout whose boxes fit every frame's labels, so nodes stay put while stepping."""
    labels = [_node_lines(graph, n, frame) for frame in frames for n in graph.nodes]
    return _fitting_layout(graph, labels, direction)


def draw(output: Any, mode: str | None = None, *, seed: Any = None, step: int | None = None,
         names: dict[str, Any] | None = None, title: str = "", legend: bool = True,
         direction: str | None = None) -> GraphView:
    """Draw the graph of ``output``: values; with ``mode="forward"`` the tangents too (and on
    each edge its term of the tangent sum), with ``mode="reverse"`` the adjoints (and on each
    edge its term of the adjoint sum). ``step`` shows the sweep after that many steps.

    ``direction`` is "right" or "down"; by default left to right unless the picture would be
    wider than about 1000 px, then top-down, so the text keeps its size (11 pt) on screen."""
    graph = output if isinstance(output, Graph) else trace(output, names)
    if mode is None:
        frame = Frame("values", {n.index: n.value for n in graph.nodes})
        return GraphView(graph, frame, title=title, legend=legend, direction=direction)
    if mode not in ("forward", "reverse"):
        raise ValueError(f"draw: mode must be None, 'forward' or 'reverse', got {mode!r}")
    steps = forward_sweep(graph, seed) if mode == "forward" else reverse_sweep(
        graph, 1.0 if seed is None else seed)
    index = len(steps) - 1 if step is None else step
    if not 0 <= index < len(steps):
        raise ValueError(f"draw: step {step} is out of range; this sweep has {len(steps)} steps")
    frame = Frame.from_step(mode, steps[index], len(steps), index)
    if step is None:
        frame.active, frame.hot_edge, frame.hot_edges = None, None, ()
    return GraphView(graph, frame, title=title, legend=legend, direction=direction)


def render_frame(graph: Graph, layout: Layout, frame: Frame) -> str:
    """SVG of one frame with a fixed layout (the explorer keeps nodes in place while stepping)."""
    return GraphView(graph, frame, layout=layout).to_svg()


def to_dot(output: Any, names: dict[str, Any] | None = None) -> str:
    """Graphviz DOT text of the graph (render it with ``dot -Tsvg`` if you have Graphviz)."""
    graph = output if isinstance(output, Graph) else trace(output, names)
    lines = ["digraph course_ad {", "  rankdir=LR;",
             '  node [shape=box, style="rounded", fontname="DejaVu Sans", fontsize=11];']
    for n in graph.nodes:
        label = (n.name if n.is_input else f"{n.name} = {graph.expression(n)}")
        label += f"\\n{_compact(n.value)}"
        extra = ', color="#2b6cb0", penwidth=1.6' if n.is_input else ""
        if n.index == graph.output:
            extra = ", penwidth=2"
        lines.append(f'  n{n.index} [label="{_escape(label)}"{extra}];')
    for e in graph.edges:
        lines.append(f"  n{e.source} -> n{e.target};")
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
    ax.text(np.sqrt(eps) * 1.3, 1e-15, "√ε", color="#666", fontsize=11)
    ax.set(xlabel="step h", ylabel="absolute error", ylim=(floor / 3, 10),
           title="Error of difference quotients against step size")
    ax.invert_xaxis()
    ax.grid(alpha=0.25, which="both")
    ax.legend(fontsize=10, loc="lower left")
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
    ax.legend(fontsize=10)
    return ax.figure
