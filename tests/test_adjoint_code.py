"""The reverse sweep written out as code for a graph seen before (course_ad.adjoint_code).

The written sweep must give the generic sweep's adjoints exactly, and must refuse every
graph that differs from the one it was written for: other parents, the same node twice,
swapped arguments, other shapes, other parameters, a constant where a node was."""

import warnings

import autograd
import autograd.numpy as anp
import numpy as np
import pytest

import course_ad as ad
from course_ad import ReverseDiff, adjoint_code
from tests.test_vs_autograd import OPERATIONS, random_tree

KERNEL_FORMS = {"neg", "add", "sub", "mul", "div", "exp", "log", "tanh", "relu", "matmul",
                "sum", "mean", "max", "reshape", "transpose", "broadcast_to", "getitem"}


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch):
    """Each test starts with nothing written, and counts the sweeps that ran written code."""
    monkeypatch.setattr(adjoint_code, "_WRITTEN", {})
    monkeypatch.setattr(adjoint_code, "_SIGHTINGS", {})
    monkeypatch.setattr(adjoint_code, "_WRITES", {})
    ran = {"written": 0}
    run = adjoint_code.run

    def counting(output, every_node):
        used = run(output, every_node)
        ran["written"] += used
        return used

    monkeypatch.setattr(adjoint_code, "run", counting)
    return ran


def _loss(W1, b1, W2, b2, X, y):
    logits = ad.relu(X @ W1 + b1) @ W2 + b2
    m = ad.max(logits, axis=1, keepdims=True)
    lse = ad.log(ad.sum(ad.exp(logits - m), axis=1)) + m[:, 0]
    return ad.mean(lse - logits[np.arange(len(y)), y])


def _problem(rng, batch=8, hidden=5):
    X = rng.standard_normal((batch, 6))
    y = rng.integers(0, 4, batch)
    params = [rng.standard_normal((6, hidden)), rng.standard_normal(hidden),
              rng.standard_normal((hidden, 4)), rng.standard_normal(4)]
    return X, y, params


def _backward_grads(params, X, y):
    nodes = [ReverseDiff(p) for p in params]
    out = _loss(*nodes, X, y)
    out.backward()
    return out, nodes


def test_mlp_step_runs_written_code_with_the_generic_adjoints(rng, fresh_cache):
    X, y, params = _problem(rng)
    generic = ad.value_and_grad(_loss, argnums=(0, 1, 2, 3))(*params, X, y)
    for _ in range(4):
        value, grads = ad.value_and_grad(_loss, argnums=(0, 1, 2, 3))(*params, X, y)
        assert value == generic[0]
        for got, want in zip(grads, generic[1]):
            np.testing.assert_array_equal(got, want)
    assert fresh_cache["written"] == 3  # five sweeps: two generic (then written out), three written


def test_backward_keeps_every_node_adjoint_in_written_code(rng, fresh_cache):
    X, y, params = _problem(rng)
    first, _ = _backward_grads(params, X, y)
    want = [node.grad for node in ad.topological_order(first)]
    for _ in range(3):
        out, nodes = _backward_grads(params, X, y)
    assert fresh_cache["written"] == 2  # four sweeps: two generic, two written
    got = [node.grad for node in ad.topological_order(out)]
    assert len(got) == len(want) == 19
    for g, w in zip(got, want):  # inner nodes of the log-sum-exp too: pictures show them
        np.testing.assert_array_equal(g, w)


def test_written_code_reads_like_adjoint_code_and_holds_no_values(rng):
    X, y, params = _problem(rng)
    nodes = [ReverseDiff(p) for p in params]
    out = _loss(*nodes, X, y)
    from course_ad.reverse import _block
    sweep = adjoint_code.write_sweep(ad.topological_order(out), False, _block)
    lines = sweep.source.splitlines()
    assert lines[0] == "def sweep(n18):"
    assert "    g18 = 1.0" in lines  # the seed
    assert "    g16 = np.negative(g17)" in lines  # the subtraction's second input
    assert "    g8 = K16_0(g16, v16, v8, **n16._params)" in lines  # the gather's adjoint
    assert "    g8 += F15(g15, v15, v8, v11, v12, axis=A15)" in lines  # fused: softmax · ȳ
    assert "    g3 = np.add.reduce(g8, axis=(0,))" in lines  # the bias: summed over the batch
    kept = [v for v in sweep.__globals__.values() if isinstance(v, np.ndarray | ReverseDiff)]
    assert kept == []  # rules, kernels, shapes and parameters only: no graph stays alive


def _graphs(rng):
    """Pairs of graphs with the same output operation whose forms differ in one way."""
    a, b = ReverseDiff(rng.standard_normal(3)), ReverseDiff(rng.standard_normal(3))
    c = ReverseDiff(rng.standard_normal(3))
    yield "x*y then x*x", lambda: ad.sum(a * b), lambda: ad.sum(a * a)
    yield "x*y then y*x", lambda: ad.sum(a * b), lambda: ad.sum(c * a)  # c made after a
    yield "shapes", lambda: ad.sum(a * b), lambda: ad.sum(
        ReverseDiff(np.ones((2, 3))) * ReverseDiff(np.ones(3)))
    square = rng.standard_normal((3, 3))
    yield "axis", lambda: ad.sum(ad.max(ReverseDiff(square), axis=0)), \
        lambda: ad.sum(ad.max(ReverseDiff(square), axis=1))
    yield "constant", lambda: ad.sum(a * b), lambda: ad.sum(a * np.array([1.0, 2.0, 3.0]))
    yield "exp then tanh", lambda: ad.sum(ad.exp(a) * b), lambda: ad.sum(ad.tanh(a) * b)
    yield "other parent", lambda: ad.sum((a + b) * a), lambda: ad.sum((a + b) * b)



@pytest.mark.parametrize("case", range(7))
def test_written_code_refuses_a_graph_of_another_form(rng, case, fresh_cache):
    name, first, second = list(_graphs(rng))[case]
    for _ in range(3):  # written out on the second sweep, run on the third
        first_out = first()
        first_out.backward()
    assert fresh_cache["written"] == 1, name
    out = second()
    leaves = [n for n in ad.topological_order(out) if not n.parents]
    out.backward()
    got = [n.grad for n in leaves]
    assert fresh_cache["written"] == 1, f"{name}: the written code ran on another form"
    adjoint_code._WRITTEN.clear()
    out.backward()  # the generic sweep, with nothing written to try
    for g, n in zip(got, leaves):
        np.testing.assert_array_equal(g, n.grad, err_msg=name)


def test_an_index_array_is_read_at_each_sweep(rng, fresh_cache):
    """Index arrays are not part of a graph's form: the written code reads them each time."""
    a, b = ReverseDiff(rng.standard_normal(3)), ReverseDiff(rng.standard_normal(3))
    for index in ([0, 0, 2], [0, 0, 2], [1, 2, 2]):
        out = ad.sum(a[np.array(index)] * b)
        out.backward()
    assert fresh_cache["written"] == 1
    want = np.zeros(3)
    np.add.at(want, [1, 2, 2], b.value)
    np.testing.assert_array_equal(a.grad, want)
    np.testing.assert_array_equal(b.grad, a.value[[1, 2, 2]])


def test_random_graphs_of_kernel_operations_match_autograd(fresh_cache):
    """Every tree swept three times (the third by written code where it can be), each time
    against autograd; trees of one output operation try each other's code and refuse it."""
    forms = [op for op in OPERATIONS if op.name in KERNEL_FORMS]
    assert {op.name for op in forms} == KERNEL_FORMS
    import tests.test_vs_autograd as oracle
    rng = np.random.default_rng(7)
    checked = 0
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        patch.setattr(oracle, "OPERATIONS", forms)
        patch.setattr(adjoint_code, "WRITES", 10**6)  # every tree's form may be written
        for _ in range(300):
            tree = random_tree(rng)
            xs = [np.asarray(x, dtype=float) for x in tree.inputs]  # arrays, 0-d included
            argnums = tuple(range(len(xs)))

            def ours(*xs, tree=tree):
                return ad.sum(tree.evaluate(xs, "ours"))

            def theirs(*xs, tree=tree):
                return anp.sum(tree.evaluate(xs, "theirs"))

            want = autograd.grad(theirs, argnums)(*xs)
            for _ in range(3):
                got = ad.grad(ours, argnums)(*xs)
                for g, w in zip(got, want):
                    np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12,
                                               err_msg=tree.describe())
            checked += 1
    assert checked == 300
    assert fresh_cache["written"] >= 140, fresh_cache  # about half the trees: the others have
    # an operation without a kernel on their values (a sum of a 0-d value, a matmul of vectors)


def test_one_node_in_place_of_two_equal_ones(rng, fresh_cache):
    """Written for u + v with u = a·b and v = a·b, run on u + u: value_and_grad reads only
    the leaves (right by linearity), backward() checks every node is distinct and refuses."""
    a0, b0 = rng.standard_normal(3), rng.standard_normal(3)

    def two(a, b):
        return ad.sum(a * b + a * b)

    def one(a, b):
        u = a * b
        return ad.sum(u + u)

    for _ in range(3):
        ad.grad(two, (0, 1))(a0, b0)
    assert fresh_cache["written"] == 1
    got = ad.grad(one, (0, 1))(a0, b0)
    assert fresh_cache["written"] == 2  # the same leaves' adjoints: 2b and 2a
    np.testing.assert_array_equal(got[0], 2 * b0)
    np.testing.assert_array_equal(got[1], 2 * a0)
    a, b = ReverseDiff(a0), ReverseDiff(b0)
    for _ in range(3):
        out = ad.sum(a * b + a * b)
        out.backward()
    assert fresh_cache["written"] == 3
    u = a * b
    out = ad.sum(u + u)
    out.backward()
    assert fresh_cache["written"] == 3  # refused: u would get half its adjoint
    np.testing.assert_array_equal(u.grad, 2 * np.ones(3))
    np.testing.assert_array_equal(a.grad, 2 * b0)


def _written_then_generic(build, every_node, fresh_cache):
    """Each node's adjoint from written code (the third sweep of ``build()``'s graph), then
    from the generic sweep of the same graph."""
    for _ in range(3):
        out = build()
        if every_node:
            out.backward()
        else:
            out._sweep(None, False, False)
    assert fresh_cache["written"] == 1
    order = ad.topological_order(out)
    written = [node.grad for node in order]
    adjoint_code._WRITTEN.clear()
    for node in order:
        node.grad = None
    if every_node:
        out.backward()
    else:
        out._sweep(None, False, False)
    return written, [node.grad for node in order]


@pytest.mark.parametrize("every_node", [True, False])
def test_three_contributions_add_up_in_the_generic_order(rng, every_node, fresh_cache):
    """x̄ = v̄₁ + v̄₂ + x̄₃ with only the last a fresh array: starting from it would round
    (c + a) + b, not the generic (a + b) + c, and the bits would differ."""
    x0, c = rng.standard_normal(50), rng.standard_normal(50)
    w = rng.standard_normal((3, 50))
    x = ReverseDiff(x0)

    def build():
        return ad.sum(w[0] * (x * c) + w[1] * (x + 1.0) + w[2] * (x + 2.0))

    written, generic = _written_then_generic(build, every_node, fresh_cache)
    for got, want in zip(written, generic):
        if want is not None or every_node:
            np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(x.grad, w[0] * c + w[1] + w[2], rtol=1e-14)


@pytest.mark.parametrize("every_node", [True, False])
def test_a_repeated_index_is_not_scattered_entry_by_entry(rng, every_node, fresh_cache):
    """x[i] with i repeating positions, beside another use of x: adding v̄'s entries into x̄
    one by one rounds (x̄ + a) + b; the generic sweep adds x̄ + (a + b)."""
    x0, c = rng.standard_normal(5), rng.standard_normal(5)
    index, w = rng.integers(0, 5, 50), rng.standard_normal(50)
    x = ReverseDiff(x0)

    def build():
        return ad.sum(w * x[index]) + ad.sum(x * c)

    written, generic = _written_then_generic(build, every_node, fresh_cache)
    for got, want in zip(written, generic):
        if want is not None or every_node:
            np.testing.assert_array_equal(got, want)
    want = c.copy()
    np.add.at(want, index, w)
    np.testing.assert_allclose(x.grad, want, rtol=1e-13)


def test_two_equal_nodes_that_are_now_one_do_not_hide_a_log_sum_exp(rng, fresh_cache):
    """Written for max(x₁) and exp(x₂ − m) with x₁, x₂ two equal products (no block: the
    matcher wants one x), run on one product: the generic sweep fuses that log-sum-exp, so
    the written (unfused) code must refuse it rather than round otherwise."""
    a0, b0, w = rng.standard_normal((4, 5)), rng.standard_normal((4, 5)), rng.standard_normal(4)

    def lse(x1, x2):
        m = ad.max(x1, axis=1, keepdims=True)
        return ad.sum(w * (ad.log(ad.sum(ad.exp(x2 - m), axis=1)) + m[:, 0]))

    def two(a, b):
        return lse(a * b, a * b)

    def one(a, b):
        x = a * b
        return lse(x, x)

    for _ in range(3):
        ad.grad(two, (0, 1))(a0, b0)
    assert fresh_cache["written"] == 1
    got = ad.grad(one, (0, 1))(a0, b0)
    assert fresh_cache["written"] == 1  # refused
    adjoint_code._WRITTEN.clear()
    for g, want in zip(got, ad.grad(one, (0, 1))(a0, b0)):
        np.testing.assert_array_equal(g, want)


def _same_adjoints(got, want, where):
    """Bit for bit, with the generic sweep's types and dtypes (None where it gives None)."""
    for g, w in zip(got, want):
        assert type(g) is type(w), where
        if w is not None:
            assert np.asarray(g).dtype == np.asarray(w).dtype, where
            np.testing.assert_array_equal(g, w, err_msg=where)


def test_random_graphs_give_the_generic_adjoints_bit_for_bit(fresh_cache):
    """Random trees (float64 and float32 leaves, 0-d arrays and numpy scalars, the tree's
    value used once or twice), each node's adjoint from written code against the generic
    sweep's of the same graph, with backward() and with the leaves-only sweep; the code
    written for earlier trees stays, so each tree's output operation tries theirs first."""
    forms = [op for op in OPERATIONS if op.name in KERNEL_FORMS]
    import tests.test_vs_autograd as oracle
    rng = np.random.default_rng(11)
    written = 0
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        patch.setattr(oracle, "OPERATIONS", forms)
        patch.setattr(adjoint_code, "WRITES", 10**6)
        for case in range(160):
            tree = random_tree(rng)
            kinds = rng.integers(0, 3, len(tree.inputs))  # float64, float32, a numpy scalar
            xs = [np.asarray(x, dtype=np.float32 if kind == 1 else float) for x, kind
                  in zip(tree.inputs, kinds)]
            xs = [x[()] if kind == 2 and x.ndim == 0 else x for x, kind in zip(xs, kinds)]
            every_node, twice = bool(case % 2), bool(case % 4 // 2)
            before = fresh_cache["written"]
            for _ in range(3):
                t = tree.evaluate([ReverseDiff(x) for x in xs], "ours")
                out = ad.sum(t * t) + ad.sum(t) if twice else ad.sum(t)
                out._sweep(None, False, every_node)
            if fresh_cache["written"] == before:
                continue  # not written out (an operation without a kernel on its values)
            written += 1
            order = ad.topological_order(out)
            got = [node.grad for node in order]
            kept = dict(adjoint_code._WRITTEN)  # later trees try these candidates too
            adjoint_code._WRITTEN.clear()
            for node in order:
                node.grad = None
            out._sweep(None, False, every_node)
            _same_adjoints(got, [node.grad for node in order], tree.describe())
            adjoint_code._WRITTEN.update(kept)
    assert written >= 60, written


@pytest.mark.parametrize("constant", [np.ones((2, 1)), np.arange(1, 4), np.float32(2.5), 2.5,
                                      np.array(2.0), np.full((1, 3), 0.5, np.float32)])
def test_a_constant_of_another_shape_or_dtype_with_the_same_node_shapes(rng, constant,
                                                                        fresh_cache):
    """Written with a (2, 3) float64 constant, run with one that broadcasts to the same node
    shapes: the constant gets no adjoint, so the code is right for it (read at each sweep)."""
    x = ReverseDiff(rng.standard_normal((2, 3)))

    def build(c):
        return ad.sum(ad.tanh(x * c) / c + c)

    for _ in range(3):
        build(rng.standard_normal((2, 3)) + 3.0).backward()
    assert fresh_cache["written"] == 1
    out = build(constant)
    out.backward()
    assert fresh_cache["written"] == 2
    order = ad.topological_order(out)
    got = [node.grad for node in order]
    adjoint_code._WRITTEN.clear()
    out.backward()
    _same_adjoints(got, [node.grad for node in order], repr(constant))
    c = np.asarray(constant, dtype=float)
    np.testing.assert_allclose(x.grad, (1.0 - np.tanh(x.value * c) ** 2) * c / c
                               * np.ones((2, 3)), rtol=1e-12)


@pytest.mark.parametrize("every_node", [True, False])
def test_no_scatter_into_the_adjoint_of_a_0d_value(every_node, fresh_cache):
    """a 0-d, ā = 3 + Σ c from a·3 and a[None]·c: the first contribution is a numpy scalar,
    which an index's adjoint cannot be scattered into (np.add.at wants an array)."""
    c = np.array([1.5, 2.5])
    for _ in range(3):
        a = ReverseDiff(np.array(2.0))
        out = ad.sum(a[None] * c) + a * 3.0
        out._sweep(None, False, every_node)  # the third sweep raised a TypeError
        assert type(a.grad) is np.float64
        assert a.grad == 7.0


@pytest.mark.parametrize("every_node", [True, False])
def test_a_0d_adjoint_of_two_contributions_keeps_the_generic_type(every_node, fresh_cache):
    """a 0-d, ā = 1 (from a + 1, a Python float) + Σ c (a[None]'s adjoint, a 0-d array): the
    generic sweep adds them into a numpy scalar; summed in place into the array, the written
    code gave a 0-d array. Such graphs keep the generic sweep."""
    c = np.array([1.5, 2.5])
    for _ in range(3):
        a = ReverseDiff(np.array(2.0))
        out = ad.sum(a[None] * c) + (a + 1.0)
        out._sweep(None, False, every_node)
        assert type(a.grad) is np.float64
        assert a.grad == 5.0
    assert fresh_cache["written"] == 0
