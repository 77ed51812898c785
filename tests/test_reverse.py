"""Reverse mode: topological order, adjoint accumulation, idempotence, depth, higher order."""

import numpy as np
import pytest

import course_ad as ad
from course_ad import ReverseDiff, topological_order
from course_ad.dispatch import apply
from course_ad.rules import Domain, Rule


def _counting_rule(counter: dict) -> Rule:
    """v = x / 2 with VJP calls counted, so a test can see how often the sweep visits."""

    def half_jvp(dx, out, x):
        """v̇ = ẋ / 2"""
        return dx * 0.5

    def half_vjp(g, out, x):
        """x̄ += v̄ / 2"""
        counter["vjp"] = counter.get("vjp", 0) + 1
        return g * 0.5

    return Rule("half", lambda x: x * 0.5, (half_jvp,), (half_vjp,), "½", "v = x/2",
                r"\dot v = \dot x / 2", r"\bar x \mathrel{+}= \bar v / 2", (Domain(),), True)


def test_fan_out_adds_adjoints_x_times_x():
    x = ReverseDiff(3.0)
    y = x * x
    assert y.parents == (x, x)  # a tuple keeps both edges (micrograd's set loses one)
    y.backward()
    assert x.grad == 6.0


def test_fan_out_adds_adjoints_exp_x_times_exp_x_plus_one():
    """Seed 001: y = eˣ (eˣ + 1) reuses eˣ; dy/dx = 2e²ˣ + eˣ."""
    x = ReverseDiff(0.7)
    e = ad.exp(x)
    y = e * (e + 1)
    y.backward()
    assert np.isclose(x.grad, 2 * np.exp(1.4) + np.exp(0.7), rtol=1e-14)
    assert np.isclose(e.grad, 2 * np.exp(0.7) + 1, rtol=1e-14)


def test_backward_is_idempotent():
    x = ReverseDiff(2.0)
    y = ad.sin(x) * x
    y.backward()
    first = x.grad
    y.backward()
    y.backward()
    assert x.grad == first == np.cos(2.0) * 2.0 + np.sin(2.0)


def test_every_node_holds_its_adjoint_after_backward():
    a = ReverseDiff(1.0)
    b = a + a
    c = b + b
    c.backward()
    assert (c.grad, b.grad, a.grad) == (1.0, 2.0, 4.0)


def test_topological_order_puts_parents_first_and_lists_each_node_once():
    x, y = ReverseDiff(1.0), ReverseDiff(2.0)
    u = x * y
    w = u + ad.sin(u) + x
    order = topological_order(w)
    assert len(order) == len({id(n) for n in order}) == 6
    position = {id(n): i for i, n in enumerate(order)}
    for node in order:
        for parent in node.parents:
            assert position[id(parent)] < position[id(node)]
    assert order[-1] is w


def test_a_chain_of_a_million_nodes_needs_no_recursion():
    x = ReverseDiff(1.0)
    y = x
    for _ in range(10**6):
        y = y * 1.0000001
    y.backward()
    assert np.isclose(x.grad, 1.0000001 ** 10**6, rtol=1e-9)
    assert np.isclose(y.value, x.grad, rtol=1e-12)


def test_a_diamond_of_sixty_levels_is_swept_once_per_node():
    """x_{k+1} = x_k/2 + x_k/2 doubles the paths at each level: 2^60 paths, 180 VJP calls."""
    counter: dict = {}
    half = _counting_rule(counter)
    x = ReverseDiff(1.0)
    top = x
    for _ in range(60):
        top = apply(half, top) + apply(half, top)
    order = topological_order(top)
    assert len(order) == 1 + 3 * 60
    top.backward()
    assert counter["vjp"] == 2 * 60
    assert x.grad == 1.0


def test_constants_get_no_vjp():
    counter: dict = {}
    half = _counting_rule(counter)
    x = ReverseDiff(2.0)
    y = apply(half, x) * np.float64(3.0) + apply(half, 5.0)  # half(5.0) is a plain number
    assert isinstance(apply(half, 5.0), float)
    y.backward()
    assert counter["vjp"] == 1 and x.grad == 1.5
    product = x * np.ones(3)
    assert product.parents == (x,) and product.argnums == (0,)


def test_a_constant_matrix_is_not_a_parent_of_matmul():
    X = np.arange(12.0).reshape(4, 3)
    W = ReverseDiff(np.ones((3, 2)))
    node = X @ W
    assert node.argnums == (1,) and node.parents == (W,)
    ad.sum(node).backward()
    assert np.allclose(W.grad, X.sum(axis=0)[:, None] * np.ones((1, 2)))


def test_seed_must_match_the_output_shape_and_is_one_for_scalars():
    x = ReverseDiff(np.arange(3.0))
    y = x * 2
    with pytest.raises(ValueError, match=r"backward: the output has shape \(3,\), not a scalar"):
        y.backward()
    with pytest.raises(ValueError, match=r"seed has shape \(2,\) but the output has shape"):
        y.backward(np.ones(2))
    y.backward(np.array([1.0, 0.0, 2.0]))
    assert np.array_equal(x.grad, [2.0, 0.0, 4.0])


def test_broadcasting_is_undone_once_by_the_engine():
    b = ReverseDiff(np.array([1.0, 2.0, 3.0]))
    s = ReverseDiff(2.0)
    M = ReverseDiff(np.ones((4, 1)))
    y = ad.sum(M * b * s)
    y.backward()
    assert b.grad.shape == (3,) and np.allclose(b.grad, 4 * 2.0)
    assert np.isclose(s.grad, 4 * 6.0)
    assert M.grad.shape == (4, 1) and np.allclose(M.grad, 12.0)


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "**", "@"])
def test_numpy_arrays_work_on_either_side_of_every_operator(op):
    rng = np.random.default_rng(1)
    a = rng.uniform(0.5, 2.0, (3, 3))
    w = rng.uniform(0.5, 2.0, (3, 3))
    compute = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide,
               "**": np.power, "@": np.matmul}[op]
    for left in (True, False):
        node = ReverseDiff(w)
        out = eval(f"a {op} node" if left else f"node {op} a")
        assert isinstance(out, ReverseDiff), f"ndarray {op} ReverseDiff gave {type(out)}"
        expected = compute(a, w) if left else compute(w, a)
        assert np.allclose(out.value, expected)
        ad.sum(out).backward()
        numeric = ad.numerical_gradient(
            lambda v, left=left: np.sum(compute(a, v) if left else compute(v, a)), w)
        assert np.allclose(node.grad, numeric, atol=1e-6)


def test_create_graph_gives_grad_of_grad():
    x = ReverseDiff(1.5)
    y = x**3 + ad.sin(x)
    y.backward(create_graph=True)
    first = x.grad
    assert isinstance(first, ReverseDiff)
    assert np.isclose(first.value, 3 * 1.5**2 + np.cos(1.5))
    first.backward()
    assert np.isclose(x.grad, 6 * 1.5 - np.sin(1.5))


def test_python_control_flow_on_values():
    def f(x):
        total = x
        while total < 10:
            total = total * 2 if total > 0 else total - 1
        return total

    x = ReverseDiff(1.5)
    y = f(x)
    y.backward()
    assert y.value == 12.0 and x.grad == 8.0


def test_repr_shows_value_grad_and_op_never_an_address():
    x = ReverseDiff(2.0, name="x")
    y = x * 3
    y.backward()
    assert repr(y) == "ReverseDiff(value=6, grad=1, op='mul')"
    assert repr(x) == "ReverseDiff(value=2, grad=3, name='x')"
    assert "0x" not in repr(ReverseDiff(np.ones((2, 2))))


def test_vjp_of_a_node_gives_one_cotangent_per_parent():
    x, y = ReverseDiff(2.0), ReverseDiff(5.0)
    z = x * y
    assert z.vjp(1.0) == (5.0, 2.0)
    assert z.op == "mul" and z.parents == (x, y)


def test_students_can_subclass_the_engine_as_the_seed_notebook_does():
    class Tagged(ReverseDiff):
        __slots__ = ()

    x = Tagged(2.0)
    y = x * x + 1
    assert type(y) is Tagged
    y.backward()
    assert x.grad == 4.0


def test_in_place_accumulation_never_changes_an_adjoint_another_node_shares():
    """b = a + 0 hands b's adjoint to a unchanged, so a's first adjoint *is* b's array: the
    sweep may add into a buffer it allocated for one node, never into one it shares."""
    a = ReverseDiff(np.array([1.0, 2.0]))
    b = a + 0.0
    f = ad.sum((b + b + b) * 1.0 + a * 2.0 + a)
    f.backward()
    np.testing.assert_array_equal(b.grad, [3.0, 3.0])
    np.testing.assert_array_equal(a.grad, [6.0, 6.0])


def test_many_contributions_add_up_and_the_seed_is_left_alone():
    x = ReverseDiff(np.array([1.0, -1.0]))
    y = x + x + x + x + x
    seed = np.array([1.0, 10.0])
    y.backward(seed)
    np.testing.assert_array_equal(x.grad, [5.0, 50.0])
    np.testing.assert_array_equal(seed, [1.0, 10.0])
    np.testing.assert_array_equal(y.grad, [1.0, 10.0])


def test_a_float_adjoint_stays_a_float_next_to_numpy_scalars():
    x = ReverseDiff(2.0)
    y = np.float64(3.0) * x  # numpy hands the product to the engine
    (y * x).backward()
    assert type(x.grad) is float and x.grad == 12.0


def test_parents_and_inputs_of_nodes_with_one_two_and_many_parents():
    x, y, z = ReverseDiff(1.0), ReverseDiff(2.0), ReverseDiff(3.0)
    assert (x * y).parents == (x, y) and (x * y).inputs == (x, y)
    assert (2.0 - x).parents == (x,) and (2.0 - x).inputs == (2.0, x)
    assert ad.sin(x).parents == (x,) and ad.sin(x).argnums == (0,)
    stacked = ad.stack([x, y, z])
    assert stacked.parents == (x, y, z) and stacked.argnums == (0, 1, 2)
    assert x.parents == () and x.inputs == ()


def test_an_operation_of_three_traced_arguments_gets_all_their_values_in_the_sweep():
    x, y, z = ReverseDiff(2.0), ReverseDiff(3.0), ReverseDiff(5.0)
    ad.sum(ad.stack([x * 1.0, y, z]) * np.array([1.0, 10.0, 100.0])).backward()
    assert (x.grad, y.grad, z.grad) == (1.0, 10.0, 100.0)
    a, b, c = (ReverseDiff(np.full(2, v)) for v in (2.0, 3.0, 5.0))
    ad.einsum("i,i,i->", a, b, c).backward()
    np.testing.assert_array_equal(a.grad, [15.0, 15.0])
    np.testing.assert_array_equal(c.grad, [6.0, 6.0])


def test_a_subclass_that_records_in_apply_sees_the_operators_too():
    seen = []

    class Recorded(ReverseDiff):
        __slots__ = ()

        def _apply(self, rule, args, params):
            seen.append(rule.name)
            return ReverseDiff._apply(self, rule, args, params)

    x = Recorded(2.0)
    y = ad.sin(x * 3.0 + x)
    assert seen == ["mul", "add", "sin"] and isinstance(y, Recorded)


# --------------------------------------------------------------------------------------
# backward() through a log-sum-exp or log-softmax written from primitives
# --------------------------------------------------------------------------------------


def _nll_nodes(rng, leak=None):
    """An MLP head's loss as nodes: (W, logits, m, out) after backward()."""
    W = ReverseDiff(rng.standard_normal((3, 4)))
    X, y = rng.standard_normal((6, 3)), rng.integers(0, 4, 6)
    logits = X @ W
    m = ad.max(logits, axis=1, keepdims=True)
    shifted = logits - m
    lse = ad.log(ad.sum(ad.exp(shifted), axis=1)) + m[:, 0]
    out = ad.mean(lse - logits[np.arange(6), y])
    if leak is not None:
        out = out + leak(shifted, m)
    out.backward()
    return W, X, y, logits, m, out


def test_backward_gives_the_max_of_a_log_sum_exp_an_exact_zero_adjoint(rng):
    """y = log Σ exp(x − m) + m[:, 0] does not depend on m: backward() keeps every node's
    adjoint, and m's is exactly 0 (no rounding noise through the arg-max mask)."""
    W, X, y, logits, m, out = _nll_nodes(rng)
    np.testing.assert_array_equal(m.grad, np.zeros((6, 1)))
    order = ad.topological_order(out)
    assert all(node.grad is not None for node in order)  # every node still has its adjoint
    softmax = np.exp(logits.value) / np.exp(logits.value).sum(axis=1, keepdims=True)
    onehot = np.eye(4)[y]
    np.testing.assert_allclose(logits.grad, (softmax - onehot) / 6, rtol=1e-13, atol=1e-16)
    want = ad.jacfwd(lambda W: ad.mean(ad.logsumexp(X @ W, axis=1)
                                       - (X @ W)[np.arange(6), y]))(W.value)
    np.testing.assert_allclose(W.grad, want, rtol=1e-12, atol=1e-15)


def test_backward_sends_the_adjoint_of_a_shift_used_elsewhere_into_the_max(rng):
    """When x − m or m is used again, its other adjoints reach m and the mask as usual."""
    for leak in (lambda s, m: ad.sum(s * s), lambda s, m: ad.sum(m * m)):
        W, X, y, logits, m, out = _nll_nodes(rng, leak)
        assert np.abs(m.grad).max() > 0.01

        def f(W, leak=leak, X=X, y=y):
            logits = X @ W
            m = ad.max(logits, axis=1, keepdims=True)
            shifted = logits - m
            lse = ad.log(ad.sum(ad.exp(shifted), axis=1)) + m[:, 0]
            return ad.mean(lse - logits[np.arange(6), y]) + leak(shifted, m)

        np.testing.assert_allclose(W.grad, ad.jacfwd(f)(W.value), rtol=1e-12, atol=1e-14)


def _blocks_with_a_leak(kind, leak):
    """f(x): a log-sum-exp or log-softmax over rows written from primitives, plus
    ``leak(e, t, log_t)``, another use of one of the block's inner values."""
    def f(x):
        m = ad.max(x, axis=1, keepdims=True)
        shifted = x - m
        e = ad.exp(shifted)
        t = ad.sum(e, axis=1, keepdims=kind == "log_softmax")
        log_t = ad.log(t)
        y = shifted - log_t if kind == "log_softmax" else log_t + m[:, 0]
        return ad.sum(y * y) + leak(e, t, log_t)
    return f


@pytest.mark.parametrize("kind", ["log_softmax", "logsumexp"])
@pytest.mark.parametrize("inner", ["e", "t", "log_t"])
def test_backward_sends_the_adjoint_of_an_inner_value_used_elsewhere_into_the_max(
        rng, kind, inner):
    """x − m's adjoint sums to zero over the axis only when ȳ alone reaches it: with e, t or
    log t used again (sum(e) beside a log-softmax), m's edges carry a share that does not
    cancel, and backward() must not skip them."""
    leak = {"e": lambda e, t, log_t: ad.sum(e * e), "t": lambda e, t, log_t: ad.sum(t * t),
            "log_t": lambda e, t, log_t: ad.sum(log_t * log_t)}[inner]
    f = _blocks_with_a_leak(kind, leak)
    x0 = rng.standard_normal((3, 4))
    want = ad.jacfwd(f)(x0)
    for _ in range(3):  # the generic sweep twice, then (where written) the adjoint code
        x = ReverseDiff(x0)
        out = f(x)
        out.backward()
        np.testing.assert_allclose(x.grad, want, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(ad.grad(f)(x0), want, rtol=1e-12, atol=1e-13)
