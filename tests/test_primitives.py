"""The primitives an ML course needs, against HIPS autograd, by course_ad's name and by numpy's.

Each case is one function written against a namespace ``m``: run with ``course_ad`` it uses
our functions; run with plain ``numpy`` on traced values it checks that numpy's functions
route to our rules; run with ``autograd.numpy`` it is the oracle.
"""

from types import SimpleNamespace

import autograd
import autograd.numpy as anp
import numpy as np
import pytest

import course_ad as ad
from course_ad.dispatch import primal_value

AD = SimpleNamespace(**{name: getattr(ad, name) for name in ad.__all__},
                     linalg=SimpleNamespace(norm=ad.norm, solve=ad.solve, inv=ad.inv,
                                            det=ad.det, slogdet=ad.slogdet))

rng = np.random.default_rng(7)
A = rng.standard_normal((3, 4))
S = rng.standard_normal((3, 3)) + 3 * np.eye(3)
V = rng.standard_normal(4)
OPEN = rng.uniform(-0.8, 0.8, (2, 3))
POS = rng.uniform(0.5, 3.0, (2, 3))

# (name, function of (x, m), input)
CASES = [
    ("tril", lambda x, m: m.sum(m.tril(x, -1) ** 2), A),
    ("triu", lambda x, m: m.sum(m.sin(m.triu(x, 1))), A),
    ("repeat", lambda x, m: m.sum(m.repeat(x, 2, axis=1) * np.arange(8.0)), A),
    ("repeat flat", lambda x, m: m.sum(m.repeat(x, 3) ** 2), A),
    ("tile", lambda x, m: m.sum(m.tile(x, (2, 1, 2)) * np.arange(48.0).reshape(2, 3, 8)), A),
    ("swapaxes", lambda x, m: m.sum(m.swapaxes(x, 0, 1) * np.arange(12.0).reshape(4, 3)), A),
    ("moveaxis", lambda x, m: m.sum(m.moveaxis(x[None], 0, 2) ** 3), A),
    ("squeeze", lambda x, m: m.sum(m.squeeze(x[:, None, :1]) * np.array([1.0, 2.0, 3.0])), A),
    ("expand_dims", lambda x, m: m.sum(m.expand_dims(x, 1) * np.ones((3, 2, 4))), A),
    ("ravel", lambda x, m: m.sum(m.ravel(x) * np.arange(12.0)), A),
    ("flip", lambda x, m: m.sum(m.flip(x, 1) * np.arange(12.0).reshape(3, 4)), A,
     lambda x, m: m.sum(x[:, ::-1] * np.arange(12.0).reshape(3, 4))),
    ("roll", lambda x, m: m.sum(m.roll(x, 5) * np.arange(12.0).reshape(3, 4)), A),
    ("vstack", lambda x, m: m.sum(m.vstack([x, x[0] * 2.0]) ** 2), A),
    ("hstack", lambda x, m: m.sum(m.hstack([x, x[:, :1]]) * np.arange(15.0).reshape(3, 5)), A),
    ("pad", lambda x, m: m.sum(m.pad(x, ((1, 2), (0, 1))) * np.arange(30.0).reshape(6, 5)), A,
     lambda x, m: m.sum(m.concatenate([m.concatenate([np.zeros((1, 4)), x, np.zeros((2, 4))]),
                                       np.zeros((6, 1))], axis=1) * np.arange(30.0).reshape(6, 5))),
    ("sort", lambda x, m: m.sum(m.sort(x, axis=1) * np.arange(12.0).reshape(3, 4)), A,
     lambda x, m: m.sum(m.stack([m.sort(row) for row in x]) * np.arange(12.0).reshape(3, 4))),
    ("minimum", lambda x, m: m.sum(m.minimum(x, 0.1 * x[::-1])), A),
    ("where", lambda x, m: m.sum(m.where(x > 0, x**2, m.sin(x))), A),
    ("clip", lambda x, m: m.sum(m.clip(x, -0.5, 0.7) * np.arange(12.0).reshape(3, 4)), A),
    ("square", lambda x, m: m.sum(m.square(x) * x), A),
    ("log1p", lambda x, m: m.sum(m.log1p(x)), OPEN),
    ("expm1", lambda x, m: m.sum(m.expm1(x) ** 2), A),
    ("log2", lambda x, m: m.sum(m.log2(x) * x), POS),
    ("log10", lambda x, m: m.sum(m.log10(x) ** 2), POS),
    ("cosh", lambda x, m: m.sum(m.cosh(x) * x), A),
    ("sinh", lambda x, m: m.sum(m.sinh(x) ** 2), A),
    ("arcsin", lambda x, m: m.sum(m.arcsin(x) ** 2), OPEN),
    ("arccos", lambda x, m: m.sum(m.arccos(x) * x), OPEN),
    ("arctan", lambda x, m: m.sum(m.arctan(3.0 * x)), A),
    ("arctan2", lambda x, m: m.sum(m.arctan2(x, x[::-1] + 0.3)), A),
    ("logaddexp", lambda x, m: m.sum(m.logaddexp(x, 2.0 * x[::-1])), A),
    ("mod", lambda x, m: m.sum(m.mod(x * 3.0, 1.7) * x), OPEN),
    ("einsum", lambda x, m: m.sum(m.einsum("ij,kj->ik", x, x) ** 2), A),
    ("einsum trace", lambda x, m: m.einsum("ii", x[:, :3]) * m.einsum("...j,j", x, V)[1], A,
     lambda x, m: m.trace(x[:, :3]) * m.dot(x, V)[1]),
    ("tensordot", lambda x, m: m.sum(m.tensordot(x, m.sin(x), axes=([1], [1])) ** 2), A),
    ("outer", lambda x, m: m.sum(m.sin(m.outer(x[0], x[1:]))), A,
     lambda x, m: m.sum(m.sin(m.outer(x[0], m.ravel(x[1:]))))),
    ("inner", lambda x, m: m.sum(m.inner(x, x) ** 2) + m.inner(x[0], V), A),
    ("trace", lambda x, m: m.trace(x, 1) * m.trace(x), A),
    ("diag", lambda x, m: m.sum(m.diag(m.diag(x, 1)) @ x), A,
     lambda x, m: m.sum(m.diag(m.stack([x[i, i + 1] for i in range(3)])) @ x)),
    ("kron", lambda x, m: m.sum(m.kron(x[:2, :2], x) ** 2), A),
    ("prod", lambda x, m: m.sum(m.prod(x, axis=1)) + m.prod(x[0]), A),
    ("min", lambda x, m: m.sum(m.min(x, axis=0) ** 2), A),
    ("var", lambda x, m: m.sum(m.var(x, axis=1)) + m.var(x, ddof=1), A),
    ("std", lambda x, m: m.sum(m.std(x, axis=0, keepdims=True)) + m.std(x), A),
    ("cumsum", lambda x, m: m.sum(m.cumsum(x, axis=1) ** 2) + m.sum(m.cumsum(x)), A),
    ("norm", lambda x, m: m.linalg.norm(x) + m.sum(m.linalg.norm(x, axis=1)), A),
    ("norm p", lambda x, m: m.sum(m.linalg.norm(x, ord=3, axis=0)), A),
    ("solve", lambda x, m: m.sum(m.linalg.solve(x, x[0]) ** 2), S),
    ("solve matrix", lambda x, m: m.sum(m.linalg.solve(x, x.T) ** 2), S),
    ("inv", lambda x, m: m.sum(m.linalg.inv(x) ** 2), S),
    ("det", lambda x, m: m.linalg.det(x) ** 2, S),
    ("slogdet", lambda x, m: m.linalg.slogdet(x)[1] * m.linalg.slogdet(x)[0], S),
]


# where autograd lacks a rule (flip, pad, sort of a matrix) or has a bug (the VJPs of outer of
# a matrix, diag of a non-square matrix, einsum "ii"), the oracle is the same function
# written with autograd's other operations
CASES = [case if len(case) == 4 else case + (case[1],) for case in CASES]
IDS = [case[0] for case in CASES]


@pytest.mark.parametrize("name,f,x,oracle", CASES, ids=IDS)
def test_value_and_gradient_match_autograd(name, f, x, oracle):
    value, gradient = ad.value_and_grad(lambda v: f(v, AD))(x)
    np.testing.assert_allclose(value, oracle(x, anp), rtol=1e-12)
    np.testing.assert_allclose(gradient, autograd.grad(lambda v: oracle(v, anp))(x),
                               rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name,f,x,oracle", CASES, ids=IDS)
def test_numpy_functions_route_to_the_rules(name, f, x, oracle):
    """np.tril(traced), np.linalg.solve(traced, …): numpy hands the call to our rule."""
    value, gradient = ad.value_and_grad(lambda v: f(v, np))(x)
    np.testing.assert_allclose(value, f(x, np), rtol=1e-12)
    np.testing.assert_allclose(gradient, ad.grad(lambda v: f(v, AD))(x), rtol=1e-12,
                               atol=1e-14)


@pytest.mark.filterwarnings("ignore:Output seems independent of input")
@pytest.mark.parametrize("name,f,x,oracle", CASES, ids=IDS)
def test_hessians_match_autograd_in_three_nestings(name, f, x, oracle):
    flat = x.ravel()

    def of_flat(v, m, fn):
        return fn(m.reshape(v, x.shape), m)

    def ours(v):
        return of_flat(v, AD, f)

    H = ad.hessian(ours)(flat)  # forward over reverse
    np.testing.assert_allclose(H, autograd.hessian(lambda v: of_flat(v, anp, oracle))(flat),
                               rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ad.jacrev(ad.grad(ours))(flat), H, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(ad.jacfwd(ad.jacfwd(ours))(flat), H, rtol=1e-9, atol=1e-10)


def test_prod_is_right_at_zeros_where_dividing_would_fail():
    x = np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 5.0], [1.0, 2.0, 4.0]])
    g = ad.grad(lambda v: ad.sum(ad.prod(v, axis=1)))(x)
    np.testing.assert_array_equal(g, [[0.0, 6.0, 0.0], [0.0, 0.0, 0.0], [8.0, 4.0, 2.0]])
    H = ad.hessian(lambda v: ad.prod(v))(np.array([2.0, 0.0, 3.0]))
    np.testing.assert_array_equal(H, [[0.0, 3.0, 0.0], [3.0, 0.0, 2.0], [0.0, 2.0, 0.0]])


def test_slogdet_gives_a_constant_sign_and_a_differentiable_log():
    sign, log = ad.slogdet(ad.ReverseDiff(-S))
    assert sign == np.linalg.slogdet(-S)[0] and isinstance(log, ad.ReverseDiff)
    log.backward()
    np.testing.assert_allclose(log.inputs[0].grad, np.linalg.inv(-S).T)


def test_clip_with_traced_limits_differentiates_the_limits_too():
    g = ad.grad(lambda lo: ad.sum(ad.clip(np.array([-2.0, 0.0, 2.0]), lo, 1.0)))(-1.0)
    assert g == 1.0  # only the first entry is held at the lower limit


def test_infinity_norm_and_einsum_with_an_ellipsis():
    x = np.array([1.0, -4.0, 2.0])
    assert ad.grad(lambda v: ad.norm(v, ord=np.inf))(x).tolist() == [0.0, -1.0, 0.0]
    B = rng.standard_normal((2, 3, 4))
    out = ad.einsum("...ij,j->...i", ad.ReverseDiff(B), V)
    np.testing.assert_allclose(out.value, np.einsum("...ij,j->...i", B, V))


def test_unsupported_forms_are_refused_with_the_reason():
    x = ad.ReverseDiff(A)
    with pytest.raises(NotImplementedError, match="pad: only mode='constant'"):
        ad.pad(x, 1, mode="reflect")
    with pytest.raises(TypeError, match="repeat: repeats must be a non-negative int"):
        ad.repeat(x, [1, 2, 3], axis=0)
    with pytest.raises(ValueError, match=r"squeeze: axis 0 of shape \(3, 4\) has size 3"):
        ad.squeeze(x, 0)
    with pytest.raises(NotImplementedError, match="norm: ord='nuc' over 2 axes has no rule"):
        ad.norm(x, ord="nuc")
    with pytest.raises(ValueError, match="einsum: the subscripts 'ij,jk' name 2 operands but 1"):
        ad.einsum("ij,jk", x)
    with pytest.raises(ValueError, match="tril: needs a matrix"):
        ad.tril(ad.ReverseDiff(V))


def test_methods_and_ufuncs_on_traced_values():
    x = ad.ReverseDiff(A)
    np.testing.assert_allclose(np.minimum(A, x).value, A)
    np.testing.assert_allclose(np.mod(x, 0.7).value, np.mod(A, 0.7))
    np.testing.assert_allclose(np.square(x).value, A**2)
    np.testing.assert_allclose(primal_value(np.amin(x, axis=1)), A.min(axis=1))


def test_array_methods_and_the_mod_operator_on_traced_values():
    def f(x):
        return (x.prod(axis=0).sum() + x.min() + x.var(ddof=1) + x.std(axis=1).sum()
                + x.cumsum(axis=1).sum() + x.clip(-0.5, 0.5).sum() + x[None].squeeze(0).sum()
                + (x.ravel() * x.flatten()).sum() + x.swapaxes(0, 1)[0, 1]
                + x.repeat(2, axis=0).sum() + x.trace() + (x % 0.7).sum() + (2.0 % (x + 5.0)).sum())

    def g(x):
        return (anp.sum(anp.prod(x, axis=0)) + anp.min(x) + anp.var(x, ddof=1)
                + anp.sum(anp.std(x, axis=1)) + anp.sum(anp.cumsum(x, axis=1))
                + anp.sum(anp.clip(x, -0.5, 0.5)) + anp.sum(x) + anp.sum(x * x) + x[1, 0]
                + 2 * anp.sum(x) + anp.trace(x) + anp.sum(anp.mod(x, 0.7))
                + anp.sum(anp.mod(2.0, x + 5.0)))

    np.testing.assert_allclose(ad.grad(f)(A), autograd.grad(g)(A), rtol=1e-10)
