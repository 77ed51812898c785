"""Linear-algebra rules: norm, solve, inv, det and log |det| (the differentiable half of slogdet).

The matrix rules act on the last two axes and broadcast over any axes in front, like
numpy's; their derivatives come from differentiating A A⁻¹ = I: d(A⁻¹) = -A⁻¹ dA A⁻¹, and
d det A = det A · tr(A⁻¹ dA). They are written with the generic operations (``ops.inv``,
``ops.solve``, ``ops.matmul``), so they differentiate again. One record per primitive.
"""

from __future__ import annotations

import numpy as np

from . import ops
from .dispatch import primal_value, shape_of
from .registry import Rule, register
from .rules import _from_right, _restore

__all__: list[str] = []


def _swap(a):
    """Aᵀ over the last two axes."""
    return ops.swapaxes(a, -1, -2)


def _corner(x):
    """A batch of numbers as a batch of 1 × 1 matrices, ready to scale matrices."""
    return ops.reshape(x, shape_of(x) + (1, 1))


# --------------------------------------------------------------------------------------
# norm: ‖x‖ₚ = (Σ |xᵢ|ᵖ)^(1/p) over the given axes (p = 2 for the Frobenius norm)
# --------------------------------------------------------------------------------------


def _norm_weights(x, out, p, axis, keepdims):
    """∂‖x‖ₚ/∂xᵢ = sign(xᵢ) (|xᵢ| / ‖x‖ₚ)^(p-1): x / ‖x‖ for p = 2, sign(x) for p = 1."""
    scale = _restore(out, x, axis, keepdims)
    if p == 2.0:
        return x / scale
    sign = np.sign(primal_value(x))
    if p == 1.0:
        return sign
    return sign * (ops.abs(x) / scale) ** (p - 1.0)


def norm_jvp(dx, out, x, *, p, axis, keepdims):
    """v̇ = Σ sign(x) (|x| / v)^(p-1) ẋ  (= ⟨x, ẋ⟩ / v for p = 2)"""
    weights = _norm_weights(x, out, p, axis, keepdims)
    return ops.sum(dx * weights, axis=_from_right(axis, len(shape_of(x))), keepdims=keepdims)


def norm_vjp(g, out, x, *, p, axis, keepdims):
    """x̄ += v̄ sign(x) (|x| / v)^(p-1)  (= v̄ x / v for p = 2)"""
    return _restore(g, x, axis, keepdims) * _norm_weights(x, out, p, axis, keepdims)


def _norm(x, *, p, axis, keepdims):
    if p == 2.0:
        return np.sqrt(np.add.reduce(x * x, axis=axis, keepdims=keepdims))
    return np.add.reduce(np.abs(x) ** p, axis=axis, keepdims=keepdims) ** (1.0 / p)


def _norm_examples(rng):
    x = rng.standard_normal((3, 4))
    return [((x,), {"p": 2.0, "axis": None, "keepdims": False}),
            ((x,), {"p": 2.0, "axis": (1,), "keepdims": True}),
            ((x,), {"p": 1.0, "axis": (0,), "keepdims": False}),
            ((x,), {"p": 3.0, "axis": (1,), "keepdims": False})]


register(Rule("norm", _norm, (norm_jvp,), (norm_vjp,), "‖·‖",
              r"v = \big(\sum_i |x_i|^p\big)^{1/p}",
              r"\dot v = \sum_i \operatorname{sign}(x_i) (|x_i| / v)^{p-1} \dot x_i",
              r"\bar x_i \mathrel{+}= \bar v \operatorname{sign}(x_i) (|x_i| / v)^{p-1}",
              examples=_norm_examples))


# --------------------------------------------------------------------------------------
# solve: x = A⁻¹ b, for b a vector (1-D) or a matrix of right-hand sides
# --------------------------------------------------------------------------------------


def _columns(b, like):
    """b as columns: a vector right-hand side (``like`` is 1-D) gets a trailing axis."""
    return ops.reshape(b, shape_of(b) + (1,)) if len(shape_of(like)) == 1 else b


def _uncolumns(x, like):
    return ops.reshape(x, shape_of(x)[:-1]) if len(shape_of(like)) == 1 else x


def solve_jvp_a(da, out, a, b):
    """ẋ += -A⁻¹ Ȧ x"""
    return -_uncolumns(ops.solve(a, ops.matmul(da, _columns(out, b))), b)


def solve_jvp_b(db, out, a, b):
    """ẋ += A⁻¹ ḃ"""
    return _uncolumns(ops.solve(a, _columns(db, b)), b)


def solve_vjp_a(g, out, a, b):
    """Ā += -b̄ xᵀ, with b̄ = A⁻ᵀ x̄"""
    b_bar = ops.solve(_swap(a), _columns(g, b))
    return -ops.matmul(b_bar, _swap(_columns(out, b)))


def solve_vjp_b(g, out, a, b):
    """b̄ += A⁻ᵀ x̄"""
    return _uncolumns(ops.solve(_swap(a), _columns(g, b)), b)


def _square_matrices(rng, *batch, n=3):
    """Well-conditioned test matrices: the identity times n plus a random perturbation."""
    return rng.standard_normal(batch + (n, n)) + n * np.eye(n)


def _solve_examples(rng):
    return [((_square_matrices(rng), rng.standard_normal(3)), {}),
            ((_square_matrices(rng), rng.standard_normal((3, 2))), {}),
            ((_square_matrices(rng, 2), rng.standard_normal(3)), {}),
            ((_square_matrices(rng), rng.standard_normal((2, 3, 2))), {})]


register(Rule("solve", np.linalg.solve, (solve_jvp_a, solve_jvp_b), (solve_vjp_a, solve_vjp_b),
              "A⁻¹b", r"x = A^{-1} b", r"\dot x = A^{-1} (\dot b - \dot A x)",
              r"\bar b \mathrel{+}= A^{-\top} \bar x,\; \bar A \mathrel{-}= \bar b\, x^\top",
              broadcasts=True, examples=_solve_examples))


# --------------------------------------------------------------------------------------
# inv, det, log |det|
# --------------------------------------------------------------------------------------


def inv_jvp(da, out, a):
    """V̇ = -V Ȧ V"""
    return -ops.matmul(out, ops.matmul(da, out))


def inv_vjp(g, out, a):
    """Ā += -Vᵀ V̄ Vᵀ"""
    return -ops.matmul(_swap(out), ops.matmul(g, _swap(out)))


def det_jvp(da, out, a):
    """v̇ = v tr(A⁻¹ Ȧ)"""
    return out * ops.sum(_swap(ops.inv(a)) * da, axis=(-2, -1))


def det_vjp(g, out, a):
    """Ā += v̄ v A⁻ᵀ"""
    return _corner(g * out) * _swap(ops.inv(a))


def logabsdet_jvp(da, out, a):
    """v̇ = tr(A⁻¹ Ȧ)"""
    return ops.sum(_swap(ops.inv(a)) * da, axis=(-2, -1))


def logabsdet_vjp(g, out, a):
    """Ā += v̄ A⁻ᵀ"""
    return _corner(g) * _swap(ops.inv(a))


def _logabsdet(a):
    return np.linalg.slogdet(a)[1]


def _matrix_examples(rng):
    return [((_square_matrices(rng),), {}), ((_square_matrices(rng, 2, n=2),), {}),
            ((-_square_matrices(rng, n=2),), {})]


register(Rule("inv", np.linalg.inv, (inv_jvp,), (inv_vjp,), "A⁻¹",
              r"V = A^{-1}", r"\dot V = -V \dot A V", r"\bar A \mathrel{-}= V^\top \bar V V^\top",
              examples=_matrix_examples))
register(Rule("det", np.linalg.det, (det_jvp,), (det_vjp,), "det",
              r"v = \det A", r"\dot v = v \operatorname{tr}(A^{-1} \dot A)",
              r"\bar A \mathrel{+}= \bar v\, v A^{-\top}", examples=_matrix_examples))
register(Rule("logabsdet", _logabsdet, (logabsdet_jvp,), (logabsdet_vjp,), "log|det|",
              r"v = \log |\det A|", r"\dot v = \operatorname{tr}(A^{-1} \dot A)",
              r"\bar A \mathrel{+}= \bar v A^{-\top}", examples=_matrix_examples))
