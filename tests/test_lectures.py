"""The lecture notebooks teach what the library computes, in words a student can follow.

Each test names the lesson it guards. The notebooks' printed numbers are also stored in the
cells marked ``# NBVAL_CHECK_OUTPUT``, which nbval re-executes and compares in ``make test``.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from examples import seed002

import course_ad as ad
from course_ad import ReverseDiff, cost, numerical, viz
from course_ad.graph import trace
from course_ad.widgets import CostExplorer, ModeExplorer

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def cells(name):
    return json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]


def text_of(name):
    return "\n".join("".join(c["source"]) for c in cells(name))


def printed(name):
    """What the checked cells print, as stored in the notebook (nbval compares it)."""
    return "\n".join("".join(o.get("text", "")) for c in cells(name) if c["cell_type"] == "code"
                     and "NBVAL_CHECK_OUTPUT" in "".join(c["source"]) for o in c["outputs"])


# ---- numerical, symbolic, automatic ------------------------------------------------------


@pytest.mark.parametrize("method, expected", [("forward", 1001), ("backward", 1001),
                                              ("central", 2000), ("complex", 1000)])
def test_a_gradient_costs_n_plus_one_evaluations(method, expected):
    calls = []

    def f(v):
        calls.append(1)
        return np.sum(v**2)

    x = np.linspace(-1, 1, 1000)
    gradient = numerical.numerical_gradient(f, x, method=method)
    assert len(calls) == expected
    assert np.allclose(gradient, 2 * x, atol=1e-4)
    assert "1001 evaluations" in printed("numerical_symbolic_automatic")


def test_one_sided_gradients_of_vector_functions_keep_their_shape():
    def f(v):
        return np.array([v[0] * v[1], np.sin(v[0])])

    x = np.array([1.0, 2.0])
    exact = np.array([[2.0, 1.0], [np.cos(1.0), 0.0]])
    for method in ("forward", "backward"):
        assert np.allclose(numerical.numerical_gradient(f, x, method=method), exact, atol=1e-5)


def test_the_notes_sum_of_squares_cancels_totally():
    """Σ xᵢ², xᵢ = i, n = 1000: at h = √ε the quotient is 0.0 (not a wrong sign)."""
    x = np.arange(1.0, 1001.0)
    e1 = np.zeros(1000)
    e1[0] = 1.0

    def quotient(h):
        return (np.sum((x + h * e1) ** 2) - np.sum(x**2)) / h

    h = np.sqrt(np.finfo(float).eps)
    assert quotient(h) == 0.0
    assert round(quotient(1e-7), 2) == 1.79
    assert round(quotient(1e-4), 4) == 2.0003
    gradient = numerical.numerical_gradient(lambda v: np.sum(v**2), x, h=h, method="forward")
    assert np.all(gradient % 4 == 0)  # multiples of the spacing 2⁻²⁴ over h: never 2
    assert round(1 / 3 * 1000**3 * 1e-8, 1) == 3.3  # the notes' estimate, redone
    out = printed("numerical_symbolic_automatic")
    for line in ["h =   √ε: forward difference 0.0000", "h = 1e-7: forward difference 1.7881",
                 "h = 1e-4: forward difference 2.0003", "∂f/∂x₁ = 2.0", "... 2000.0"]:
        assert line in out, line
    text = text_of("numerical_symbolic_automatic")
    assert "total\ncancellation" in text and "sign wrong" not in text
    assert r"\approx 3.3" in text and "33.3" in text  # the notes' slip, named and corrected


def test_the_complex_step_has_no_cancellation_but_still_rounds():
    text = text_of("numerical_symbolic_automatic") + numerical.__doc__
    assert "no round-off at all" not in text
    assert "still rounds" in text and "no\ncancellation" in text.replace("**", "")


def test_the_product_shows_expression_swell():
    out = printed("numerical_symbolic_automatic")
    assert re.search(r"16\s+31\s+4816\s+464\s+15 \+ 30", out)
    assert r"\prod_{i=1}^n x_i" in text_of("numerical_symbolic_automatic")


# ---- computational graphs ----------------------------------------------------------------


def test_the_larger_example_computes_each_common_piece_once():
    assert "x·x computed 1 time(s)" in printed("computational_graphs")
    assert "square = x * x" in text_of("computational_graphs")
    assert "/ (x * x)" not in text_of("computational_graphs")


def test_a_set_of_parents_loses_an_edge_only_when_the_sweep_iterates_over_it():
    text = text_of("computational_graphs")
    assert "iterates over the set" in text and "would keep one and lose half" not in text
    assert "so micrograd gets $d(x \\cdot x)/dx = 6$ at 3" in text
    out = printed("computational_graphs")
    assert "sweep over the tuple: 6.0" in out and "sweep over the set:   3.0" in out
    x = ReverseDiff(3.0)
    assert len((x * x).parents) == 2 and ad.grad(lambda v: v * v)(3.0) == 6.0


def test_no_internal_names_reach_students():
    pattern = re.compile(r"seed[ _]?0\d\d|seed notebook|seeds?/", re.IGNORECASE)
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        shown = "\n".join("".join(c["source"]) + printed(path.stem) for c in cells(path.stem))
        assert not pattern.search(shown), path.name
    assert "Griewank and Walther" in text_of("forward_vs_reverse")
    assert "Baydin et al." in text_of("forward_vs_reverse")
    assert "style of the `ReverseDiff` class of the lecture notes" in text_of(
        "computational_graphs")


# ---- forward against reverse -------------------------------------------------------------


def test_why_the_table_prints_2_0166_and_the_notes_2_0167():
    out = printed("forward_vs_reverse")
    assert "1.4924 × 1.3513 = 2.016680" in out and "v₅ × v₄         = 2.016647" in out
    y = seed002(ReverseDiff(1.5), ReverseDiff(0.5))
    assert round(y.value, 6) == 2.016647 and round(1.4924 * 1.3513, 4) == 2.0167


def test_the_notes_examples_are_all_shown():
    out = printed("forward_vs_reverse")
    assert "∂f/∂x₁ = 5.5000" in out and "[5.5    1.7163]" in out  # Baydin et al. at (2, 5)
    assert "two forward sweeps: [0.6 0.8]\none reverse sweep:  [0.6 0.8]" in out
    assert "(∂f₁/∂x₁, ∂f₂/∂x₁) = [2.5839 3.    ]" in out  # f₁, f₂ sharing x₁x₂
    duality = re.findall(r"= (-?\d+\.\d{10})", out)
    assert len(duality) == 2 and duality[0] == duality[1]
    chain = re.findall(r"(?:sweep|formulas):\s+\[([^\]]+)\]", out)[-2:]
    assert chain[0] == chain[1] == " 0.1212 -0.1436 -0.2527"
    text = text_of("forward_vs_reverse")
    assert r"\dot y_2 = w_2 w_1 \sigma'(v_2)" in text  # the notes drop the w₁


def test_duality_holds_for_the_library():
    def F(x):
        return ad.stack([x[0] * x[1] + ad.sin(x[2]), ad.exp(x[0]) - x[1] * x[2]])

    rng = np.random.default_rng(1)
    x, x_dot, y_bar = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal(2)
    _, y_dot = ad.jvp(F, (x,), (x_dot,))
    (x_bar,) = ad.vjp(F, x)[1](y_bar)
    assert y_bar @ y_dot == pytest.approx(x_bar @ x_dot, rel=1e-14)


def test_the_explorer_legend_names_the_input_tangents_without_jargon():
    explorer = ModeExplorer(seed002, 1.5, 0.5)
    assert "∂v/∂x1" in explorer.caption.value and "seeded" not in explorer.caption.value


# ---- the cost of the modes ---------------------------------------------------------------


def test_one_cost_convention_in_text_code_and_numbers():
    sizes = (1000, 10, 10, 1)
    assert cost.forward_cost(sizes) == 1000 * (10 * 10 + 1 * 10) == 110_000
    assert cost.reverse_cost(sizes) == 1 * (10 * 10 + 10 * 1000) == 10_100
    text = text_of("cost_of_the_modes")
    assert r"d_0 \sum_{i=2}^{k} d_i d_{i-1}" in text and r"d_k \sum_{i=1}^{k-1}" in text
    assert "(1000, 10, 10, 1): forward   110,000  reverse    10,100" in printed(
        "cost_of_the_modes")


def test_the_cheap_gradient_principle_keeps_the_d1_d0_term():
    ratios = []
    for d0 in (10, 1_000, 100_000):
        sizes = (d0, 10, 10, 1)
        assert cost.reverse_cost(sizes) == 10 * 10 + 10 * d0  # grows with d₀...
        ratios.append(cost.reverse_cost(sizes) / cost.evaluation_cost(sizes))
    assert all(0.9 < r <= 1.0 for r in ratios)  # ...but stays a bounded multiple of f
    wide = [cost.forward_cost((d, d, d, 1)) / cost.evaluation_cost((d, d, d, 1))
            for d in (10, 100, 1000)]
    assert wide[2] > 10 * wide[1] / 2 and wide[2] > 400
    text = text_of("cost_of_the_modes")
    assert "costs the same whatever" not in text and "term $d_1 d_0$ grows with $d_0$" in text
    assert "w_{\\text{grad}} \\in [3, 4]" in text


def test_a_chain_whose_cheapest_order_is_mixed():
    sizes = (5, 100, 1, 100, 5)
    assert (cost.forward_cost(sizes), cost.reverse_cost(sizes)) == (3500, 3500)
    best = cost.best_bracketing(sizes)
    assert (best.cost, best.text) == (1025, "(J4 J3) (J2 J1)")
    listed = cost.bracketings(sizes)
    assert len(listed) == 5 and listed[0] == best
    assert [b.cost for b in listed] == [1025, 3500, 3500, 62500, 62500]
    assert "  1,025  (J4 J3) (J2 J1)" in printed("cost_of_the_modes")
    assert "CostExplorer(sizes=(5, 100, 1, 100, 5))" in text_of("cost_of_the_modes")
    explorer = CostExplorer(sizes=sizes, measure=False)
    assert explorer.counts["best"] == 1025 and explorer.sliders[1].max >= 100
    assert "neither sweep" in explorer.result.value
    with pytest.raises(ValueError, match="too many bracketings"):
        cost.bracketings([2] * 11)


def test_the_cost_explorer_states_its_convention_in_words():
    page = CostExplorer(sizes=(32, 16, 16, 1), measure=False).result.value
    assert "carries d₃ = 1 adjoint row:" in page and "1 rows" not in page
    assert "carries d₀ = 32 tangent columns" in page
    assert "a p×q by q×r product costing p·q·r" in page


# ---- training: set, not accumulate -------------------------------------------------------


def test_the_mlp_lecture_contrasts_pytorch_accumulation():
    text = text_of("training_an_mlp")
    assert "**sets** every `.grad`" in text and "**adds**" in text
    assert "optimizer.zero_grad()" in text
    x = ReverseDiff(np.array([1.0, 2.0]))
    loss = ad.sum(x * x)
    loss.backward()
    loss.backward()  # course_ad sets the gradient again; PyTorch would hold twice as much
    assert np.array_equal(x.grad, [2.0, 4.0])


# ---- the pictures ------------------------------------------------------------------------


def fonts_and_width(svg):
    sizes = {float(s) for s in re.findall(r"font-size: ([\d.]+)px", svg)}
    width = float(re.search(r'<svg[^>]*width="([\d.]+)pt"', svg).group(1))
    return sizes, width / 72  # inches


def test_pictures_are_readable_at_100_percent():
    view = viz.draw(seed002(ReverseDiff(1.5), ReverseDiff(0.5)), "reverse")
    sizes, width = fonts_and_width(view.to_svg())
    assert sizes and min(sizes) >= 11
    assert width <= viz.MAX_WIDTH and view.layout.direction == "right"


def test_the_larger_example_fits_a_cell():
    def lecture_example(x):
        square = x * x
        root = ad.sqrt(square + 1.0)
        log_term = ad.log(x + root)
        return log_term / square - log_term**3 / root

    view = viz.draw(lecture_example(ReverseDiff(1.5)), title="the larger example")
    sizes, width = fonts_and_width(view.to_svg())
    assert min(sizes) >= 11 and width * 96 <= 1000  # px at 100 %: fits a 1400-px window
    assert view.layout.direction == "down"
    wide = viz.draw(lecture_example(ReverseDiff(1.5)), direction="right")
    assert wide.size[0] > viz.MAX_WIDTH  # left to right it would not fit
    with pytest.raises(ValueError, match="direction must be None, 'right' or 'down'"):
        viz.draw(lecture_example(ReverseDiff(1.5)), direction="up")


def test_every_picture_has_a_legend_for_its_colours():
    y = seed002(ReverseDiff(1.5), ReverseDiff(0.5))
    values = viz.draw(y).to_svg()
    assert "value computed" in values and ">input<" in values and ">output<" in values
    forward = viz.draw(y, "forward", step=5).to_svg()
    for entry in ["not reached yet", "value and tangent known", "this step",
                  "its term ∂vᵢ/∂vⱼ · v̇ⱼ of v̇ᵢ"]:
        assert entry in forward, entry
    reverse = viz.draw(y, "reverse").to_svg()
    assert "adjoint known" in reverse and "its term v̄ᵢ · ∂vᵢ/∂vⱼ of v̄ⱼ" in reverse
    assert "this step" not in reverse  # only the colours the picture uses
    assert "value computed" not in viz.draw(y, legend=False).to_svg()


def edge_labels(svg):
    """The numbers on the edges: centred text in the edge-label colours."""
    return re.findall(r'<text style="[^"]*text-anchor: middle; fill: #(?:9a3412|e8590c)"'
                      r'[^>]*>([^<]+)<', svg)


def test_forward_pictures_show_each_edges_tangent_term():
    y = seed002(ReverseDiff(1.5), ReverseDiff(0.5))
    labels = edge_labels(viz.draw(y, "forward").to_svg())
    assert len(labels) == 10  # one per edge
    assert "2.9848" in labels and "0.0270" in labels  # v̇₆ = 1.4924·2 + 1.3513·0.02
    assert round(2.9848 + 0.0270, 4) == 3.0118
    assert edge_labels(viz.draw(y).to_svg()) == []  # values only: nothing flows
    explorer = ModeExplorer(seed002, 1.5, 0.5)
    explorer.step_to(2)  # v₁ = v₋₁ / v₀: its two incoming terms appear
    assert sorted(edge_labels(explorer.graph_html.value)) == ["0.0000", "2.0000"]


def test_reverse_pictures_show_each_edges_adjoint_term():
    x = ReverseDiff(3.0)
    labels = edge_labels(viz.draw((x * x) * 2, "reverse").to_svg())
    assert sorted(labels) == ["2.0000", "6.0000", "6.0000"]  # x̄ = 6 + 6


def test_argument_badges_are_gone_and_operands_are_named_in_order():
    x1, x2 = ReverseDiff(1.5), ReverseDiff(0.5)
    svg = viz.draw(x1 / x2).to_svg()
    assert not re.search(r">[01]<", svg)  # no lone 0/1 badges
    assert "v₁ = v₋₁ / v₀" in svg
    assert trace(x1 / x2).edges[1].argnum == 1  # the order is still recorded
