"""Finite differences, the step-size lesson and the gradient checker."""

import numpy as np
import pytest

import course_ad as ad
from course_ad.numerical import (
    backward_difference,
    central_difference,
    complex_step,
    error_versus_step,
    forward_difference,
)


def test_difference_quotients_have_their_orders_of_accuracy():
    exact = np.cos(1.0)
    for h in (1e-2, 1e-3):
        assert abs(forward_difference(np.sin, 1.0, h) - exact) == pytest.approx(
            0.5 * np.sin(1.0) * h, rel=0.05)  # error ≈ f''/2 h
        assert abs(backward_difference(np.sin, 1.0, h) - exact) == pytest.approx(
            0.5 * np.sin(1.0) * h, rel=0.05)
        assert abs(central_difference(np.sin, 1.0, h) - exact) == pytest.approx(
            np.cos(1.0) * h**2 / 6, rel=0.05)  # error ≈ f'''/6 h²
    assert complex_step(np.sin, 1.0) == pytest.approx(exact, abs=1e-16)


def test_error_versus_step_shows_truncation_against_round_off():
    study = error_versus_step(np.exp, 1.0, np.exp(1.0))
    assert 1e-9 <= study.best_step("forward") <= 1e-7  # near √ε
    assert 1e-7 <= study.best_step("central") <= 1e-4  # near ∛ε
    errors = study.errors["forward"]
    assert errors[0] > 0.5 and errors[-1] > 1e-3  # too big a step, then round-off
    assert np.nanmax(study.errors["complex"][16:]) < 1e-15  # h ≤ 1e-8: rounding only
    assert "best forward" in repr(study)


def test_numerical_gradient_of_a_vector_function():
    J = ad.numerical_gradient(lambda x: np.array([x[0] * x[1], np.sin(x[0])]),
                              np.array([1.0, 2.0]))
    assert J.shape == (2, 2)
    assert np.allclose(J, [[2.0, 1.0], [np.cos(1.0), 0.0]], atol=1e-8)
    assert np.allclose(ad.numerical_gradient(np.sin, np.array([0.2]), method="complex"),
                       np.cos(0.2), atol=1e-15)


def test_sum_of_squares_at_n_1000_where_the_difference_quotient_loses_the_sign():
    """Seed 002's warning: a forward difference of Σ xᵢ² near a tiny gradient is all noise."""
    x = np.full(1000, 1e-9)
    x[0] = -1e-9

    def f(v):
        return np.sum(v**2) + 1.0  # the + 1 sets the scale of the round-off

    exact = 2 * x[0]  # -2e-9
    estimate = ad.numerical_gradient(f, x, h=1e-8, method="forward")[0]
    assert np.sign(estimate) != np.sign(exact)
    assert ad.grad(lambda v: ad.sum(v**2) + 1.0)(x)[0] == exact


def test_gradcheck_report_is_truthy_and_shows_a_table():
    report = ad.gradcheck(lambda x, y: ad.sum(ad.sin(x) * y), np.ones(3), np.arange(3.0))
    assert report and report.max_abs_error < 1e-8
    assert "gradcheck passed" in repr(report)
    assert "<table>" in report._repr_html_()
    report.assert_ok()


def test_gradcheck_catches_a_wrong_rule_and_names_the_worst_index():
    from course_ad.dispatch import apply
    from course_ad.rules import Domain, Rule

    def cube_jvp(dx, out, x):
        """a wrong tangent: 3 x (should be 3 x²)"""
        return dx * 3 * x

    def cube_vjp(g, out, x):
        """a wrong adjoint: 3 x (should be 3 x²)"""
        return g * 3 * x

    cube = Rule("cube", lambda x: x**3, (cube_jvp,), (cube_vjp,), "³", "v = x^3", "", "",
                (Domain(),), True)
    report = ad.gradcheck(lambda x: ad.sum(apply(cube, x)), np.array([1.0, 1.0, 2.0]))
    assert not report
    assert report.worst.index == (0, 2)
    assert report.worst.analytic == 6.0 and report.worst.numeric == pytest.approx(12.0)
    with pytest.raises(AssertionError, match="gradient check failed"):
        report.assert_ok()
