"""Random compositions of every primitive against HIPS autograd as the oracle.

10,000 random expression trees per run, of Python floats and arrays with broadcasting,
each checked at order 1 (reverse gradient, forward tangent) and order 2 (reverse over
reverse Hessian-vector products, forward over reverse uᵀHv) in both libraries. Trees are
built for a target shape from the top: each operation knows which input shapes give its
output shape, so every tree is well formed by construction. A batch of trees is summed
into one function with separate inputs per tree, so one call checks the whole batch and a
mismatch still points at its tree (the Jacobian is block diagonal).
"""

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from autograd.scipy.special import logsumexp as autograd_logsumexp

import course_ad as ad
from course_ad.rules import RULES

N_TREES = 10_000
BATCH = 100  # trees per call: one function, one gradient, one order-2 sweep
MAX_NODES = 12  # per tree, leaves included
MAX_NDIM = 4
MAX_SIZE = 36


# --------------------------------------------------------------------------------------
# The operations: for a target shape, the input shapes and parameters that produce it
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """One way to call a primitive: shapes for a target, our form and autograd's form."""

    name: str
    rules: tuple[str, ...]  # the rules of course_ad this form exercises
    inputs: Callable  # (rng, target shape) -> (input shapes, params), or None if impossible
    ours: Callable
    theirs: Callable


def _broadcasts_to(rng, t):
    """A shape that broadcasts to t: leading axes dropped, some axes of size 1."""
    kept = t[int(rng.integers(0, len(t) + 1)):]
    return tuple(1 if rng.random() < 0.3 else n for n in kept)


def _same(rng, t):
    return [t], {}


def _offset(rng, t):
    """A random offset keeps non-smooth points (relu, abs, maximum) away from exact ties."""
    return [t], {"c": float(rng.choice([-1, 1]) * rng.uniform(0.1, 0.9))}


def _pair(rng, t):
    shapes = [t, _broadcasts_to(rng, t)]
    return (shapes if rng.random() < 0.5 else shapes[::-1]), {}


def _pair_offset(rng, t):
    shapes, _ = _pair(rng, t)
    return shapes, _offset(rng, t)[1]


def _power_int(rng, t):
    return [t], {"n": int(rng.choice([2, 3]))}


def _reduction(rng, t):
    """sum, mean, max, logsumexp: over everything, over one axis, or keeping it as 1."""
    k = int(rng.integers(1, 4))
    choice = rng.random()
    if t == () and choice < 0.5:
        return [tuple(int(n) for n in rng.integers(1, 4, rng.integers(1, 3)))], \
            {"axis": None, "keepdims": False}
    ones = [i for i, n in enumerate(t) if n == 1]
    if ones and choice < 0.75:
        p = int(rng.choice(ones))
        return [t[:p] + (k,) + t[p + 1:]], {"axis": p, "keepdims": True}
    p = int(rng.integers(0, len(t) + 1))
    return [t[:p] + (k,) + t[p:]], {"axis": p - len(t) - 1 if rng.random() < 0.5 else p,
                                    "keepdims": False}


def _matmul(rng, t):
    """Every pairing of ranks: vector·vector, stack@vector, vector@stack, stack@stack."""
    k = int(rng.integers(1, 4))
    if t == ():
        return [(k,), (k,)], {}
    options = [[t + (k,), (k,)], [(k,), t[:-1] + (k,) + t[-1:]]]
    if len(t) >= 2:
        lead = [t[:-2], _broadcasts_to(rng, t[:-2])]
        if rng.random() < 0.5:
            lead = lead[::-1]
        options.append([lead[0] + (t[-2], k), lead[1] + (k, t[-1])])
    return options[int(rng.integers(len(options)))], {}


def _dot(rng, t):
    """numpy's dot: t = a.shape[:-1] + b.shape[:-2] + b.shape[-1:]."""
    k = int(rng.integers(1, 4))
    if t == ():
        return [(k,), (k,)], {}
    i = int(rng.integers(0, len(t)))
    return [t[:i] + (k,), t[i:-1] + (k,) + t[-1:]], {}


def _transpose(rng, t):
    if len(t) < 2:
        return None
    axes = tuple(int(a) for a in rng.permutation(len(t)))
    shape = [0] * len(t)
    for i, a in enumerate(axes):
        shape[a] = t[i]
    return [tuple(shape)], {"axes": axes}


def _reshape(rng, t):
    n = math.prod(t)
    options = [s for s in [(n,), t[::-1], (1,) + t, t + (1,), ()] if s != t and math.prod(s) == n]
    return [options[int(rng.integers(len(options)))]], {"shape": t}


def _broadcast_to(rng, t):
    return [_broadcasts_to(rng, t)], {"shape": t}


def _getitem(rng, t):
    """A slice, an integer, an integer array with repeats, a boolean mask, a second axis."""
    if not t:
        return [(2,)], {"index": int(rng.integers(-2, 2))}
    kinds = ["slice", "int", "array"] + ["mask"] * (len(t) == 1) + ["inner"] * (len(t) >= 2)
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind == "slice":
        return [(t[0] + 1,) + t[1:]], {"index": slice(1, None)}
    if kind == "int":
        return [(2,) + t], {"index": int(rng.integers(-2, 2))}
    if kind == "array":
        return [(3,) + t[1:]], {"index": rng.integers(0, 3, t[0])}
    if kind == "mask":
        mask = np.zeros(t[0] + 1, dtype=bool)
        mask[rng.permutation(t[0] + 1)[: t[0]]] = True
        return [(t[0] + 1,)], {"index": mask}
    return [t[:1] + (t[1] + 1,) + t[2:]], {"index": (slice(None), slice(0, t[1]))}


def _scatter_add(rng, t):
    if not t:
        return None
    j = int(rng.integers(1, 4))
    return [(j,) + t[1:]], {"index": rng.integers(0, t[0], j), "shape": t}


def _stack(rng, t):
    if not t:
        return None
    axis = int(rng.integers(len(t)))
    inner = t[:axis] + t[axis + 1:]
    return [inner] * t[axis], {"axis": axis if rng.random() < 0.5 else axis - len(t)}


def _concatenate(rng, t):
    axes = [i for i, n in enumerate(t) if n >= 2]
    if not axes:
        return None
    axis = int(rng.choice(axes))
    m = int(rng.integers(1, t[axis]))
    return [t[:axis] + (m,) + t[axis + 1:], t[:axis] + (t[axis] - m,) + t[axis + 1:]], \
        {"axis": axis}


def _cross_entropy(rng, t):
    if t != ():
        return None
    n, k = int(rng.integers(1, 4)), int(rng.integers(2, 4))
    return [(n, k)], {"labels": rng.integers(0, k, n)}


def _scatter_theirs(g, index, shape):
    """scatter_add as a product with a constant 0/1 matrix (autograd has no np.add.at)."""
    onehot = np.zeros((shape[0], len(index)))
    onehot[index, np.arange(len(index))] = 1.0
    return anp.reshape(anp.dot(onehot, anp.reshape(g, (len(index), -1))), shape)


def _cross_entropy_theirs(z, labels):
    rows = anp.arange(len(labels))
    return anp.mean(autograd_logsumexp(z, axis=1) - z[rows, labels])


def _broadcast_theirs(a, shape):
    """autograd's broadcast_to needs as many axes as the target: add the leading ones."""
    padded = (1,) * (len(shape) - anp.ndim(a)) + anp.shape(a)
    return anp.broadcast_to(anp.reshape(a, padded), shape)


def _sigmoid_theirs(a):
    return 0.5 * (anp.tanh(0.5 * a) + 1.0)


OPERATIONS = [
    Operation("neg", ("neg",), _same, lambda a: -a, lambda a: -a),
    Operation("add", ("add",), _pair, lambda a, b: a + b, lambda a, b: a + b),
    Operation("sub", ("sub",), _pair, lambda a, b: a - b, lambda a, b: a - b),
    Operation("mul", ("mul",), _pair, lambda a, b: a * b, lambda a, b: a * b),
    Operation("div", ("div",), _pair, lambda a, b: a / (1.5 + b * b),
              lambda a, b: a / (1.5 + b * b)),
    Operation("pow", ("pow",), _pair, lambda a, b: (1.0 + a * a) ** ad.tanh(b),
              lambda a, b: (1.0 + a * a) ** anp.tanh(b)),
    Operation("pow int", ("pow",), _power_int, lambda a, n: a**n, lambda a, n: a**n),
    Operation("rpow", ("pow",), _same, lambda a: 1.7 ** ad.tanh(a), lambda a: 1.7 ** anp.tanh(a)),
    Operation("exp", ("exp",), _same, lambda a: ad.exp(ad.tanh(a)),
              lambda a: anp.exp(anp.tanh(a))),
    Operation("np.exp", ("exp",), _same, lambda a: np.exp(np.cos(a)),
              lambda a: anp.exp(anp.cos(a))),
    Operation("log", ("log",), _same, lambda a: ad.log(1.0 + a * a),
              lambda a: anp.log(1.0 + a * a)),
    Operation("sin", ("sin",), _same, ad.sin, anp.sin),
    Operation("np.sin", ("sin",), _same, np.sin, anp.sin),
    Operation("cos", ("cos",), _same, ad.cos, anp.cos),
    Operation("tan", ("tan",), _same, lambda a: ad.tan(ad.tanh(a)),
              lambda a: anp.tan(anp.tanh(a))),
    Operation("sqrt", ("sqrt",), _same, lambda a: ad.sqrt(1.0 + a * a),
              lambda a: anp.sqrt(1.0 + a * a)),
    Operation("tanh", ("tanh",), _same, ad.tanh, anp.tanh),
    Operation("sigmoid", ("sigmoid",), _same, ad.sigmoid, _sigmoid_theirs),
    Operation("relu", ("relu",), _offset, lambda a, c: ad.relu(a + c),
              lambda a, c: anp.maximum(a + c, 0.0)),
    Operation("abs", ("abs",), _offset, lambda a, c: abs(a + c), lambda a, c: anp.abs(a + c)),
    Operation("maximum", ("maximum",), _pair_offset, lambda a, b, c: ad.maximum(a, b + c),
              lambda a, b, c: anp.maximum(a, b + c)),
    Operation("matmul", ("matmul",), _matmul, lambda a, b: a @ b, anp.matmul),
    Operation("np.dot", ("matmul", "reshape", "transpose"), _dot, np.dot, anp.dot),
    Operation("sum", ("sum",), _reduction, ad.sum, anp.sum),
    Operation("np.sum", ("sum",), _reduction, np.sum, anp.sum),
    Operation("mean", ("mean",), _reduction, ad.mean, anp.mean),
    Operation("max", ("max",), _reduction, ad.max, anp.max),
    Operation("logsumexp", ("logsumexp",), _reduction, ad.logsumexp, autograd_logsumexp),
    Operation("cross_entropy", ("cross_entropy",), _cross_entropy, ad.cross_entropy,
              _cross_entropy_theirs),
    Operation("reshape", ("reshape",), _reshape, ad.reshape,
              lambda a, shape: anp.reshape(a, shape)),
    Operation("transpose", ("transpose",), _transpose, np.transpose,
              lambda a, axes: anp.transpose(a, axes)),
    Operation("broadcast_to", ("broadcast_to",), _broadcast_to, ad.broadcast_to,
              lambda a, shape: _broadcast_theirs(a, shape)),
    Operation("getitem", ("getitem",), _getitem, lambda a, index: a[index],
              lambda a, index: a[index]),
    Operation("scatter_add", ("scatter_add",), _scatter_add, ad.scatter_add, _scatter_theirs),
    Operation("stack", ("stack",), _stack, lambda *xs, axis: ad.stack(xs, axis),
              lambda *xs, axis: anp.stack(xs, axis)),
    Operation("concatenate", ("concatenate",), _concatenate,
              lambda *xs, axis: ad.concatenate(xs, axis),
              lambda *xs, axis: anp.concatenate(xs, axis)),
    Operation("np.copy", (), _same, np.copy, lambda a: a),
]


# --------------------------------------------------------------------------------------
# The primitives of rules_elementwise, rules_shape, rules_contraction, rules_reduction and
# rules_linalg. Where autograd lacks a rule (flip, pad, sort of a matrix) or its rule fails
# (outer of a matrix, diag of a non-square matrix), their form is built from other ops.
# --------------------------------------------------------------------------------------


def _condition(rng, t):
    shapes, _ = _pair(rng, t)
    return shapes, {"condition": rng.random(t) < 0.5}


def _where_theirs(a, b, condition):
    """autograd's where does not sum a broadcast cotangent back: broadcast the inputs first."""
    shape = np.broadcast_shapes(np.shape(a), np.shape(b), np.shape(condition))
    return anp.where(condition, _broadcast_theirs(a, shape), _broadcast_theirs(b, shape))


def _norm_theirs(a, c, ord, axis, keepdims):
    """(Σ |x|ᵖ)^(1/p) from sums and powers: autograd's norm has no ord=1 rule and sends
    cotangents of the wrong shape back for some axes of arrays with more than two axes."""
    x = a + c
    if ord == 1:
        return anp.sum(anp.abs(x), axis=axis, keepdims=keepdims)
    if ord is None:
        return anp.sqrt(anp.sum(x * x, axis=axis, keepdims=keepdims))
    return anp.sum(anp.abs(x) ** ord, axis=axis, keepdims=keepdims) ** (1.0 / ord)


def _solve_theirs(a, b):
    """autograd's solve does not sum a broadcast cotangent back: broadcast the stacks first."""
    a = _well_conditioned(a, anp)
    if anp.ndim(b) == 1:
        return anp.linalg.solve(a, b)
    lead = np.broadcast_shapes(np.shape(a)[:-2], np.shape(b)[:-2])
    return anp.linalg.solve(_broadcast_theirs(a, lead + np.shape(a)[-2:]),
                            _broadcast_theirs(b, lead + np.shape(b)[-2:]))


def _triangle(rng, t):
    return ([t], {"k": int(rng.integers(-1, 2))}) if len(t) >= 2 else None


def _repeat(rng, t):
    """An axis whose size the repeat count divides (or the flattened input, for a vector)."""
    r = int(rng.choice([2, 3]))
    axes = [i for i, n in enumerate(t) if n % r == 0]
    if len(t) == 1 and axes and rng.random() < 0.3:
        return [(t[0] // r,)], {"repeats": r, "axis": None}
    if not axes:
        return None
    p = int(rng.choice(axes))
    return [t[:p] + (t[p] // r,) + t[p + 1:]], {"repeats": r, "axis": p}


def _tile(rng, t):
    if not t:
        return None
    reps = tuple(n if n > 1 and rng.random() < 0.5 else 1 for n in t)
    shape = tuple(n // r for n, r in zip(t, reps))
    drop = 0
    while drop < len(shape) - 1 and shape[drop] == 1 and rng.random() < 0.5:
        drop += 1  # numpy pads a shorter input with leading axes
    return [shape[drop:]], {"reps": reps}


def _swapaxes(rng, t):
    if len(t) < 2:
        return None
    i, j = (int(a) for a in rng.choice(len(t), 2, replace=False))
    shape = list(t)
    shape[i], shape[j] = shape[j], shape[i]
    return [tuple(shape)], {"axis1": i, "axis2": j - len(t) if rng.random() < 0.5 else j}


def _moveaxis(rng, t):
    if len(t) < 2:
        return None
    source, destination = (int(a) for a in rng.integers(0, len(t), 2))
    shape = np.moveaxis(np.empty(t), destination, source).shape
    return [shape], {"source": source, "destination": destination}


def _squeeze(rng, t):
    p = int(rng.integers(0, len(t) + 1))
    return [t[:p] + (1,) + t[p:]], {"axis": p}


def _expand_dims(rng, t):
    ones = [i for i, n in enumerate(t) if n == 1]
    if not ones:
        return None
    p = int(rng.choice(ones))
    return [t[:p] + t[p + 1:]], {"axis": p}


def _ravel(rng, t):
    if len(t) != 1:
        return None
    n = t[0]
    options = [(n,), (1, n), (n, 1)] + [(d, n // d) for d in (2, 3) if n % d == 0 and n > d]
    return [options[int(rng.integers(len(options)))]], {}


def _flip(rng, t):
    if not t:
        return None
    axes = tuple(i for i in range(len(t)) if rng.random() < 0.6) or (0,)
    return [t], {"axis": axes}


def _flip_theirs(a, axis):
    return a[tuple(slice(None, None, -1) if i in axis else slice(None) for i in range(a.ndim))]


def _roll(rng, t):
    if not t:
        return None
    axis = None if rng.random() < 0.3 else int(rng.integers(0, len(t)))
    return [t], {"shift": int(rng.integers(-3, 4)), "axis": axis}


def _vstack(rng, t):
    if len(t) != 2:
        return None
    shapes, left = [], t[0]
    while left:
        rows = int(rng.integers(1, left + 1))
        shapes.append((t[1],) if rows == 1 and rng.random() < 0.5 else (rows, t[1]))
        left -= rows
    return shapes, {}


def _hstack(rng, t):
    if not t:
        return None
    axis = 0 if len(t) == 1 else 1
    shapes, left = [], t[axis]
    while left:
        width = int(rng.integers(1, left + 1))
        shapes.append(t[:axis] + (width,) + t[axis + 1:])
        left -= width
    return shapes, {}


def _pad(rng, t):
    if not t:
        return None
    widths = []
    for n in t:
        before = int(rng.integers(0, 2)) if n > 1 else 0
        after = int(rng.integers(0, 2)) if n - before > 1 else 0
        widths.append((before, after))
    inner = tuple(n - b - a for n, (b, a) in zip(t, widths))
    return [inner], {"pad_width": tuple(widths), "constant_values": float(rng.uniform(-1, 1))}


def _pad_theirs(a, pad_width, constant_values):
    for axis, (before, after) in enumerate(pad_width):
        shape = list(anp.shape(a))
        parts = []
        for width in (before, after):
            shape[axis] = width
            parts.append(np.full(tuple(shape), constant_values))
        a = anp.concatenate([parts[0], a, parts[1]], axis=axis)
    return a


def _sort(rng, t):
    if not t:
        return None
    axis = int(rng.integers(0, len(t)))
    # distinct offsets along the axis keep copies (broadcasts, relu's zeros) from tying
    ramp = np.reshape(np.linspace(0.0, 0.01, t[axis]), (t[axis],) + (1,) * (len(t) - axis - 1))
    return [t], {"axis": axis, "ramp": ramp}


def _sort_theirs(a, axis, ramp):
    """autograd sorts vectors only: sort each line along the axis as a vector."""
    moved = anp.moveaxis(a + ramp, axis, -1)
    rows = anp.reshape(moved, (-1, anp.shape(moved)[-1]))
    done = anp.stack([anp.sort(row) for row in rows])
    return anp.moveaxis(anp.reshape(done, anp.shape(moved)), -1, axis)


def _einsum(rng, t):
    """Letters a, b, c, d for the output, z summed: one operand (a permutation and a sum) or two
    (the output letters split between them, z shared)."""
    out = "abcd"[:len(t)]
    k = int(rng.integers(1, 4))
    if rng.random() < 0.3:
        order = "".join(rng.permutation(list(out + "z")))
        return [tuple(k if c == "z" else t[out.index(c)] for c in order)], \
            {"spec": f"{order}->{out}"}
    first = "".join(c for c in out if rng.random() < 0.5)
    second = "".join(c for c in out if c not in first or rng.random() < 0.3)
    terms = [first + "z", "z" + second]
    shapes = [tuple(k if c == "z" else t[out.index(c)] for c in term) for term in terms]
    return shapes, {"spec": f"{terms[0]},{terms[1]}->{out}"}


def _einsum_theirs(*xs, spec):
    """The contraction as a broadcast product and a sum (autograd's einsum fails at order 2
    on some of these): every operand laid out along all the letters, in one order."""
    terms, out = spec.split("->")
    terms = terms.split(",")
    letters = sorted(set("".join(terms)))
    product = 1.0
    for x, term in zip(xs, terms):
        present = [c for c in letters if c in term]
        moved = anp.transpose(x, [term.index(c) for c in present])
        shape = [anp.shape(x)[term.index(c)] if c in term else 1 for c in letters]
        product = product * anp.reshape(moved, shape)
    summed = tuple(i for i, c in enumerate(letters) if c not in out)
    total = anp.sum(product, axis=summed) if summed else product
    kept = [c for c in letters if c in out]
    return anp.transpose(total, [kept.index(c) for c in out]) if out else total


def _tensordot(rng, t):
    p = int(rng.integers(0, len(t) + 1))
    contracted = tuple(int(n) for n in rng.integers(1, 4, rng.integers(0, 3)))
    order = [int(i) for i in rng.permutation(len(contracted))]
    a = t[:p] + contracted
    b = tuple(contracted[i] for i in order) + t[p:]
    axes_a = [p + i for i in order]
    axes_b = list(range(len(contracted)))
    return [a, b], {"axes": (axes_a, axes_b)}


def _tensordot_theirs(a, b, axes):
    """tensordot as a broadcast product: autograd's tensordot adjoint fails on some axis
    orders."""
    na, nb = anp.ndim(a), anp.ndim(b)
    first = "abcdefgh"[:na]
    second = list("mnopqrst"[:nb])
    for i, j in zip(*axes):
        second[j] = first[i]
    out = "".join(c for i, c in enumerate(first) if i not in axes[0]) + \
        "".join(c for j, c in enumerate(second) if j not in axes[1])
    return _einsum_theirs(a, b, spec=f"{first},{''.join(second)}->{out}")


def _trace_theirs(a, offset, axis1, axis2):
    """autograd's trace takes an offset but no axes: move the two axes to the front first."""
    return anp.trace(anp.moveaxis(a, (axis1, axis2), (0, 1)), offset)


def _inner(rng, t):
    p = int(rng.integers(0, len(t) + 1))
    k = int(rng.integers(1, 4))
    return [t[:p] + (k,), t[p:] + (k,)], {}


def _outer(rng, t):
    if len(t) != 2:
        return None
    return [_ravel(rng, t[:1])[0][0], _ravel(rng, t[1:])[0][0]], {}


def _kron(rng, t):
    if not t:
        return None
    a = tuple(int(rng.choice([d for d in (1, 2, 3) if n % d == 0])) for n in t)
    b = tuple(n // m for n, m in zip(t, a))
    if a[0] == 1 and len(a) > 1 and rng.random() < 0.5:
        a = a[1:]  # numpy pads the shorter operand with leading axes
    return [a, b], {}


def _kron_theirs(a, b):
    """kron as a broadcast product: autograd's kron rule is wrong when a has fewer axes."""
    n = max(anp.ndim(a), anp.ndim(b))
    sa = (1,) * (n - anp.ndim(a)) + anp.shape(a)
    sb = (1,) * (n - anp.ndim(b)) + anp.shape(b)
    spread = anp.reshape(a, tuple(k for m in sa for k in (m, 1)))
    blocks = anp.reshape(b, tuple(k for m in sb for k in (1, m)))
    return anp.reshape(spread * blocks, tuple(p * q for p, q in zip(sa, sb)))


def _trace(rng, t):
    n = int(rng.integers(1, 4))
    offset = int(rng.integers(-1, 2))
    i = int(rng.integers(0, len(t) + 1))
    j = int(rng.integers(0, len(t) + 2))
    shape = list(t)
    shape.insert(i, n)
    shape.insert(j, n + abs(offset))
    axis1, axis2 = (i if i < j else i + 1), j
    if len(shape) > MAX_NDIM:
        return None
    return [tuple(shape)], {"offset": offset, "axis1": axis1, "axis2": axis2}


def _diag(rng, t):
    k = int(rng.integers(-1, 2))
    if len(t) == 2 and t[0] == t[1] and t[0] > abs(k):
        return [(t[0] - abs(k),)], {"k": k}
    if len(t) == 1:
        rows, cols = t[0] + max(-k, 0), t[0] + max(k, 0)
        extra = int(rng.integers(0, 2))
        return [(rows + extra, cols) if rng.random() < 0.5 else (rows, cols + extra)], {"k": k}
    return None


def _diag_theirs(a, k):
    if anp.ndim(a) == 1:
        return anp.diag(a, k)
    n = min(a.shape[0] + min(k, 0), a.shape[1] - max(k, 0))
    steps = np.arange(n)
    return a[steps + max(-k, 0), steps + max(k, 0)]


def _reduction_offset(rng, t):
    shapes, params = _reduction(rng, t)
    return shapes, {**params, "c": _offset(rng, t)[1]["c"]}


def _spread(rng, t):
    """var and std over at least two entries (std of one entry has no derivative)."""
    shapes, params = _reduction(rng, t)
    axis = params["axis"]
    count = math.prod(shapes[0]) if axis is None else shapes[0][axis]
    if count < 2:
        return None
    return shapes, {**params, "ddof": int(rng.integers(0, 2)) if count > 2 else 0}


def _cumsum(rng, t):
    if not t:
        return None
    if len(t) == 1 and rng.random() < 0.3:
        return _ravel(rng, t)[0], {"axis": None}
    return [t], {"axis": int(rng.integers(-len(t), len(t)))}


def _norm(rng, t):
    shapes, params = _reduction(rng, t)
    ord_ = None if params["axis"] is None else [None, 1, 3][int(rng.integers(3))]
    return shapes, {**params, "ord": ord_, "c": _offset(rng, t)[1]["c"]}


def _well_conditioned(a, m):
    """0.3 tanh(A) + I: diagonally dominant for n ≤ 3, so solve, inv and det are smooth."""
    n = a.shape[-1]
    return 0.3 * m.tanh(a) + np.eye(n)


def _solve(rng, t):
    if not t:
        return None
    n = t[-2] if len(t) >= 2 else t[0]
    if len(t) == 1:
        return [(n, n), t], {}
    lead = [t[:-2], _broadcasts_to(rng, t[:-2])]
    if rng.random() < 0.5:
        lead = lead[::-1]
    return [lead[0] + (n, n), lead[1] + t[-2:]], {}


def _square(rng, t):
    return ([t], {}) if len(t) >= 2 and t[-1] == t[-2] else None


def _determinant(rng, t):
    n = int(rng.integers(1, 4))
    return ([t + (n, n)], {}) if len(t) + 2 <= MAX_NDIM else None


OPERATIONS += [
    Operation("minimum", ("minimum",), _pair_offset, lambda a, b, c: ad.minimum(a, b + c),
              lambda a, b, c: anp.minimum(a, b + c)),
    Operation("where", ("where",), _condition, lambda a, b, condition: ad.where(condition, a, b),
              _where_theirs),
    Operation("clip", ("clip",), _offset, lambda a, c: ad.clip(a + c, -0.7, 0.6),
              lambda a, c: anp.clip(a + c, -0.7, 0.6)),
    Operation("square", ("square",), _same, ad.square, anp.square),
    Operation("log1p", ("log1p",), _same, lambda a: ad.log1p(a * a),
              lambda a: anp.log1p(a * a)),
    Operation("expm1", ("expm1",), _same, lambda a: ad.expm1(ad.tanh(a)),
              lambda a: anp.expm1(anp.tanh(a))),
    Operation("log2", ("log2",), _same, lambda a: ad.log2(1.0 + a * a),
              lambda a: anp.log2(1.0 + a * a)),
    Operation("log10", ("log10",), _same, lambda a: np.log10(1.0 + a * a),
              lambda a: anp.log10(1.0 + a * a)),
    Operation("cosh", ("cosh",), _same, lambda a: ad.cosh(ad.tanh(a)),
              lambda a: anp.cosh(anp.tanh(a))),
    Operation("sinh", ("sinh",), _same, lambda a: np.sinh(ad.tanh(a)),
              lambda a: anp.sinh(anp.tanh(a))),
    Operation("arcsin", ("arcsin",), _same, lambda a: ad.arcsin(0.9 * ad.tanh(a)),
              lambda a: anp.arcsin(0.9 * anp.tanh(a))),
    Operation("arccos", ("arccos",), _same, lambda a: ad.arccos(0.9 * ad.tanh(a)),
              lambda a: anp.arccos(0.9 * anp.tanh(a))),
    Operation("arctan", ("arctan",), _same, ad.arctan, anp.arctan),
    Operation("arctan2", ("arctan2",), _pair_offset, lambda a, b, c: np.arctan2(a + c, b),
              lambda a, b, c: anp.arctan2(a + c, b)),
    Operation("logaddexp", ("logaddexp",), _pair, ad.logaddexp, anp.logaddexp),
    Operation("mod", ("mod",), _pair, lambda a, b: ad.mod(a, 1.5 + b * b),
              lambda a, b: anp.mod(a, 1.5 + b * b)),
    Operation("tril", ("tril",), _triangle, ad.tril, lambda a, k: anp.tril(a, k)),
    Operation("np.triu", ("triu",), _triangle, lambda a, k: np.triu(a, k),
              lambda a, k: anp.triu(a, k)),
    Operation("repeat", ("repeat",), _repeat, ad.repeat, anp.repeat),
    Operation("tile", ("tile",), _tile, ad.tile, anp.tile),
    Operation("swapaxes", ("swapaxes",), _swapaxes, ad.swapaxes, anp.swapaxes),
    Operation("np.moveaxis", ("moveaxis",), _moveaxis, np.moveaxis, anp.moveaxis),
    Operation("squeeze", ("squeeze",), _squeeze, ad.squeeze, anp.squeeze),
    Operation("expand_dims", ("expand_dims",), _expand_dims, ad.expand_dims, anp.expand_dims),
    Operation("ravel", ("ravel",), _ravel, ad.ravel, anp.ravel),
    Operation("flip", ("flip",), _flip, ad.flip, _flip_theirs),
    Operation("roll", ("roll",), _roll, ad.roll, anp.roll),
    Operation("vstack", ("vstack",), _vstack, lambda *xs: ad.vstack(xs),
              lambda *xs: anp.vstack(xs)),
    Operation("np.hstack", ("hstack",), _hstack, lambda *xs: np.hstack(xs),
              lambda *xs: anp.hstack(xs)),
    Operation("pad", ("pad",), _pad, ad.pad, _pad_theirs),
    Operation("sort", ("sort",), _sort, lambda a, axis, ramp: ad.sort(a + ramp, axis),
              _sort_theirs),
    Operation("einsum", ("einsum",), _einsum, lambda *xs, spec: ad.einsum(spec, *xs),
              _einsum_theirs),
    Operation("np.einsum", ("einsum",), _einsum, lambda *xs, spec: np.einsum(spec, *xs),
              _einsum_theirs),
    Operation("tensordot", ("tensordot",), _tensordot, ad.tensordot, _tensordot_theirs),
    Operation("inner", ("inner",), _inner, ad.inner, anp.inner),
    Operation("outer", ("outer",), _outer, ad.outer,
              lambda a, b: anp.outer(anp.ravel(a), anp.ravel(b))),
    Operation("kron", ("kron",), _kron, ad.kron, _kron_theirs),
    Operation("trace", ("trace",), _trace, ad.trace, _trace_theirs),
    Operation("diag", ("diag",), _diag, ad.diag, _diag_theirs),
    Operation("prod", ("prod",), _reduction_offset,
              lambda a, c, **p: ad.prod(a + c, **p), lambda a, c, **p: anp.prod(a + c, **p)),
    Operation("min", ("min",), _reduction, ad.min, anp.min),
    Operation("var", ("var",), _spread, ad.var, anp.var),
    Operation("np.std", ("std",), _spread, np.std, anp.std),
    Operation("cumsum", ("cumsum",), _cumsum, ad.cumsum, anp.cumsum),
    Operation("norm", ("norm",), _norm,
              lambda a, c, ord, **p: ad.norm(a + c, ord, **p), _norm_theirs),
    Operation("solve", ("solve",), _solve,
              lambda a, b: ad.solve(_well_conditioned(a, ad), b), _solve_theirs),
    Operation("inv", ("inv",), _square, lambda a: np.linalg.inv(_well_conditioned(a, ad)),
              lambda a: anp.linalg.inv(_well_conditioned(a, anp))),
    Operation("det", ("det",), _determinant, lambda a: ad.det(_well_conditioned(a, ad)),
              lambda a: anp.linalg.det(_well_conditioned(a, anp))),
    Operation("slogdet", ("logabsdet",), _determinant,
              lambda a: ad.slogdet(_well_conditioned(a, ad))[1],
              lambda a: anp.linalg.slogdet(_well_conditioned(a, anp))[1]),
]


# --------------------------------------------------------------------------------------
# Trees: built from the root down, evaluated from the leaves up (no recursion)
# --------------------------------------------------------------------------------------


@dataclass
class Tree:
    """Nodes in creation order (children after parents): ("input", k), ("constant", value)
    or (operation, params, child indices). ``inputs`` holds the values of its inputs."""

    nodes: list
    inputs: list

    def evaluate(self, inputs, engine):
        """The root's value, with engine "ours" or "theirs": children are evaluated first
        because they come later in ``nodes``."""
        values = [None] * len(self.nodes)
        for i in range(len(self.nodes) - 1, -1, -1):
            node = self.nodes[i]
            if node[0] == "input":
                values[i] = inputs[node[1]]
            elif node[0] == "constant":
                values[i] = node[1]
            else:
                operation, params, children = node
                fn = operation.ours if engine == "ours" else operation.theirs
                values[i] = fn(*(values[c] for c in children), **params)
        return values[0]

    def describe(self):
        parts = []
        for node in self.nodes:
            if node[0] == "input":
                parts.append(f"x{node[1]}{np.shape(self.inputs[node[1]])}")
            elif node[0] == "constant":
                parts.append(f"const{np.shape(node[1])}")
            else:
                parts.append(f"{node[0].name}{node[2]}")
        return " ; ".join(f"{i}: {p}" for i, p in enumerate(parts))


def _leaf_value(rng, shape):
    if shape == () and rng.random() < 0.5:
        return float(rng.uniform(-1.5, 1.5))  # Python floats take the engines' fast path
    return rng.uniform(-1.5, 1.5, shape)


def random_tree(rng) -> Tree:
    root_shape = tuple(int(n) for n in rng.integers(1, 4, rng.integers(0, 4)))
    max_depth = int(rng.integers(1, 6))
    nodes = [None]
    inputs = []
    by_shape = {}
    pending = [(0, root_shape, 0)]
    while pending:
        index, shape, depth = pending.pop()
        made = None
        if depth < max_depth and len(nodes) < MAX_NODES and rng.random() > 0.15:
            for _ in range(4):  # a few tries at an operation that can make this shape
                operation = OPERATIONS[int(rng.integers(len(OPERATIONS)))]
                made = operation.inputs(rng, shape)
                if made and all(len(s) <= MAX_NDIM and math.prod(s) <= MAX_SIZE
                                for s in made[0]):
                    break
                made = None
        if made is None:
            if index and rng.random() < 0.15:
                nodes[index] = ("constant", _leaf_value(rng, shape))
                continue
            same = by_shape.setdefault(shape, [])
            if same and rng.random() < 0.5:
                nodes[index] = ("input", same[int(rng.integers(len(same)))])
            else:
                same.append(len(inputs))
                nodes[index] = ("input", len(inputs))
                inputs.append(_leaf_value(rng, shape))
            continue
        shapes, params = made
        children = list(range(len(nodes), len(nodes) + len(shapes)))
        nodes.extend([None] * len(shapes))
        nodes[index] = (operation, params, children)
        pending.extend((c, s, depth + 1) for c, s in zip(children, shapes))
    if not inputs:  # a tree of constants: make its root an input instead
        return Tree([("input", 0)], [_leaf_value(rng, root_shape)])
    return Tree(nodes, inputs)


# --------------------------------------------------------------------------------------
# One batch: order 1 and order 2, both modes, against autograd
# --------------------------------------------------------------------------------------


def check_batch(trees, rng):
    """Mismatches (tree, what) of a batch of trees, summed into one function."""
    spans, xs = [], []
    for tree in trees:
        spans.append(range(len(xs), len(xs) + len(tree.inputs)))
        xs.extend(tree.inputs)
    argnums = tuple(range(len(xs)))
    v = [_leaf_value(rng, np.shape(x)) for x in xs]  # direction of the Hessian product
    u = [_leaf_value(rng, np.shape(x)) for x in xs]  # direction of the forward sweep

    def per_tree(engine, total, xs):
        outs = [total(tree.evaluate([xs[i] for i in span], engine))
                for tree, span in zip(trees, spans)]
        return outs

    def ours(*xs):
        return ad.stack(per_tree("ours", ad.sum, xs))

    def ours_total(*xs):
        return ad.sum(ours(*xs))

    def ours_gv(*xs):
        """⟨∇f, v⟩ per tree: its gradient gives Hv, its tangent along u gives uᵀHv."""
        grads = ad.grad(ours_total, argnums)(*xs)
        return ad.stack([sum(ad.sum(grads[i] * v[i]) for i in span) for span in spans])

    # autograd takes all inputs packed in one flat vector: its cost per argument is high
    sizes = [int(np.size(x)) for x in xs]
    offsets = np.cumsum([0] + sizes)
    packed = np.concatenate([np.ravel(x) for x in xs])
    v_packed = np.concatenate([np.ravel(w) for w in v])

    def unpack(z):
        return [anp.reshape(z[a:b], np.shape(x)) for a, b, x in zip(offsets, offsets[1:], xs)]

    def theirs_total(z):
        return sum(per_tree("theirs", anp.sum, unpack(z)))

    def theirs_gv(z):
        return anp.sum(autograd.grad(theirs_total)(z) * v_packed)

    grad_want = unpack(autograd.grad(theirs_total)(packed))
    hv_want = unpack(autograd.grad(theirs_gv)(packed))
    grad_got = ad.grad(ours_total, argnums)(*xs)
    _, tangent_got = ad.jvp(ours, xs, u)
    hv_got = ad.grad(lambda *xs: ad.sum(ours_gv(*xs)), argnums)(*xs)
    _, uhv_got = ad.jvp(ours_gv, xs, u)

    # one vectorised comparison for the batch; tree by tree only to name a mismatch
    tree_of = np.repeat(np.arange(len(trees)), [len(span) for span in spans])
    scale = 1.0 + _max_per_tree(grad_want, tree_of, len(trees))
    scale2 = 1.0 + _max_per_tree(hv_want, tree_of, len(trees))
    tangent_want = np.bincount(tree_of, [np.sum(g * d) for g, d in zip(grad_want, u)],
                               len(trees))
    uhv_want = np.bincount(tree_of, [np.sum(h * d) for h, d in zip(hv_want, u)], len(trees))
    bad = (_far(grad_got, grad_want, scale[tree_of], tree_of, len(trees), "reverse gradient")
           + _far(hv_got, hv_want, scale2[tree_of], tree_of, len(trees),
                  "reverse-over-reverse Hv")
           + _far([tangent_got], [tangent_want], [scale], None, len(trees), "forward tangent")
           + _far([uhv_got], [uhv_want], [scale2], None, len(trees),
                  "forward-over-reverse uᵀHv"))
    named = {}
    for k, what in bad:
        named.setdefault(k, []).append(what)
    return [(trees[k], what) for k, what in sorted(named.items())]


def _max_per_tree(values, tree_of, n_trees):
    """The largest |entry| of each tree's inputs' values."""
    largest = np.zeros(n_trees)
    np.maximum.at(largest, tree_of, [float(np.max(np.abs(x), initial=0.0)) for x in values])
    return largest


def _far(got, want, scale, tree_of, n_trees, what):
    """[(tree, what)] where got and want differ beyond 1e-9 relative to the tree's scale.

    ``tree_of[i]`` is the tree of the i-th value; None means the values are per tree."""
    bad = []
    for i, (g, w, s) in enumerate(zip(got, want, scale)):
        g = np.asarray(g, dtype=float)
        w = np.asarray(w, dtype=float)
        if g.shape != w.shape:
            bad.append(i)
            continue
        far = ~np.isclose(g, w, rtol=1e-9, atol=0.0, equal_nan=True) & (
            np.abs(g - w) > 1e-9 * np.asarray(s))
        if far.any():
            bad.extend(np.flatnonzero(far).tolist() if tree_of is None else [i])
    return [(int(k if tree_of is None else tree_of[k]), what) for k in bad]


def test_every_rule_has_an_oracle_form():
    """Adding a primitive means adding its autograd form above, so it is checked here."""
    covered = {rule for operation in OPERATIONS for rule in operation.rules}
    assert set(RULES) <= covered, f"no random-composition check for {set(RULES) - covered}"


@pytest.mark.filterwarnings("ignore::UserWarning")  # autograd: "output seems independent"
@pytest.mark.parametrize("block", range(4))
def test_random_compositions_match_autograd_at_orders_1_and_2(block):
    rng = np.random.default_rng(2024 + block)
    per_block = N_TREES // 4
    trees = [random_tree(rng) for _ in range(per_block)]
    mismatches = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # autograd's tanh rule overflows cosh
        for start in range(0, per_block, BATCH):
            mismatches += check_batch(trees[start:start + BATCH], rng)
    used = {node[0].name for tree in trees for node in tree.nodes if node[0] not in
            ("input", "constant")}
    assert used == {operation.name for operation in OPERATIONS}  # every form was drawn
    report = "\n".join(f"{what}: {tree.describe()}" for tree, what in mismatches[:5])
    assert not mismatches, f"{len(mismatches)} of {per_block} trees differ:\n{report}"


# --------------------------------------------------------------------------------------
# Two whole programs
# --------------------------------------------------------------------------------------


def test_mlp_loss_matches_autograd(rng):
    X, y = rng.standard_normal((16, 5)), rng.integers(0, 3, 16)
    params = [rng.standard_normal((5, 7)), rng.standard_normal(7), rng.standard_normal((7, 3)),
              rng.standard_normal(3)]

    def ours(W1, b1, W2, b2):
        z = ad.relu(X @ W1 + b1) @ W2 + b2
        return ad.mean(ad.logsumexp(z, axis=1) - z[np.arange(16), y])

    def theirs(W1, b1, W2, b2):
        z = anp.maximum(anp.dot(X, W1) + b1, 0.0) @ W2 + b2
        m = anp.max(z, axis=1, keepdims=True)
        lse = anp.log(anp.sum(anp.exp(z - m), axis=1)) + m[:, 0]
        return anp.mean(lse - z[np.arange(16), y])

    for got, want in zip(ad.grad(ours, (0, 1, 2, 3))(*params),
                         autograd.grad(theirs, (0, 1, 2, 3))(*params)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)


def test_hessian_matches_autograd():
    def f(x, np_=ad):
        return np_.sum(np_.sin(x) * x**2) * np_.tanh(x[0])

    x = np.array([0.3, -0.8, 1.4])
    np.testing.assert_allclose(ad.hessian(f)(x), autograd.hessian(lambda v: f(v, anp))(x),
                               rtol=1e-10, atol=1e-12)
