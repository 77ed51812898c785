"""Graphs, evaluation traces, the layered layout and the pictures."""

import re

import numpy as np
import pytest
from examples import seed002 as seed002_function

import course_ad as ad
from course_ad import ReverseDiff, cost, symbolic, viz
from course_ad.graph import forward_sweep, reverse_sweep, trace, trace_table
from course_ad.layout import layered_layout
from course_ad.numerical import error_versus_step


def seed002():
    return seed002_function(ReverseDiff(1.5), ReverseDiff(0.5))


def baydin():
    """Baydin et al.'s order: v1 = ln v-1, v2 = v-1 v0, v3 = sin v0, v4 = v1 + v2, v5 = v4 - v3."""
    x1, x2 = ReverseDiff(2.0), ReverseDiff(5.0)
    v1 = ad.log(x1)
    v2 = x1 * x2
    v3 = ad.sin(x2)
    return (v1 + v2) - v3


def test_trace_numbers_nodes_as_griewank_does():
    graph = trace(seed002())
    assert [n.name for n in graph.nodes] == ["v₋₁", "v₀", "v₁", "v₂", "v₃", "v₄", "v₅", "v₆"]
    assert graph.expression(graph.nodes[2]) == "v₋₁ / v₀"
    assert graph.expression(graph.nodes[3]) == "sin(v₁)"
    assert [(e.source, e.target, e.argnum) for e in graph.edges if e.target == 2] == [
        (0, 2, 0), (1, 2, 1)]
    assert graph.output == 7


def test_seed002_forward_table_at_the_printed_precision():
    table = trace_table(seed002(), "forward")
    amounts = [row["amount"] for row in table.rows]
    printed = [1.0, 0.0, 2.0, -1.98, 0.0, 2.0, 0.02, 3.0118]  # seed 002's tangent column
    digits = [1, 1, 1, 2, 1, 1, 2, 4]
    assert [round(a, d) for a, d in zip(amounts, digits)] == printed
    assert "v₁ = v₋₁ / v₀ = 3.0000,  v̇₁ = 2.0000·v̇₋₁ − 6.0000·v̇₀ = 2.0000" in repr(table)
    assert "v₂ = sin(v₁) = 0.1411" in repr(table) and "v₃ = exp(v₀) = 1.6487" in repr(table)


def test_seed002_reverse_table_shows_every_adjoint_update():
    table = trace_table(seed002(), "reverse")
    updates = [r for r in table.rows if r["kind"] == "adjoint"]
    assert len(updates) == 10  # one per edge
    text = repr(table)
    assert "v̄₆ = 1.0000" in text
    assert "v̄₄ += v̄₅ · 1.0000 = 1.3513  (now 2.8437)" in text  # fan-out: v4 feeds v5 and v6
    assert "v̄₋₁ += v̄₁ · 2.0000 = 3.0118" in text
    assert text.strip().endswith("(now -13.7240)")


def test_baydin_tables_in_both_modes():
    forward = trace_table(baydin(), "forward")
    assert [round(r["amount"], 4) for r in forward.rows] == [1.0, 0.0, 0.5, 5.0, 0.0, 5.5, 5.5]
    reverse = repr(trace_table(baydin(), "reverse"))
    for line in ["v₁ = log(v₋₁) = 0.6931", "v₃ = sin(v₀) = -0.9589", "v₅ = v₄ − v₃ = 11.6521",
                 "v̄₀ += v̄₃ · 0.2837 = -0.2837", "v̄₀ += v̄₂ · 2.0000 = 2.0000  (now 1.7163)",
                 "v̄₋₁ += v̄₁ · 0.5000 = 0.5000  (now 5.5000)"]:
        assert line in reverse, line


def test_trace_tables_render_html_with_an_active_row():
    table = trace_table(seed002(), "reverse")
    page = table.to_html(active=9)
    assert page.count("<tr class=") == 19
    assert page.count("cad-active") == 2  # the CSS rule and the row
    assert "v̄₅ += v̄₆ · 1.3513" in page


def test_a_students_own_node_class_can_be_traced_and_tabled():
    class Node:  # the lecture notes' shape: constants become parent nodes
        def __init__(self, value, parents=(), op=""):
            self.value, self.parents, self.op = value, parents, op

        def __add__(self, other):
            other = other if isinstance(other, Node) else Node(other)
            return Node(self.value + other.value, (self, other), "+")

        def __mul__(self, other):
            other = other if isinstance(other, Node) else Node(other)
            return Node(self.value * other.value, (self, other), "*")

    x, y = Node(2.0), Node(3.0)
    f = x * y + x
    graph = trace(f, names={"x": x, "y": y, "f": f})
    assert [n.name for n in graph.nodes] == ["x", "y", "v₁", "f"]
    steps = forward_sweep(graph, seed={"x": 1.0})
    assert steps[-1].amount == 4.0  # ∂(xy + x)/∂x = y + 1
    adjoints = reverse_sweep(graph)[-1].derivatives
    assert adjoints[0] == 4.0 and adjoints[1] == 2.0


def test_tables_go_through_variadic_rules():
    """stack takes any number of inputs: its tangent and adjoints come from the same rule."""
    x, y = ReverseDiff(1.0), ReverseDiff(2.0)
    out = ad.sum(ad.stack([x * y, ad.sin(x)]))
    forward = trace_table(out, "forward")
    assert forward.rows[-1]["amount"] == pytest.approx(2.0 + np.cos(1.0))  # ∂/∂x of xy + sin x
    assert "stack(v₁, v₂, axis=0)" in repr(forward) and "keepdims=False" in repr(forward)
    adjoints = reverse_sweep(trace(out))[-1].derivatives
    assert adjoints[0] == pytest.approx(2.0 + np.cos(1.0)) and adjoints[1] == pytest.approx(1.0)


def test_trace_refuses_what_is_not_a_node():
    with pytest.raises(TypeError, match="needs an object with value, parents and op"):
        trace(3.0)


def random_trace(rng, n_ops):
    nodes = [ReverseDiff(float(v)) for v in rng.uniform(0.5, 1.5, 3)]
    for _ in range(n_ops):
        a, b = (nodes[int(i)] for i in rng.integers(max(0, len(nodes) - 6), len(nodes), 2))
        op = rng.integers(3)
        nodes.append(a * b if op == 0 else a + b if op == 1 else ad.sin(a))
    return ad.sum(ad.stack(nodes[-3:]))


@pytest.mark.parametrize("seed", range(8))
def test_layout_invariants(seed):
    """Edges run left to right, boxes never overlap, long edges bend through their columns."""
    rng = np.random.default_rng(seed)
    graph = trace(random_trace(rng, int(rng.integers(8, 30))))
    layout = layered_layout(graph)
    w, h = layout.box
    points = list(layout.positions.values())
    for i, (x1, y1) in enumerate(points):
        for x2, y2 in points[i + 1:]:
            assert abs(x1 - x2) >= w or abs(y1 - y2) >= h, "boxes overlap"
    for edge, chain in zip(graph.edges, layout.chains):
        assert chain[0] == layout.positions[edge.source]
        assert chain[-1] == layout.positions[edge.target]
        xs = [p[0] for p in chain]
        assert all(b > a for a, b in zip(xs, xs[1:])), "an edge runs backwards"
        assert len(chain) - 1 == layout.column_of[edge.target] - layout.column_of[edge.source]
    assert layout.crossings <= len(graph.edges)


def test_the_lecture_graphs_are_drawn_without_crossings():
    assert layered_layout(trace(seed002())).crossings == 0
    assert layered_layout(trace(baydin())).crossings == 0


def test_the_same_graph_gives_the_same_svg_bytes():
    first = viz.draw(seed002(), "reverse", step=12).to_svg()
    second = viz.draw(seed002(), "reverse", step=12).to_svg()
    assert first == second
    other = viz.draw(seed002(), "reverse", step=13).to_svg()
    clip_ids = [re.findall(r'clipPath id="(\w+)"', svg) for svg in (first, other)]
    assert other != first and clip_ids[0] and clip_ids[0] != clip_ids[1]  # ids unique per picture


def test_pictures_show_values_and_derivatives():
    svg = viz.draw(seed002(), "forward").to_svg()
    assert svg.startswith("<?xml") and "<text" in svg
    assert "v̇₆ = 3.0118" in svg and "v₁ = v₋₁ / v₀" in svg and "2.0166" in svg
    svg = viz.draw(seed002(), "reverse").to_svg()
    assert "v̄₋₁ = 3.0118" in svg and "v̄₀ = -13.7240" in svg
    png = viz.draw(baydin()).to_png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert viz.draw(baydin())._repr_svg_().count("<text") >= 7


def test_x_times_x_is_drawn_as_two_edges():
    x = ReverseDiff(3.0)
    graph = trace(x * x)
    assert [(e.source, e.target, e.argnum) for e in graph.edges] == [(0, 1, 0), (0, 1, 1)]
    from matplotlib.patches import FancyArrowPatch

    figure = viz.draw(x * x)._figure()
    arrows = [p for p in figure.axes[0].patches if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == 2  # two arcs, not one edge drawn twice on top of itself
    assert {a.get_connectionstyle().rad for a in arrows} == {0.28, -0.28}


def test_to_dot_is_graphviz_text():
    dot = viz.to_dot(seed002())
    assert dot.startswith("digraph course_ad {") and dot.rstrip().endswith("}")
    assert dot.count(" -> ") == 10
    assert 'n2 [label="v₁ = v₋₁ / v₀\\n3.0000"];' in dot


def test_draw_rejects_a_bad_mode_and_step():
    with pytest.raises(ValueError, match="mode must be None, 'forward' or 'reverse'"):
        viz.draw(seed002(), "sideways")
    with pytest.raises(ValueError, match="step 99 is out of range; this sweep has 8 steps"):
        viz.draw(seed002(), "forward", step=99)


def test_lecture_plots():
    figure = viz.plot_step_size_error(error_versus_step(np.sin, 1.0, np.cos(1.0)))
    ax = figure.axes[0]
    assert ax.get_xscale() == "log" and len(ax.get_lines()) >= 5
    figure = viz.plot_expression_swell(6)
    raw = figure.axes[0].get_lines()[0].get_ydata()
    function = figure.axes[0].get_lines()[3].get_ydata()
    assert raw[-1] / function[-1] > 3  # the derivative outgrows the function


def test_symbolic_derivatives_are_right_and_swell():
    x = symbolic.var("x")
    f = ("mul", ("mul", x, ("sin", x)), ("exp", x))
    d = symbolic.diff(f)
    at = {"x": 0.7}
    exact = np.sin(0.7) * np.exp(0.7) + 0.7 * np.cos(0.7) * np.exp(0.7) + 0.7 * np.sin(
        0.7) * np.exp(0.7)
    assert symbolic.evaluate(d, at) == pytest.approx(exact)
    assert symbolic.evaluate(symbolic.simplify(d), at) == pytest.approx(exact)
    assert symbolic.size(d) > 2 * symbolic.size(f)
    assert symbolic.to_text(("add", x, symbolic.const(2))) == "(x + 2)"


def test_chain_costs_and_the_best_bracketing():
    sizes = [10, 100, 5, 50]  # J1 is 100×10, J2 5×100, J3 50×5
    assert cost.forward_cost(sizes) == 5 * 100 * 10 + 50 * 5 * 10
    assert cost.reverse_cost(sizes) == 50 * 5 * 100 + 50 * 100 * 10
    best = cost.best_bracketing(sizes)
    assert best.cost == 7500 and best.text == "J3 (J2 J1)"
    assert cost.best_bracketing([1000, 10, 10, 1]).text == "(J3 J2) J1"  # reverse wins
    times = cost.time_jacobians([4, 3, 2], budget=0.02)
    assert set(times) == {"jacfwd", "jacrev"} and all(t > 0 for t in times.values())
    with pytest.raises(ValueError, match="at least an input and an output width"):
        cost.forward_cost([3])
