"""The JAX-shaped functional API."""

import numpy as np
import pytest

import course_ad as ad


def rosenbrock(x):
    return ad.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


X = np.array([-1.2, 1.0, 0.5, 2.0])


def rosenbrock_gradient(x):
    g = np.zeros_like(x)
    g[:-1] = -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    g[1:] += 200 * (x[1:] - x[:-1] ** 2)
    return g


def test_grad_and_value_and_grad():
    value, gradient = ad.value_and_grad(rosenbrock)(X)
    assert np.isclose(value, rosenbrock(X))
    assert np.allclose(gradient, rosenbrock_gradient(X))
    assert np.allclose(ad.grad(rosenbrock)(X), gradient)


def test_grad_argnums_and_has_aux():
    def f(a, b, c):
        return a * b + c, "aux"

    (value, aux), grads = ad.value_and_grad(f, argnums=(0, 2), has_aux=True)(2.0, 3.0, 4.0)
    assert (value, aux, grads) == (10.0, "aux", (3.0, 1.0))
    gradient, aux = ad.grad(f, argnums=1, has_aux=True)(2.0, 3.0, 4.0)
    assert gradient == 2.0 and aux == "aux"


def test_grad_of_a_function_that_ignores_its_input_is_zero():
    assert ad.grad(lambda x: 3.0)(2.0) == 0.0
    assert np.array_equal(ad.grad(lambda x: 3.0)(np.ones(2)), np.zeros(2))


def test_grad_needs_a_scalar_output():
    with pytest.raises(ValueError, match=r"must return a scalar, but it returned shape \(4,\)"):
        ad.grad(lambda x: x * 2)(X)


def test_jvp_and_vjp_agree_with_the_jacobian(rng):
    def f(x):
        return ad.tanh(x[:, None] * x[None, :]) @ x

    J = ad.jacfwd(f)(X)
    assert J.shape == (4, 4)
    assert np.allclose(J, ad.jacrev(f)(X), atol=1e-12)
    u, v = rng.standard_normal(4), rng.standard_normal(4)
    out, tangent = ad.jvp(f, (X,), (u,))
    assert np.allclose(out, f(X)) and np.allclose(tangent, J @ u)
    out, pullback = ad.vjp(f, X)
    (cotangent,) = pullback(v)
    assert np.allclose(cotangent, v @ J)
    assert np.allclose(pullback(v)[0], cotangent)  # pulling back twice gives the same


def test_jacobian_shapes_follow_output_then_input():
    def f(A):
        return ad.sum(A, axis=1)

    A = np.ones((2, 3))
    assert ad.jacfwd(f)(A).shape == ad.jacrev(f)(A).shape == (2, 2, 3)


def test_hessian_is_forward_over_reverse_and_matches_the_formula():
    H = ad.hessian(rosenbrock)(X)
    expected = ad.numerical_gradient(rosenbrock_gradient, X)
    assert np.allclose(H, expected, atol=1e-4)
    assert np.allclose(H, H.T)


def test_hvp_equals_hessian_times_vector(rng):
    v = rng.standard_normal(4)
    assert np.allclose(ad.hvp(rosenbrock, X, v), ad.hessian(rosenbrock)(X) @ v)


def test_grad_of_grad_and_mixed_nesting():
    f = lambda x: x**4  # noqa: E731
    assert ad.grad(ad.grad(f))(2.0) == 48.0
    assert ad.grad(ad.derivative(f))(2.0) == 48.0
    assert ad.derivative(ad.grad(f))(2.0) == 48.0
    assert ad.grad(ad.grad(ad.grad(f)))(2.0) == 48.0


def test_jacrev_of_jacfwd_and_jacfwd_of_jacrev_agree():
    def f(x):
        return ad.sin(x) * ad.sum(x**2)

    x = np.array([0.5, -0.3, 1.1])
    a = ad.jacrev(ad.jacfwd(f))(x)
    b = ad.jacfwd(ad.jacrev(f))(x)
    assert a.shape == (3, 3, 3) and np.allclose(a, b, atol=1e-12)


def test_module_level_functions_work_on_every_kind_of_value():
    for value in (0.5, np.array([0.5, 1.5])):
        plain = ad.tanh(ad.sin(value) * ad.exp(value))
        assert type(plain) in (float, np.ndarray)
        forward = ad.tanh(ad.sin(ad.ForwardDiff(value)) * ad.exp(value))
        reverse = ad.tanh(ad.sin(ad.ReverseDiff(value)) * ad.exp(value))
        assert np.allclose(forward.value, plain) and np.allclose(reverse.value, plain)
    assert ad.matmul(np.eye(2), np.ones(2)).tolist() == [1.0, 1.0]
    assert ad.stack([ad.ReverseDiff(1.0), 2.0]).value.tolist() == [1.0, 2.0]
    assert ad.mean(np.arange(4.0)) == 1.5


def test_numpy_functions_route_to_rules():
    x = ad.ReverseDiff(np.array([0.1, 0.2]))
    y = np.sum(np.exp(x) * np.sin(x))
    assert isinstance(y, ad.ReverseDiff) and y.op == "sum"
    y.backward()
    assert np.allclose(x.grad, np.exp([0.1, 0.2]) * (np.sin([0.1, 0.2]) + np.cos([0.1, 0.2])))
    assert np.shape(x) == (2,)
