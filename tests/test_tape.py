"""The tape: one recording, many replays, buffers planned by liveness, guards on branches."""

import re
import sys

import numpy as np
import pytest

import course_ad as ad
from course_ad import plan as planning
from course_ad.tape import TapeError, TapeGuardError


def mlp_loss(W1, b1, W2, b2, X, y):
    """Softmax cross-entropy written from primitives, as a student would."""
    h = ad.relu(X @ W1 + b1)
    logits = h @ W2 + b2
    shifted = logits - ad.max(logits, axis=1, keepdims=True)
    logp = shifted - ad.log(ad.sum(ad.exp(shifted), axis=1, keepdims=True))
    return -ad.mean(logp[np.arange(len(y)), y])


def mlp_problem(rng, batch=8, hidden=5):
    return [rng.standard_normal((12, hidden)) * 0.3, rng.standard_normal(hidden) * 0.1,
            rng.standard_normal((hidden, 4)) * 0.3, rng.standard_normal(4) * 0.1,
            rng.standard_normal((batch, 12)), rng.integers(0, 4, batch)]


def fan_out(x, w):
    """x feeds five statements; the same-shaped intermediates compete for buffers."""
    a = ad.tanh(x * w)
    b = ad.exp(a * 0.5) + x
    c = a * b - ad.sin(x)
    d = c * a + b * x
    return ad.sum(d * d) + ad.sum(a)


def assert_close(got, expected):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert np.shape(g) == np.shape(e)
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


def test_tape_replays_the_mlp_step_on_new_inputs(rng):
    t = ad.tape(mlp_loss, *mlp_problem(rng))
    for _ in range(3):  # new weights, data and labels each time
        args = mlp_problem(rng)
        value, grads = t.value_and_grad(*args, argnums=(0, 1, 2, 3))
        expected_value, expected = ad.value_and_grad(mlp_loss, argnums=(0, 1, 2, 3))(*args)
        assert value == pytest.approx(expected_value, rel=1e-12)
        assert_close(grads, expected)
        assert t(*args) == pytest.approx(expected_value, rel=1e-12)


def test_fan_out_replays_right_and_the_plan_reuses_buffers(rng):
    x, w = rng.standard_normal((6, 3)), rng.standard_normal(3)
    t = ad.tape(fan_out, x, w)
    x2, w2 = rng.standard_normal((6, 3)), rng.standard_normal(3)
    value, grads = t.value_and_grad(x2, w2, argnums=(0, 1))
    expected_value, expected = ad.value_and_grad(fan_out, argnums=(0, 1))(x2, w2)
    assert value == pytest.approx(expected_value, rel=1e-12)
    assert_close(grads, expected)
    plan = t.memory_plan(argnums=(0, 1))
    planning.check(plan)
    assert len(plan.buffers) < len(plan.lifetimes)  # some buffer holds several values
    assert plan.bytes < plan.bytes_without_reuse


def test_a_planner_that_ignores_liveness_is_caught(rng, monkeypatch):
    """Reuse a buffer whatever its occupant's remaining reads: the plan check must object,
    and without the check the replay computes wrong numbers (so the test above would fail)."""
    x, w = rng.standard_normal((6, 3)), rng.standard_normal(3)
    monkeypatch.setattr(planning, "_reusable", lambda *times: True)
    with pytest.raises(AssertionError, match="still read there"):
        ad.tape(fan_out, x, w).value_and_grad(x, w, argnums=(0, 1))
    monkeypatch.setattr(sys.modules["course_ad.replay"], "check", lambda plan: None)
    value, grads = ad.tape(fan_out, x, w).value_and_grad(x, w, argnums=(0, 1))
    expected_value, expected = ad.value_and_grad(fan_out, argnums=(0, 1))(x, w)
    wrong = not np.isclose(value, expected_value) or not all(
        np.allclose(g, e) for g, e in zip(grads, expected))
    assert wrong


def test_plan_keeps_values_the_reverse_sweep_reads(rng):
    """tanh's adjoint reads its output: that buffer lives until the reverse sweep."""
    t = ad.tape(lambda x: ad.sum(ad.tanh(ad.exp(x) * 2.0) * 3.0), rng.standard_normal(4))
    plan = t.memory_plan(argnums=0)
    tanh_value = next(lt for lt in plan.lifetimes if lt.name == "v₃")
    assert tanh_value.end > 2 * len(t.statements)  # read in the reverse sweep (after 2n)


def test_guard_catches_a_branch_that_flips():
    def f(x):
        if ad.sum(x) > 0:
            return ad.sum(x * x)
        return -ad.sum(x)

    t = ad.tape(f, np.array([1.0, 2.0]))
    assert t(np.array([3.0, -1.0])) == pytest.approx(10.0)
    with pytest.raises(TapeGuardError, match=r"the branch at v₁ > 0 went the other way"):
        t(np.array([-3.0, 1.0]))
    assert "guard: v₁ > 0 was True" in repr(t)


def test_guard_on_an_array_comparison():
    def f(x):
        return ad.sum(x * (x > 0))  # the mask is a constant of the trace

    t = ad.tape(f, np.array([1.0, -2.0, 3.0]))
    assert t.grad(np.array([2.0, -1.0, 5.0])) == pytest.approx([1.0, 0.0, 1.0])
    with pytest.raises(TapeGuardError, match="went the other way"):
        t(np.array([2.0, 1.0, 5.0]))


def test_bool_and_numpy_comparisons_are_guarded():
    def f(x):
        return x * 2.0 if np.greater(x, 1.0) else x * 3.0

    t = ad.tape(f, 2.0)
    assert t.grad(5.0) == 2.0
    with pytest.raises(TapeGuardError, match="np.greater"):
        t(0.5)


def test_float_of_a_traced_value_is_refused_at_record_time():
    with pytest.raises(TapeError, match=r"float\(\) of a traced value"):
        ad.tape(lambda x: x * float(ad.sum(x)), np.ones(3))


def test_reading_the_value_of_an_argument_is_refused(rng):
    x = rng.standard_normal(3)
    with pytest.raises(TapeError, match="baked into the tape"):
        ad.tape(lambda x: ad.sum(x * x.value), x)


def test_integer_labels_replay_and_refuse_arithmetic(rng):
    args = mlp_problem(rng)
    t = ad.tape(mlp_loss, *args)
    args[5] = (args[5] + 1) % 4
    assert t(*args) == pytest.approx(mlp_loss(*args), rel=1e-12)
    with pytest.raises(TapeError, match="Integer arguments may only index"):
        ad.tape(lambda x, y: ad.sum(x[y + 1]), np.ones(5), np.array([0, 1]))
    with pytest.raises(TapeError, match="no gradient"):
        t.grad(*args, argnums=5)


def test_wrong_shapes_and_dtypes_are_refused(rng):
    t = ad.tape(lambda x: ad.sum(x * x), np.ones(3))
    with pytest.raises(TapeError, match=r"shape \(3,\) and dtype float64, got an array of "
                                        r"shape \(4,\).*record a new tape"):
        t(np.ones(4))
    with pytest.raises(TapeError, match="dtype float32"):
        t(np.ones(3, dtype=np.float32))
    with pytest.raises(TypeError, match="recorded with 1 arguments"):
        t(np.ones(3), np.ones(3))


def test_returned_arrays_are_fresh(rng):
    t = ad.tape(lambda x: ad.sum(ad.tanh(x) * x), rng.standard_normal(5))
    first = t.grad(np.ones(5))
    kept = first.copy()
    t.grad(np.full(5, 2.0))
    np.testing.assert_array_equal(first, kept)


def test_float32_stays_float32(rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    t = ad.tape(lambda x: ad.sum(ad.tanh(x @ x.T)), x)
    value, g = t.value_and_grad(x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, ad.grad(lambda x: ad.sum(ad.tanh(x @ x.T)))(x), rtol=1e-5)


def test_python_floats_replay_through_the_rules():
    def f(a, b):
        return a * b + ad.sin(a) / b

    t = ad.tape(f, 1.0, 2.0)
    value, (da, db) = t.value_and_grad(0.5, 3.0, argnums=(0, 1))
    expected_value, (ea, eb) = ad.value_and_grad(f, argnums=(0, 1))(0.5, 3.0)
    assert (value, da, db) == pytest.approx((expected_value, ea, eb), rel=1e-14)


def test_every_kernel_matches_the_engine(rng):
    """Each op with a fast kernel, with broadcasting, against the reverse engine."""
    def f(a, b, c):
        s = (a + b) * (a - c) / (1.5 + ad.exp(b)) - a * 0.5
        t = ad.tanh(s) + ad.relu(-s) + ad.log(ad.exp(c) + 1.0)
        u = ad.max(t, axis=0) + ad.mean(t, axis=1).reshape(1, 4)[0, :4:2].sum()
        v = (t @ t.T).transpose()[1:, :2] * 0.1
        w = ad.broadcast_to(c, (3, 4)).reshape(12)[np.array([0, 3, 3, 7])]
        return ad.sum(u * u) + ad.sum(v) + ad.sum(w * w) + ad.mean(t)

    a, b, c = rng.standard_normal((4, 4)), rng.standard_normal(4), rng.standard_normal((1, 4))
    t = ad.tape(f, a, b, c)
    kinds = {r["kernel"] for r in t.rows()}
    assert {"kernel", "view"} <= kinds
    for _ in range(2):
        a, b, c = rng.standard_normal((4, 4)), rng.standard_normal(4), rng.standard_normal((1, 4))
        value, grads = t.value_and_grad(a, b, c, argnums=(0, 1, 2))
        expected_value, expected = ad.value_and_grad(f, argnums=(0, 1, 2))(a, b, c)
        assert value == pytest.approx(expected_value, rel=1e-12)
        assert_close(grads, expected)


def test_unused_input_and_constant_output(rng):
    t = ad.tape(lambda x, z: ad.sum(x * 2.0), rng.standard_normal(3), rng.standard_normal(2))
    _, (gx, gz) = t.value_and_grad(np.ones(3), np.ones(2), argnums=(0, 1))
    np.testing.assert_array_equal(gz, np.zeros(2))
    np.testing.assert_array_equal(gx, np.full(3, 2.0))
    constant = ad.tape(lambda x: 3.0, np.ones(2))
    assert constant.value_and_grad(np.ones(2)) == (3.0, pytest.approx(np.zeros(2)))


def test_value_and_grad_needs_a_scalar(rng):
    t = ad.tape(lambda x: x * 2.0, rng.standard_normal(3))
    np.testing.assert_array_equal(t(np.ones(3)), np.full(3, 2.0))
    with pytest.raises(TapeError, match=r"scalar output.*shape \(3,\)"):
        t.grad(np.ones(3))


def test_prints_as_the_evaluation_trace_with_its_memory_plan(rng):
    t = ad.tape(mlp_loss, *mlp_problem(rng))
    text = repr(t)
    assert "Tape of mlp_loss: 6 inputs" in text
    assert "v₁  = X @ W1" in text
    assert "v₂  = v₁ + b1" in text
    assert "memory plan:" in text and "(value and gradient)" in text
    html = t._repr_html_()
    assert html.count("<tr>") == len(t.statements) + 1
    plan = repr(t.memory_plan(argnums=(0, 1, 2, 3)))
    assert "buffer 0:" in plan and "returned gradients: 4 fresh arrays" in plan


def test_max_shares_ties_like_the_engine():
    """Ties at the maximum split the adjoint, also when it is added to an earlier one."""
    def f(x):
        return ad.sum(ad.max(x, axis=1) * 2.0) + ad.sum(x * x)

    x = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]])
    t = ad.tape(f, x)
    np.testing.assert_allclose(t.grad(x), ad.grad(f)(x), rtol=1e-14)
    np.testing.assert_allclose(t.grad(x), [[2.0, 7.0, 7.0], [5.0, 0.0, 5.0]])


def test_ops_without_kernels_replay_through_their_rules(rng):
    """pow, sin, sqrt, sigmoid, stack, concatenate, logsumexp, batched matmul, cross-entropy."""
    labels = np.array([0, 2, 1])

    def f(a, b):
        s = ad.stack([ad.sin(a[0]), ad.sqrt(a[1] ** 2 + 1.0)], axis=0)
        c = ad.concatenate([s, ad.sigmoid(b)], axis=0)
        batched = ad.matmul(c.reshape(2, 2, 3), c.reshape(2, 3, 2) ** 1.5)
        return (ad.logsumexp(batched) + ad.cross_entropy(c[:3, :], labels)
                + ad.sum(a ** b[0]))

    a, b = rng.uniform(0.5, 2.0, (2, 3)), rng.uniform(0.5, 2.0, (2, 3))
    t = ad.tape(f, a, b)
    assert "rule" in {r["kernel"] for r in t.rows()}
    a, b = rng.uniform(0.5, 2.0, (2, 3)), rng.uniform(0.5, 2.0, (2, 3))
    value, grads = t.value_and_grad(a, b, argnums=(0, 1))
    expected_value, expected = ad.value_and_grad(f, argnums=(0, 1))(a, b)
    assert value == pytest.approx(expected_value, rel=1e-12)
    assert_close(grads, expected)


def test_the_replay_is_a_readable_adjoint_program(rng):
    t = ad.tape(mlp_loss, *mlp_problem(rng))
    source = t.source(argnums=(0, 1, 2, 3))
    assert source.startswith("def replay(W1, b1, W2, b2, X, y):")
    assert "np.matmul(X, W1, out=v1)  # v₁ = X @ W1" in source
    assert "return value, (W1_bar, b1_bar, W2_bar, b2_bar, )" in source
    assert "nothing to add" in source  # an add's adjoint shares its cotangent's buffer
    assert "_bar" not in t.source()  # the value-only replay has no reverse sweep


def test_cross_entropy_labels_are_replayed_too(rng):
    def f(W, X, y):
        return ad.cross_entropy(X @ W, y)

    W, X = rng.standard_normal((3, 4)), rng.standard_normal((5, 3))
    t = ad.tape(f, W, X, np.array([0, 1, 2, 3, 0]))
    y = np.array([3, 3, 1, 0, 2])
    value, g = t.value_and_grad(W, X, y)
    expected_value, expected = ad.value_and_grad(f)(W, X, y)
    assert value == pytest.approx(expected_value, rel=1e-12)
    np.testing.assert_allclose(g, expected, rtol=1e-12)
    assert "labels=y" in repr(t)


def test_in_place_through_a_transposed_view(rng):
    """w = tᵀ + 1 may take t's buffer (t dies there) although it reads t transposed."""
    def f(x):
        t = x * 2.0
        w = t.T + 1.0
        return ad.sum(w * np.arange(12.0).reshape(4, 3))

    x = rng.standard_normal((3, 4))
    t = ad.tape(f, x)
    plan = t.memory_plan()
    assert len(plan.buffers) == 1 and len(plan.lifetimes) == 3  # t, w and the product share
    x2 = rng.standard_normal((3, 4))
    assert t(x2) == pytest.approx(f(x2), rel=1e-13)
    np.testing.assert_allclose(t.grad(x2), ad.grad(f)(x2), rtol=1e-13)


def test_a_log_softmax_from_primitives_has_one_fused_adjoint(rng):
    """The six statements of a stable log-softmax get one adjoint, x̄ = ȳ − softmax Σȳ: the
    gradient agrees with the statement-by-statement sweep of the eager engine."""
    args = mlp_problem(rng, batch=16, hidden=6)
    t = ad.tape(mlp_loss, *args)
    source = t.source(argnums=(0, 1, 2, 3))
    assert "_log_softmax_vjp(v11_bar, v11, v5, v8, v9, axis=(1,), dst=v5_bar)" in source
    for inner in ("v6_bar", "v7_bar", "v8_bar", "v9_bar", "v10_bar"):
        assert inner not in source  # no adjoint flows through the block's inner values
    value, grads = t.value_and_grad(*args, argnums=(0, 1, 2, 3))
    expected_value, expected = ad.value_and_grad(mlp_loss, argnums=(0, 1, 2, 3))(*args)
    assert value == pytest.approx(expected_value, rel=1e-13)
    assert_close(grads, expected)
    # ties in the max: the fused adjoint does not depend on which entry is the max
    tied = [a.copy() for a in args]
    tied[2][:, 1] = tied[2][:, 0]
    tied[3][1] = tied[3][0]
    value, grads = t.value_and_grad(*tied, argnums=(0, 1, 2, 3))
    assert_close(grads, ad.grad(mlp_loss, argnums=(0, 1, 2, 3))(*tied))


def test_a_fused_block_whose_values_are_used_elsewhere_still_sends_their_adjoints(rng):
    """The fused adjoint replaces only the paths from the block's end: a max and a sum that
    the program uses again send their own adjoints through the block (linearity)."""
    def leaky(W, X):
        logits = X @ W
        m = ad.max(logits, axis=1, keepdims=True)
        shifted = logits - m
        total = ad.sum(ad.exp(shifted), axis=1, keepdims=True)
        logp = shifted - ad.log(total)
        return ad.sum(logp * logp) + ad.sum(m * m) + ad.sum(ad.sqrt(total))

    W, X = rng.standard_normal((3, 4)), rng.standard_normal((5, 3))
    t = ad.tape(leaky, W, X)
    assert "_log_softmax_vjp" in t.source(argnums=0)
    expected = ad.jacfwd(leaky)(W, X)  # forward mode: no fusion anywhere
    np.testing.assert_allclose(t.grad(W, X), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ad.grad(leaky)(W, X), expected, rtol=1e-12, atol=1e-12)


def test_a_log_sum_exp_from_primitives_has_one_fused_adjoint(rng):
    """lse = log Σ exp(x − m) + m[:, 0], the cross-entropy of the benchmarks and lectures."""
    def nll(W, X, y):
        logits = X @ W
        m = ad.max(logits, axis=1, keepdims=True)
        lse = ad.log(ad.sum(ad.exp(logits - m), axis=1)) + m[:, 0]
        return ad.mean(lse - logits[np.arange(len(y)), y])

    W, X, y = rng.standard_normal((3, 4)), rng.standard_normal((6, 3)), rng.integers(0, 4, 6)
    t = ad.tape(nll, W, X, y)
    assert "_logsumexp_vjp(" in t.source(argnums=0)
    expected = ad.jacfwd(nll)(W, X, y)
    np.testing.assert_allclose(t.grad(W, X, y), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ad.grad(nll)(W, X, y), expected, rtol=1e-12, atol=1e-12)


def test_inputs_are_named_by_the_signature_and_varargs_are_numbered():
    def f(*xs):
        return ad.sin(xs[0] / xs[1]) * xs[0]

    t = ad.tape(f, 1.5, 0.5)
    assert [spec.name for spec in t.inputs] == ["xs0", "xs1"]
    assert "def replay(xs0, xs1):" in t.source()
    assert re.search(r"v₁ += xs0 / xs1", repr(t))
    assert repr(t).startswith("Tape of f: 2 inputs, 3 statements, 0 guards")
    t = ad.tape(lambda a, *rest: a * rest[0], 1.0, 2.0)
    assert [spec.name for spec in t.inputs] == ["a", "rest0"]
    assert repr(t).startswith("Tape of <lambda>: 2 inputs, 1 statement, 0 guards")


def test_a_log_sum_exp_plus_another_value_is_not_fused_and_still_right(rng):
    """Only m[:, 0] of the block's own max completes a log-sum-exp: anything else added to
    log Σ exp is left to the statement-by-statement sweep (and compared by identity)."""
    def almost(W, X):
        logits = X @ W
        m = ad.max(logits, axis=1, keepdims=True)
        other = 2.0 * ad.max(logits, axis=1, keepdims=True)
        lse = ad.log(ad.sum(ad.exp(logits - m), axis=1)) + other[:, 0]
        return ad.sum(lse * lse)

    W, X = rng.standard_normal((3, 4)), rng.standard_normal((5, 3))
    expected = ad.jacfwd(almost)(W, X)
    np.testing.assert_allclose(ad.grad(almost)(W, X), expected, rtol=1e-12, atol=1e-12)
    t = ad.tape(almost, W, X)
    assert "_logsumexp_vjp" not in t.source(argnums=0)
    np.testing.assert_allclose(t.grad(W, X), expected, rtol=1e-12, atol=1e-12)
