"""Regressions R1–R8 of the peer-suite review, complex inputs, and the smaller gaps.

Each test pins a wrong answer or a crash that once happened, with the value the reference
libraries (torch, JAX, HIPS autograd) give."""

import itertools

import autograd
import autograd.numpy as anp
import numpy as np
import pytest

import course_ad as ad
from course_ad.dispatch import apply
from course_ad.rules import MissingRuleError, Rule

# --------------------------------------------------------------------------------------
# R1, R2: matmul for every pairing of ranks numpy allows
# --------------------------------------------------------------------------------------

# (shape of A, shape of B): vectors on either side, stacks on either side, and stack axes
# that broadcast against each other (1 against 4, missing against present)
MATMUL_SHAPES = [
    ((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)),
    ((2, 2, 3), (3,)), ((2, 1, 2, 3), (3,)), ((3,), (2, 3, 4)), ((3,), (2, 1, 3, 4)),
    ((2, 2, 3), (3, 4)), ((2, 3), (5, 3, 4)), ((4, 2, 3), (4, 3, 2)), ((1, 2, 3), (4, 3, 2)),
    ((4, 1, 2, 3), (5, 3, 2)), ((2, 1, 2, 3), (1, 3, 3, 2)),
]


@pytest.mark.parametrize(("a_shape", "b_shape"), MATMUL_SHAPES)
def test_matmul_gradients_match_autograd_for_every_pairing_of_ranks(a_shape, b_shape, rng):
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    weights = rng.standard_normal(np.matmul(a, b).shape)

    def ours(a, b):
        return ad.sum(ad.sin(ad.matmul(a, b)) * weights)

    def theirs(a, b):
        return anp.sum(anp.sin(anp.matmul(a, b)) * weights)

    want = autograd.grad(theirs, (0, 1))(a, b)
    got = ad.grad(ours, (0, 1))(a, b)
    for g, w, x in zip(got, want, (a, b)):
        assert np.shape(g) == x.shape
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
    # forward mode: one pushed direction against the reverse-mode gradient
    da, db = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    _, tangent = ad.jvp(ours, (a, b), (da, db))
    np.testing.assert_allclose(tangent, np.sum(want[0] * da) + np.sum(want[1] * db), rtol=1e-10)


@pytest.mark.parametrize(("a_shape", "b_shape"), MATMUL_SHAPES)
def test_matmul_jacobians_agree_and_gradcheck_passes_at_order_2(a_shape, b_shape, rng):
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    for k, x in enumerate((a, b)):
        def of_x(x, k=k):
            return ad.matmul(x, b) if k == 0 else ad.matmul(a, x)

        np.testing.assert_allclose(ad.jacfwd(of_x)(x), ad.jacrev(of_x)(x), atol=1e-12)
    report = ad.gradcheck(lambda a, b: ad.matmul(a, b) ** 2, a, b, order=2)
    assert report, report


def test_r1_batched_matrix_times_vector_gives_a_gradient_of_the_vectors_shape(rng):
    A, b = rng.standard_normal((2, 2, 3)), rng.standard_normal(3)
    g = ad.grad(lambda b: ad.sum(ad.matmul(A, b)))(b)
    assert g.shape == (3,)
    np.testing.assert_allclose(g, A.sum(axis=(0, 1)))
    A4 = rng.standard_normal((2, 1, 2, 3))
    np.testing.assert_allclose(ad.grad(lambda b: ad.sum(ad.matmul(A4, b)))(b),
                               A4.sum(axis=(0, 1, 2)))
    assert ad.gradcheck(lambda b: ad.matmul(A4, b), b)


def test_r2_vector_times_batched_matrices(rng):
    a, B = rng.standard_normal(3), rng.standard_normal((2, 3, 4))
    np.testing.assert_allclose(ad.grad(lambda a: ad.sum(ad.matmul(a, B)))(a), B.sum(axis=(0, 2)))


def test_gradcheck_reports_a_broken_rule_instead_of_crashing():
    def wrong_shape_vjp(g, out, x):
        """x̄ += v̄ with the wrong shape (a broken rule)"""
        return np.ones(5)

    def id_jvp(dx, out, x):
        """v̇ = ẋ"""
        return dx

    broken = Rule("broken_identity", lambda x: x, (id_jvp,), (wrong_shape_vjp,), "id",
                  "v = x", r"\dot v = \dot x", r"\bar x = \bar v")
    report = ad.gradcheck(lambda x: apply(broken, x), np.ones(3))
    assert not report
    failed = [c.name for c in report.checks if not c.passed]
    assert any("reverse mode failed" in name and "shape" in name for name in failed), failed
    assert any(c.passed for c in report.checks)  # forward mode was still checked


# --------------------------------------------------------------------------------------
# R3, R4, R5: pow at 0 and at negative bases, as torch and JAX define it
# --------------------------------------------------------------------------------------

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # 0⁻¹, log(-1): inf and nan


def both_modes(f, x):
    """(reverse-mode, forward-mode) derivative of a scalar function of a scalar."""
    return ad.grad(f)(x), ad.derivative(f)(x)


def test_r3_power_zero_has_derivative_zero_everywhere_even_at_zero():
    for got in both_modes(lambda x: x**0.0, 0.0):
        assert got == 0.0
    got = ad.grad(lambda x: ad.sum(x**0.0))(np.array([0.0, 1.0, -2.0]))
    np.testing.assert_array_equal(got, [0.0, 0.0, 0.0])
    _, tangent = ad.jvp(lambda x: x**0.0, (np.array([0.0, 1.0]),), (np.ones(2),))
    np.testing.assert_array_equal(tangent, [0.0, 0.0])
    assert ad.grad(ad.grad(lambda x: x**0.0))(0.0) == 0.0


def test_r3_square_root_power_at_zero_is_infinite_not_an_exception():
    for got in both_modes(lambda x: x**0.5, 0.0):
        assert got == np.inf
    assert ad.grad(lambda x: x**2.0)(0.0) == 0.0
    assert ad.grad(lambda x: x**1.0)(0.0) == 1.0
    assert ad.grad(ad.grad(lambda x: x**2.0))(0.0) == 2.0


def test_r4_fractional_power_of_a_negative_base_is_a_real_nan():
    for got in both_modes(lambda x: x**0.5, -2.0):
        assert isinstance(got, float) and np.isnan(got)
    value, got = ad.value_and_grad(lambda x: ad.sum(x**0.5))(np.array([-2.0, 4.0]))
    assert got.dtype == np.float64 and np.isnan(got[0]) and got[1] == 0.25 and np.isnan(value)
    # integer exponents of negative bases are real and differentiable
    assert ad.grad(lambda x: x**3.0)(-2.0) == 12.0
    assert ad.grad(lambda x: x**2)(-2.0) == -4.0
    assert ad.grad(lambda x: x**-1)(-2.0) == -0.25


def test_r5_derivative_in_the_exponent_at_base_zero_is_zero():
    for got in both_modes(lambda y: 0.0**y, 0.5):
        assert got == 0.0
    got = ad.grad(lambda y: ad.sum(ad.power(np.array([0.0, 2.0]), y)))(1.0)
    assert got == pytest.approx(2 * np.log(2))
    gx, gy = ad.grad(lambda x, y: x**y, (0, 1))(0.0, 2.0)
    assert gx == 0.0 and gy == 0.0
    assert np.isnan(ad.grad(lambda y: (-2.0) ** y)(2.0))  # log of a negative base: nan, real


def test_power_matches_autograd_away_from_the_edge_cases(rng):
    x, y = rng.uniform(0.5, 2.0, 4), rng.uniform(-2.0, 2.0, 4)
    want = autograd.grad(lambda x, y: anp.sum(x**y), (0, 1))(x, y)
    got = ad.grad(lambda x, y: ad.sum(x**y), (0, 1))(x, y)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-13)


# --------------------------------------------------------------------------------------
# R6, R7, R8: numpy functions that would escape the rule table
# --------------------------------------------------------------------------------------


def test_r6_np_dot_on_stacks_has_numpys_meaning_and_derivative(rng):
    a, b = rng.standard_normal((2, 2, 3)), rng.standard_normal((2, 3, 4))
    out = np.dot(ad.ReverseDiff(a), b)
    assert out.shape == (2, 2, 2, 4)
    np.testing.assert_allclose(out.value, np.dot(a, b))
    weights = rng.standard_normal((2, 2, 2, 4))
    want = autograd.grad(lambda a, b: anp.sum(anp.dot(a, b) * weights), (0, 1))(a, b)
    got = ad.grad(lambda a, b: ad.sum(np.dot(a, b) * weights), (0, 1))(a, b)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12)
    assert ad.gradcheck(lambda a, b: ad.dot(a, b), a, b)
    assert ad.gradcheck(lambda a, b: a.dot(b), rng.standard_normal(3), b)
    np.testing.assert_allclose(ad.dot(2.0, ad.ReverseDiff(a)).value, 2 * a)
    with pytest.raises(ValueError, match=r"dot: shapes \(2, 2, 3\) and \(2, 4, 3\) do not align"):
        ad.dot(a, rng.standard_normal((2, 4, 3)))


def test_r7_np_copy_keeps_the_derivative():
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(ad.grad(lambda x: ad.sum(np.copy(x) * x))(x), 2 * x)
    np.testing.assert_allclose(ad.grad(lambda x: ad.sum(x.copy() * x))(x), 2 * x)
    np.testing.assert_allclose(ad.jvp(lambda x: np.copy(x) * x, (x,), (np.ones(3),))[1], 2 * x)


@pytest.mark.parametrize("convert", [
    np.asarray, np.array, lambda x: np.r_[x, x], lambda x: np.c_[x, x],
    lambda x: np.array([x, x]), lambda x: np.asarray([x[0], 1.0]),
], ids=["asarray", "array", "r_", "c_", "list", "mixed-list"])
def test_r8_conversions_to_numpy_arrays_refuse_with_advice(convert):
    x = np.array([1.0, 2.0])
    with pytest.raises(TypeError, match=r"numpy cannot convert a ReverseDiff into an array.*"
                                        r"course_ad\.stack"):
        ad.grad(lambda x: ad.sum(convert(x)))(x)
    with pytest.raises(TypeError, match=r"cannot convert a ForwardDiff.*derivative would be lost"):
        ad.jvp(lambda x: convert(x), (x,), (np.ones(2),))


def test_other_numpy_functions_name_themselves_and_the_way_out():
    with pytest.raises(MissingRuleError, match=r"no rule for numpy\.cumprod on ReverseDiff.*"
                                               r"course_ad's own functions"):
        ad.grad(lambda x: ad.sum(np.cumprod(x)))(np.ones(3))
    with pytest.raises(MissingRuleError, match=r"no rule for numpy\.linalg\.pinv on ForwardDiff"):
        ad.derivative(lambda t: np.sum(np.linalg.pinv(t * np.eye(2))))(1.0)


# --------------------------------------------------------------------------------------
# Complex numbers: refused, with a clear error
# --------------------------------------------------------------------------------------


def test_complex_inputs_are_refused_with_a_message_naming_the_engine():
    with pytest.raises(TypeError, match=r"ReverseDiff: got a complex value.*real floating-point"):
        ad.grad(lambda z: ad.abs(z))(1.0 + 2.0j)
    with pytest.raises(TypeError, match=r"ForwardDiff: got a complex value"):
        ad.ForwardDiff(np.array([1.0 + 1.0j]))
    with pytest.raises(TypeError, match=r"complex"):
        ad.grad(lambda z: ad.sum(z))([1.0, 2.0j])


def test_a_complex_constant_is_refused_by_the_operation_it_enters():
    with pytest.raises(TypeError, match=r"mul: got a complex value.*real and imaginary"):
        ad.grad(lambda x: ad.sum(x * 1j).real)(np.ones(2))
    with pytest.raises(TypeError, match=r"add: got a complex value"):
        ad.derivative(lambda x: x + np.complex128(1j))(1.0)
    # complex numbers without tracing are still numpy's business (the complex-step method)
    assert ad.sin(1j) == np.sin(1j)


# --------------------------------------------------------------------------------------
# Smaller gaps
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1,), (1, 1), (1, 1, 1)])
def test_grad_of_a_single_number_of_any_shape(shape):
    x = np.array([0.3, -0.7])
    want = np.cos(x) * 2.0
    got = ad.grad(lambda x: ad.reshape(ad.sum(ad.sin(x)) * 2.0, shape))(x)
    np.testing.assert_allclose(got, want)
    node = ad.reshape(ad.sum(ad.ReverseDiff(x)), shape)
    node.backward()
    np.testing.assert_allclose(node.parents[0].grad, [1.0])
    with pytest.raises(ValueError, match=r"must return a scalar, but it returned shape \(2,\)"):
        ad.grad(lambda x: x * 1.0)(x)


def test_float32_stays_float32_through_both_modes_and_second_order(rng):
    x = rng.standard_normal((3, 2)).astype(np.float32)
    w = rng.standard_normal((2, 4)).astype(np.float32)

    def f(x):
        h = ad.tanh(x @ w) + ad.sigmoid(x).sum(axis=1, keepdims=True)
        return ad.logsumexp(h, axis=1).mean() + ad.max(h) + ad.sum(ad.stack([x, x * 2.0]) ** 2)

    value, g = ad.value_and_grad(f)(x)
    assert value.dtype == g.dtype == np.float32 and g.shape == x.shape
    out, tangent = ad.jvp(f, (x,), (np.ones_like(x),))
    assert out.dtype == tangent.dtype == np.float32
    assert ad.hessian(f)(x).dtype == np.float32
    assert ad.jacfwd(lambda x: ad.sin(x))(x).dtype == np.float32
    assert ad.jacrev(lambda x: ad.sin(x))(x).dtype == np.float32
    assert ad.grad(lambda t: t * t)(np.float32(3.0)).dtype == np.float32
    np.testing.assert_allclose(g, ad.grad(f)(x.astype(np.float64)), rtol=1e-4, atol=1e-4)
    logits, labels = x @ w, np.array([0, 3, 1])
    assert ad.grad(lambda z: ad.cross_entropy(z, labels))(logits).dtype == np.float32


def _half_differentiable():
    def scale_jvp_x(dx, out, x, k):
        """v̇ = k ẋ"""
        return dx * k

    def scale_vjp_x(g, out, x, k):
        """x̄ += v̄ k"""
        return g * k

    return Rule("scale_by_count", lambda x, k: x * np.round(k), (scale_jvp_x, None),
                (scale_vjp_x, None), "scale", r"v = x \lfloor k \rceil", r"\dot v = k \dot x",
                r"\bar x \mathrel{+}= \bar v k")


def test_an_input_without_a_rule_is_an_error_not_a_silent_zero():
    rule = _half_differentiable()
    assert ad.grad(lambda x: apply(rule, x, 3.0))(2.0) == 3.0  # a constant there is fine
    with pytest.raises(MissingRuleError, match=r"scale_by_count: argument 1 has no VJP rule.*"
                                               r"Pass a constant there"):
        ad.grad(lambda k: apply(rule, 2.0, k))(3.0)
    with pytest.raises(MissingRuleError, match=r"scale_by_count: argument 1 has no JVP rule"):
        ad.derivative(lambda k: apply(rule, 2.0, k))(3.0)
    with pytest.raises(MissingRuleError, match="argument 1 has no VJP"):
        ad.grad(lambda x: apply(rule, x, x), argnums=0)(2.0)
    with pytest.raises(MissingRuleError, match="argument 1 has no JVP"):
        ad.jvp(lambda x, k: apply(rule, x, k), (np.ones(2), np.ones(2)), (np.ones(2), np.ones(2)))


def test_every_pairing_of_float_and_array_inputs_keeps_python_floats_as_floats():
    for x, y in itertools.product([2.0, np.array(2.0)], repeat=2):
        g = ad.grad(lambda x, y: x**y * ad.sin(x), (0, 1))(x, y)
        np.testing.assert_allclose(g, ad.grad(lambda x, y: x**y * ad.sin(x), (0, 1))(2.0, 2.0))
    assert type(ad.grad(lambda x: x**0.5)(4.0)) is float


def test_maximum_shares_the_derivative_at_a_tie_as_autograd_torch_and_jax():
    for got in both_modes(lambda x: ad.maximum(x, x), 1.5):
        assert got == 1.0
    for got in both_modes(lambda x: ad.maximum(x, 0.0), 0.0):
        assert got == 0.5
    x, y = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0])
    want = autograd.grad(lambda x, y: anp.sum(anp.maximum(x, y) ** 2), (0, 1))(x, y)
    got = ad.grad(lambda x, y: ad.sum(ad.maximum(x, y) ** 2), (0, 1))(x, y)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
