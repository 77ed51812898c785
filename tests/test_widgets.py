"""The explorers, driven headless: set the slider, click the buttons, read the HTML."""

import pytest
from examples import seed002

from course_ad.widgets import CostExplorer, ModeExplorer


def test_forward_explorer_steps_through_the_tangents():
    explorer = ModeExplorer(seed002, 1.5, 0.5)
    assert explorer.mode == "forward" and explorer.n_steps == 8
    assert "step 1/8" in explorer.caption.value and "x1" in explorer.caption.value
    explorer.next_button.click()
    explorer.next_button.click()
    assert explorer.step == 2
    assert "step 3/8: v₁ = v₋₁ / v₀ = 3.0000" in explorer.caption.value
    assert "v̇₁ = 2.0000" in explorer.graph_html.value  # the picture shows the new tangent
    assert "v̇₂" not in explorer.graph_html.value  # ...and nothing not yet computed
    assert explorer.table_html.value.count("cad-active") == 2
    explorer.prev_button.click()
    assert explorer.step == 1
    explorer.step_to(7)
    assert "v̇₆ = 3.0118" in explorer.graph_html.value
    explorer.next_button.click()  # past the end: stays
    assert explorer.step == 7 and explorer.last_error is None


def test_reverse_explorer_shows_adjoints_accumulating_on_fan_out():
    explorer = ModeExplorer(seed002, 1.5, 0.5, mode="reverse")
    assert explorer.n_steps == 19
    explorer.step_to(11)
    assert "step 12/19: v̄₂ += v̄₅ · 1.0000 = 1.3513" in explorer.caption.value
    assert "v̄₄ = 1.4924" in explorer.graph_html.value  # one contribution so far
    explorer.next_button.click()
    assert "v̄₄ += v̄₅ · 1.0000 = 1.3513  (now 2.8437)" in explorer.caption.value
    assert "v̄₄ = 2.8437" in explorer.graph_html.value  # the second one added
    assert explorer.frame.hot_edge == (5, 6, 1)
    explorer.step_to(explorer.n_steps - 1)
    assert "v̄₋₁ = 3.0118" in explorer.graph_html.value
    assert "v̄₀ = -13.7240" in explorer.graph_html.value


def test_slider_and_mode_toggle_stay_in_sync():
    explorer = ModeExplorer(seed002, 1.5, 0.5)
    explorer.slider.value = 5  # the slider counts from 1, like the caption
    assert "step 5/8" in explorer.caption.value and explorer.step == 4
    first = explorer.graph_html.value
    explorer.set_mode("reverse")
    assert explorer.step == 0 and explorer.slider.max == 19 and explorer.play.max == 19
    assert "step 1/19" in explorer.caption.value and explorer.graph_html.value != first
    explorer.mode_buttons.value = "forward"
    assert explorer.slider.max == 8


def test_explorer_reports_bad_use():
    with pytest.raises(ValueError, match="give the inputs"):
        ModeExplorer(seed002)
    with pytest.raises(TypeError, match="returned float"):
        ModeExplorer(lambda x: 3.0, 1.0)
    explorer = ModeExplorer(seed002, 1.5, 0.5)
    with pytest.raises(ValueError, match="out of range 0..7"):
        explorer.step_to(8)


def test_explorer_displays_as_a_widget():
    explorer = ModeExplorer(seed002, 1.5, 0.5)
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "cad-explorer" in explorer.widget._dom_classes


def test_cost_explorer_updates_with_the_sliders():
    explorer = CostExplorer(sizes=(32, 16, 16, 1), measure=False)
    assert explorer.counts["forward"] == 16 * 16 * 32 + 1 * 16 * 32
    assert explorer.counts["reverse"] == 1 * 16 * 16 + 1 * 16 * 32
    assert "(J3 J2) J1" in explorer.result.value
    explorer.sliders[0].value = 1  # one input: forward catches up
    assert explorer.counts["forward"] == explorer.counts["reverse"] == 272
    measured = CostExplorer(sizes=(3, 2, 2, 1), measure=True)
    assert measured.counts["jacfwd"] > 0 and "jacrev" in measured.result.value
