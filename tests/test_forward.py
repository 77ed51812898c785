"""Forward mode: dual numbers, batches of tangents, nested derivatives."""

import numpy as np
import pytest

import course_ad as ad
from course_ad import ForwardDiff


def test_tangent_defaults_to_zero_and_has_the_values_shape():
    assert ForwardDiff(2.0).grad == 0.0
    assert ForwardDiff(np.ones((2, 3))).grad.shape == (2, 3)
    assert ForwardDiff(2.0, 1.0).tangent == 1.0


def test_a_batch_of_tangents_gives_a_jacobian_in_one_pass():
    x = np.array([0.3, -1.2, 2.0])
    dual = ForwardDiff(x, np.eye(3))  # three directions at once
    out = ad.sin(dual) * dual[0] + ad.sum(dual**2)
    assert out.grad.shape == (3, 3)
    expected = np.diag(np.cos(x) * x[0]) + 2 * x[None, :]
    expected[:, 0] += np.sin(x)  # ∂(sin(x_i) x_0)/∂x_0
    assert np.allclose(out.grad.T, expected)


def test_batched_tangents_follow_broadcasting():
    b = np.arange(6.0).reshape(2, 3)
    x = ForwardDiff(np.array([1.0, 2.0, 3.0]), np.eye(3))
    out = b * x + 1.0
    assert out.grad.shape == (3, 2, 3)
    assert np.allclose(out.grad[1], b * np.array([0.0, 1.0, 0.0]))


def test_nested_derivatives_do_not_confuse_perturbations():
    """d/dx [x · d/dy (x + y)] at x = 1 is 1; a naive dual number gives 2."""
    result = ad.derivative(lambda x: x * ad.derivative(lambda y: x + y)(1.0))(1.0)
    assert result == 1.0


def test_second_derivative_by_forward_over_forward():
    d2 = ad.derivative(ad.derivative(lambda x: x**3 * ad.sin(x)))(0.8)
    x = 0.8
    assert np.isclose(d2, 6 * x * np.sin(x) + 6 * x**2 * np.cos(x) - x**3 * np.sin(x))


def test_pow_with_a_traced_exponent():
    x, y = ForwardDiff(2.0, 1.0), ForwardDiff(3.0, 1.0)
    z = x**y  # ∂/∂x = y x^(y-1) = 12, ∂/∂y = x^y log x
    assert np.isclose(z.grad, 12 + 8 * np.log(2.0))


def test_a_tangent_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"tangent has shape \(2,\) but the value has shape"):
        ForwardDiff(np.ones(3), np.ones(2))


def test_comparisons_compare_values():
    x = ForwardDiff(2.0, 1.0)
    assert x > 1 and x < 3.0 and x == 2.0 and (x != 3.0)
    assert bool(ForwardDiff(0.0)) is False
