"""Contraction rules: einsum, tensordot, outer, inner, trace, diag and kron.

A contraction is linear in each input, so its tangent in one input is the same contraction
with that input replaced by its tangent, and its adjoint is another contraction: the
cotangent against the other inputs, summed back to the input's indices. ``einsum`` says all
of that in its subscripts, so ``tensordot`` and ``inner`` build theirs and reuse the einsum
helpers. One record per primitive, as in ``course_ad.rules``.
"""

from __future__ import annotations

import numpy as np

from . import ops
from .dispatch import primal_value, shape_of, zeros
from .einsum_notation import LETTERS, fresh_letters, parse
from .registry import Rule, register
from .rules import _batch, _with_batch

__all__: list[str] = []


# --------------------------------------------------------------------------------------
# einsum: one helper for tangents, one for cotangents, shared by tensordot and inner
# --------------------------------------------------------------------------------------


def _contract_tangent(spec, k, tangent, xs):
    """The contraction with input k replaced by its tangent, batch axes kept in front."""
    terms, output = parse(spec)
    batch = fresh_letters(spec, len(_batch(tangent, xs[k])))
    terms[k] = batch + terms[k]
    operands = list(xs)
    operands[k] = tangent
    return ops.einsum(",".join(terms) + "->" + batch + output, *operands)


def _contract_cotangent(spec, k, g, xs):
    """x̄ₖ: the cotangent contracted with the other inputs onto xₖ's indices.

    A letter repeated in xₖ's term (a diagonal, as in "ii") gets a fresh letter tied to the
    first by an identity matrix; a letter only xₖ has (summed away alone) gets a ones vector,
    so that the cotangent is copied along it."""
    terms, output = parse(spec)
    term, shape = terms[k], shape_of(xs[k])
    specs = [output] + terms[:k] + terms[k + 1:]
    operands = [g] + list(xs[:k]) + list(xs[k + 1:])
    known = set("".join(specs))
    spare = iter(fresh_letters(spec, len(term)))
    dtype = np.result_type(primal_value(g))  # float32 cotangents stay float32
    result = ""
    for position, letter in enumerate(term):
        if letter in result:
            fresh = next(spare)
            specs.append(letter + fresh)
            operands.append(np.eye(shape[position], dtype=dtype))
            letter = fresh
        elif letter not in known:
            specs.append(letter)
            operands.append(np.ones(shape[position], dtype=dtype))
            known.add(letter)
        result += letter
    return ops.einsum(",".join(specs) + "->" + result, *operands)


def einsum_jvp(tangents, out, *xs, subscripts):
    """V̇ = Σₖ einsum(…, Ẋₖ, …): the product rule, one term per input"""
    total = None
    for k, t in enumerate(tangents):
        if type(t) is np.ndarray and not t.any():  # a constant's zero tangent adds nothing
            continue
        term = _contract_tangent(subscripts, k, t, xs)
        total = term if total is None else total + term
    if total is None:
        return zeros(shape_of(tangents[0])[:len(_batch(tangents[0], xs[0]))] + shape_of(out))
    return total


def einsum_vjp(g, out, *xs, subscripts, argnum):
    """X̄ₖ += einsum of V̄ with the other inputs, onto the indices of Xₖ"""
    return _contract_cotangent(subscripts, argnum, g, xs)


def _einsum(*xs, subscripts):
    return np.einsum(subscripts, *xs)


def _einsum_examples(rng):
    def r(*shape):
        return rng.standard_normal(shape)

    return [((r(2, 3), r(3, 4)), {"subscripts": "ij,jk->ik"}),
            ((r(3, 3),), {"subscripts": "ii->"}), ((r(3, 3),), {"subscripts": "ii->i"}),
            ((r(2, 3), r(3), r(2)), {"subscripts": "ij,j,i->"}),
            ((r(2, 3, 4),), {"subscripts": "ijk->kj"}),
            ((r(2, 3), r(4)), {"subscripts": "ij,k->ijk"})]


register(Rule("einsum", _einsum, (einsum_jvp,), (einsum_vjp,), "einsum",
              r"V = \textstyle\sum_{\text{shared}} X_1 \cdots X_n",
              r"\dot V = \textstyle\sum_k \operatorname{einsum}(\dots, \dot X_k, \dots)",
              r"\bar X_k \mathrel{+}= \operatorname{einsum}(\bar V, X_{j \ne k})",
              variadic=True, examples=_einsum_examples))


# --------------------------------------------------------------------------------------
# tensordot and inner: contractions over chosen axis pairs
# --------------------------------------------------------------------------------------


def _pairing_spec(na, nb, axes_a, axes_b):
    """einsum subscripts of tensordot(a, b, (axes_a, axes_b)): shared letters on the pairs."""
    a = LETTERS[:na]
    b = list(LETTERS[na:na + nb])
    for i, j in zip(axes_a, axes_b):
        b[j] = a[i]
    b = "".join(b)
    free_a = "".join(c for i, c in enumerate(a) if i not in axes_a)
    free_b = "".join(c for j, c in enumerate(b) if j not in axes_b)
    return f"{a},{b}->{free_a}{free_b}"


def _tensordot_spec(a, b, axes):
    return _pairing_spec(len(shape_of(a)), len(shape_of(b)), *axes)


def tensordot_jvp_a(da, out, a, b, *, axes):
    """V̇ += tensordot(Ȧ, B)"""
    return _contract_tangent(_tensordot_spec(a, b, axes), 0, da, (a, b))


def tensordot_jvp_b(db, out, a, b, *, axes):
    """V̇ += tensordot(A, Ḃ)"""
    return _contract_tangent(_tensordot_spec(a, b, axes), 1, db, (a, b))


def tensordot_vjp_a(g, out, a, b, *, axes):
    """Ā += V̄ contracted with B over B's free axes"""
    return _contract_cotangent(_tensordot_spec(a, b, axes), 0, g, (a, b))


def tensordot_vjp_b(g, out, a, b, *, axes):
    """B̄ += A contracted with V̄ over A's free axes"""
    return _contract_cotangent(_tensordot_spec(a, b, axes), 1, g, (a, b))


def _inner_spec(a, b):
    na, nb = len(shape_of(a)), len(shape_of(b))
    return _pairing_spec(na, nb, (na - 1,), (nb - 1,))


def inner_jvp_a(da, out, a, b):
    """v̇ += ⟨ȧ, b⟩ over the last axes"""
    return _contract_tangent(_inner_spec(a, b), 0, da, (a, b))


def inner_jvp_b(db, out, a, b):
    """v̇ += ⟨a, ḃ⟩ over the last axes"""
    return _contract_tangent(_inner_spec(a, b), 1, db, (a, b))


def inner_vjp_a(g, out, a, b):
    """ā += v̄ b"""
    return _contract_cotangent(_inner_spec(a, b), 0, g, (a, b))


def inner_vjp_b(g, out, a, b):
    """b̄ += v̄ a"""
    return _contract_cotangent(_inner_spec(a, b), 1, g, (a, b))


def _tensordot(a, b, *, axes):
    return np.tensordot(a, b, axes)


def _tensordot_examples(rng):
    def r(*shape):
        return rng.standard_normal(shape)

    return [((r(2, 3), r(3, 4)), {"axes": ((1,), (0,))}),
            ((r(2, 3, 4), r(4, 3)), {"axes": ((1, 2), (1, 0))}),
            ((r(2, 3), r(2, 3)), {"axes": ((0, 1), (0, 1))}), ((r(2), r(3)), {"axes": ((), ())})]


def _inner_examples(rng):
    def r(*shape):
        return rng.standard_normal(shape)

    return [((r(3), r(3)), {}), ((r(2, 3), r(4, 3)), {}), ((r(2, 2, 3), r(3)), {})]


register(Rule("tensordot", _tensordot, (tensordot_jvp_a, tensordot_jvp_b),
              (tensordot_vjp_a, tensordot_vjp_b), "⊗·",
              r"V = \textstyle\sum_{\text{paired axes}} A B",
              r"\dot V = \operatorname{td}(\dot A, B) + \operatorname{td}(A, \dot B)",
              r"\bar A \mathrel{+}= \operatorname{td}(\bar V, B),\; "
              r"\bar B \mathrel{+}= \operatorname{td}(A, \bar V)", examples=_tensordot_examples))
register(Rule("inner", np.inner, (inner_jvp_a, inner_jvp_b), (inner_vjp_a, inner_vjp_b), "⟨·,·⟩",
              r"V = \textstyle\sum_k A_{k} B_{k} \text{ over the last axes}",
              r"\dot V = \langle \dot A, B \rangle + \langle A, \dot B \rangle",
              r"\bar A \mathrel{+}= \bar V B,\; \bar B \mathrel{+}= \bar V A",
              examples=_inner_examples))


# --------------------------------------------------------------------------------------
# outer and kron: every product of an entry of a with an entry of b
# --------------------------------------------------------------------------------------


def outer_jvp_a(da, out, a, b):
    """V̇ += ȧ bᵀ"""
    column = ops.reshape(da, _batch(da, a) + (_size(a), 1))
    return column * ops.ravel(b)


def outer_jvp_b(db, out, a, b):
    """V̇ += a ḃᵀ"""
    row = ops.reshape(db, _batch(db, b) + (1, _size(b)))
    return ops.reshape(ops.ravel(a), (_size(a), 1)) * row


def outer_vjp_a(g, out, a, b):
    """ā += V̄ b"""
    return ops.reshape(ops.matmul(g, ops.ravel(b)), shape_of(a))


def outer_vjp_b(g, out, a, b):
    """b̄ += V̄ᵀ a"""
    return ops.reshape(ops.matmul(ops.ravel(a), g), shape_of(b))


def _size(x):
    return int(np.prod(shape_of(x)))


def _kron_shapes(a, b):
    """a's and b's shapes, the shorter padded with leading 1s, as numpy pads them."""
    sa, sb = shape_of(a), shape_of(b)
    n = max(len(sa), len(sb))
    return (1,) * (n - len(sa)) + sa, (1,) * (n - len(sb)) + sb


def kron_jvp_a(da, out, a, b):
    """V̇ += kron(Ȧ, B)"""
    sa, sb = _kron_shapes(a, b)
    batch = _batch(da, a)
    spread = ops.reshape(da, batch + tuple(n for m in sa for n in (m, 1)))
    blocks = ops.reshape(b, tuple(n for m in sb for n in (1, m)))
    return ops.reshape(spread * blocks, batch + shape_of(out))


def kron_jvp_b(db, out, a, b):
    """V̇ += kron(A, Ḃ)"""
    sa, sb = _kron_shapes(a, b)
    batch = _batch(db, b)
    spread = ops.reshape(a, tuple(n for m in sa for n in (m, 1)))
    blocks = ops.reshape(db, batch + tuple(n for m in sb for n in (1, m)))
    return ops.reshape(spread * blocks, batch + shape_of(out))


def kron_vjp_a(g, out, a, b):
    """Ā[i] += Σ over block i of V̄ ∘ B"""
    sa, sb = _kron_shapes(a, b)
    pairs = ops.reshape(g, tuple(n for pair in zip(sa, sb) for n in pair))
    weighted = pairs * ops.reshape(b, tuple(n for m in sb for n in (1, m)))
    summed = ops.sum(weighted, axis=tuple(range(1, 2 * len(sa), 2)))
    return ops.reshape(summed, shape_of(a))


def kron_vjp_b(g, out, a, b):
    """B̄ += Σᵢ A[i] times block i of V̄"""
    sa, sb = _kron_shapes(a, b)
    pairs = ops.reshape(g, tuple(n for pair in zip(sa, sb) for n in pair))
    weighted = pairs * ops.reshape(a, tuple(n for m in sa for n in (m, 1)))
    summed = ops.sum(weighted, axis=tuple(range(0, 2 * len(sa), 2)))
    return ops.reshape(summed, shape_of(b))


def _outer_examples(rng):
    return [((rng.standard_normal(3), rng.standard_normal(2)), {}),
            ((rng.standard_normal((2, 2)), rng.standard_normal(3)), {}), ((1.5, np.ones(2)), {})]


def _kron_examples(rng):
    def r(*shape):
        return rng.standard_normal(shape)

    return [((r(2, 2), r(2, 3)), {}), ((r(3), r(2)), {}), ((r(2), r(2, 3)), {})]


register(Rule("outer", np.outer, (outer_jvp_a, outer_jvp_b), (outer_vjp_a, outer_vjp_b), "⊗",
              r"V = a b^\top", r"\dot V = \dot a b^\top + a \dot b^\top",
              r"\bar a \mathrel{+}= \bar V b,\; \bar b \mathrel{+}= \bar V^\top a",
              examples=_outer_examples))
register(Rule("kron", np.kron, (kron_jvp_a, kron_jvp_b), (kron_vjp_a, kron_vjp_b), "⊗ₖ",
              r"V = A \otimes B", r"\dot V = \dot A \otimes B + A \otimes \dot B",
              r"\bar A_{i} \mathrel{+}= \langle \bar V_{(i)}, B \rangle,\; "
              r"\bar B \mathrel{+}= \textstyle\sum_i A_i \bar V_{(i)}", examples=_kron_examples))


# --------------------------------------------------------------------------------------
# trace and diag: diagonals taken out or put in
# --------------------------------------------------------------------------------------


def trace_jvp(dx, out, x, *, offset, axis1, axis2):
    """v̇ = trace(Ẋ)"""
    nb = len(_batch(dx, x))
    return ops.trace(dx, offset, axis1 + nb, axis2 + nb)


def trace_vjp(g, out, x, *, offset, axis1, axis2):
    """X̄ += v̄ on the diagonal (an identity between the two axes)"""
    shape = shape_of(x)
    kept = tuple(n for i, n in enumerate(shape) if i not in (axis1, axis2))
    expanded = tuple(1 if i in (axis1, axis2) else n for i, n in enumerate(shape))
    eye = np.eye(shape[axis1], shape[axis2], offset, dtype=np.result_type(primal_value(g)))
    mask = np.reshape(eye if axis1 < axis2 else eye.T,
                      tuple(n if i in (axis1, axis2) else 1 for i, n in enumerate(shape)))
    return ops.reshape(g, expanded) * mask if kept else g * mask


def diag_jvp(dx, out, x, *, k):
    """V̇ = diag(Ẋ)"""
    nb = len(_batch(dx, x))
    index = _diagonal(x, k)
    if len(shape_of(x)) == 2:
        return ops.getitem(dx, _with_batch(index, nb))
    return ops.scatter_add(dx, index=_with_batch(index, nb), shape=_batch(dx, x) + shape_of(out))


def diag_vjp(g, out, x, *, k):
    """X̄ += diag(V̄): taking a diagonal and putting one in are adjoint"""
    index = _diagonal(x, k)
    if len(shape_of(x)) == 2:
        return ops.scatter_add(g, index=index, shape=shape_of(x))
    return ops.getitem(g, index)


def _diagonal(x, k):
    """(rows, columns) of the k-th diagonal of x (a matrix) or of diag(x) (x a vector)."""
    shape = shape_of(x)
    n = max(0, min(shape[0] + min(k, 0), shape[1] - max(k, 0))) if len(shape) == 2 else shape[0]
    steps = np.arange(n)
    return steps + max(-k, 0), steps + max(k, 0)


def _trace(x, *, offset, axis1, axis2):
    return np.trace(x, offset, axis1, axis2)


def _diag(x, *, k):
    return np.diag(x, k)


def _trace_examples(rng):
    return [((rng.standard_normal((3, 3)),), {"offset": 0, "axis1": 0, "axis2": 1}),
            ((rng.standard_normal((3, 4)),), {"offset": 1, "axis1": 0, "axis2": 1}),
            ((rng.standard_normal((2, 3, 3)),), {"offset": -1, "axis1": 2, "axis2": 1})]


def _diag_examples(rng):
    return [((rng.standard_normal((3, 3)),), {"k": 0}), ((rng.standard_normal((3, 4)),),
                                                         {"k": 1}),
            ((rng.standard_normal(3),), {"k": 0}), ((rng.standard_normal(2),), {"k": -1})]


register(Rule("trace", _trace, (trace_jvp,), (trace_vjp,), "tr",
              r"v = \textstyle\sum_i X_{ii}", r"\dot v = \operatorname{tr} \dot X",
              r"\bar X \mathrel{+}= \bar v I", examples=_trace_examples))
register(Rule("diag", _diag, (diag_jvp,), (diag_vjp,), "diag",
              r"V = \operatorname{diag}(X)", r"\dot V = \operatorname{diag}(\dot X)",
              r"\bar X \mathrel{+}= \operatorname{diag}(\bar V)", examples=_diag_examples))
