"""Pytrees: dicts, lists, tuples and None as arguments and results of every transformation."""

from collections import OrderedDict, namedtuple

import autograd
import autograd.numpy as anp
import numpy as np
import pytest

import course_ad as ad
from course_ad.pytree import flatten, tree_map

Pair = namedtuple("Pair", ["left", "right"])


def params(rng):
    return {"layers": [{"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)},
                       {"W": rng.standard_normal((4, 2)), "b": rng.standard_normal(2)}],
            "scale": 0.7}


def loss(p, x, np_=ad):
    h = x
    for layer in p["layers"]:
        h = np_.tanh(h @ layer["W"] + layer["b"])
    return np_.sum(h**2) * p["scale"]


X = np.linspace(-1.0, 1.0, 15).reshape(5, 3)


def assert_trees_close(got, want, **tolerance):
    got_leaves, got_def = flatten(got)
    want_leaves, want_def = flatten(want)
    assert got_def == want_def, f"{got_def} != {want_def}"
    for g, w in zip(got_leaves, want_leaves):
        assert np.shape(g) == np.shape(w)
        np.testing.assert_allclose(g, w, **tolerance)


# --------------------------------------------------------------------------------------
# flatten and unflatten
# --------------------------------------------------------------------------------------


def test_flatten_lists_leaves_in_order_and_unflatten_rebuilds_the_tree():
    tree = {"b": [1.0, (2.0, None)], "a": np.ones(2), "c": Pair(3.0, OrderedDict(z=4.0, y=5.0))}
    leaves, treedef = flatten(tree)
    assert [np.shape(v) for v in leaves] == [(2,), (), (), (), (), ()]
    assert leaves[1:] == [1.0, 2.0, 3.0, 4.0, 5.0]  # dict keys sorted, OrderedDict kept as is
    assert treedef.paths == ("['a']", "['b'][0]", "['b'][1][0]", "['c'].left",
                             "['c'].right['z']", "['c'].right['y']")
    rebuilt = treedef.unflatten([10 * v for v in leaves])
    assert rebuilt["b"] == [10.0, (20.0, None)] and type(rebuilt["b"][1]) is tuple
    assert isinstance(rebuilt["c"], Pair) and type(rebuilt["c"].right) is OrderedDict
    assert list(rebuilt["c"].right) == ["z", "y"] and rebuilt["c"].right["y"] == 50.0
    assert "None" in repr(treedef) and "Pair(" in repr(treedef)


def test_none_is_an_empty_subtree_and_a_bare_value_is_one_leaf():
    assert flatten(None)[0] == [] and flatten(None)[1].unflatten([]) is None
    leaves, treedef = flatten(np.ones(3))
    assert len(leaves) == 1 and treedef.is_leaf
    assert flatten([])[1] != flatten(())[1] != flatten({})[1]


def test_very_deep_nesting_needs_no_recursion():
    tree = 1.0
    for i in range(6_000):  # far past the recursion limit
        tree = [tree, float(i)] if i % 2 else {"k": tree}
    leaves, treedef = flatten(tree)
    assert len(leaves) == 3_001
    again = treedef.unflatten(leaves)
    assert flatten(again)[1] == treedef
    doubled = tree_map(lambda v: 2 * v, tree)
    assert flatten(doubled)[0][0] == 2.0


def test_a_tree_that_contains_itself_is_refused():
    loop = [1.0]
    loop.append(loop)
    with pytest.raises(ValueError, match=r"container at \[1\] contains itself"):
        flatten(loop)


def test_unflatten_checks_the_number_of_leaves():
    _, treedef = flatten({"a": 1.0, "b": [2.0]})
    with pytest.raises(ValueError, match=r"\{'a': \*, 'b': \[\*\]\} has 2 leaves but 3"):
        treedef.unflatten([1.0, 2.0, 3.0])


# --------------------------------------------------------------------------------------
# grad and value_and_grad against HIPS autograd, which supports the same containers
# --------------------------------------------------------------------------------------


def test_grad_of_a_dict_of_arrays_matches_autograd(rng):
    p = params(rng)
    got = ad.grad(loss)(p, X)
    want = autograd.grad(lambda q: loss(q, X, anp))(p)
    assert got.keys() == p.keys() and isinstance(got["layers"], list)
    assert_trees_close(got, want, rtol=1e-12, atol=1e-14)


def test_value_and_grad_with_argnums_tuple_of_trees_matches_autograd(rng):
    def f(p, pair, c, np_=ad):
        return np_.sum(np_.sin(p["w"]) * pair[0]) + pair[1][1] * c + np_.sum(p["v"][0] ** 3)

    p = {"w": rng.standard_normal(3), "v": (rng.standard_normal(2),)}
    pair = (rng.standard_normal(3), [2.0, -1.5])
    value, (gp, gpair) = ad.value_and_grad(f, argnums=(0, 1))(p, pair, 4.0)
    assert np.isclose(value, f(p, pair, 4.0, anp))
    want = autograd.grad(lambda a, b: f(a, b, 4.0, anp), (0, 1))(p, pair)
    assert_trees_close((gp, gpair), want, rtol=1e-12, atol=1e-14)
    assert type(gpair) is tuple and type(gpair[1]) is list and gpair[1] == [0.0, 4.0]


def test_grad_at_an_argnum_that_is_a_bare_array_is_unchanged(rng):
    x = rng.standard_normal(4)
    np.testing.assert_allclose(ad.grad(lambda v: ad.sum(v**2))(x), 2 * x)


def test_none_leaves_get_none_gradients():
    g = ad.grad(lambda p: p["x"] ** 2 * 3.0)({"x": 2.0, "unused": None, "also": [None, 1.0]})
    assert g == {"also": [None, 0.0], "unused": None, "x": 12.0}


def test_grad_with_has_aux_and_a_tree():
    g, aux = ad.grad(lambda p: (p[0] * p[1], "note"), has_aux=True)([2.0, 5.0])
    assert g == [5.0, 2.0] and aux == "note"


def test_aux_comes_back_as_plain_values_nested_as_returned():
    def f(p):
        h = ad.tanh(p["x"])
        return ad.sum(h), {"hidden": h, "label": "layer 1", "count": 3}

    (value, aux), g = ad.value_and_grad(f, has_aux=True)({"x": np.array([0.5, -1.0])})
    assert type(aux["hidden"]) is np.ndarray and aux["label"] == "layer 1" and aux["count"] == 3
    np.testing.assert_allclose(aux["hidden"], np.tanh([0.5, -1.0]))
    np.testing.assert_allclose(g["x"], 1.0 - np.tanh([0.5, -1.0]) ** 2)


def test_grad_of_grad_through_a_tree():
    def f(p):
        return p["a"] ** 3 * p["b"]

    def first(p):
        return ad.grad(f)(p)["a"]  # 3 a² b

    assert ad.grad(first)({"a": 2.0, "b": 5.0}) == {"a": 60.0, "b": 12.0}


# --------------------------------------------------------------------------------------
# jvp, vjp, jacfwd, jacrev, hessian, hvp (checked by hand and against each other)
# --------------------------------------------------------------------------------------


def two_outputs(p):
    return {"prod": p["x"] * p["y"][0], "pair": (ad.sum(p["x"] ** 2), p["y"][1] * 3.0)}


P = {"x": np.array([1.0, 2.0, 3.0]), "y": [np.array([0.5, -1.0, 2.0]), 4.0]}


def test_jvp_takes_and_returns_trees():
    dp = {"x": np.array([1.0, 0.0, 0.0]), "y": [np.zeros(3), 1.0]}
    out, tangent = ad.jvp(two_outputs, (P,), (dp,))
    assert_trees_close(out, {"prod": P["x"] * P["y"][0], "pair": (14.0, 12.0)})
    assert_trees_close(tangent, {"prod": np.array([0.5, 0.0, 0.0]), "pair": (2.0, 3.0)})


def test_vjp_takes_a_tree_cotangent_and_returns_trees():
    out, pullback = ad.vjp(two_outputs, P)
    cotangent = {"prod": np.array([1.0, 1.0, 0.0]), "pair": (0.5, 2.0)}
    (g,) = pullback(cotangent)
    want = {"x": np.array([0.5 + 1.0, -1.0 + 2.0, 0.0 + 3.0]),
            "y": [np.array([1.0, 2.0, 0.0]), 6.0]}
    assert_trees_close(g, want)
    assert_trees_close(pullback(cotangent)[0], want)  # a second sweep gives the same


def test_vjp_of_a_tree_where_one_output_is_a_constant(rng):
    out, pullback = ad.vjp(lambda a, b: [a * 2.0, np.ones(2), None], 1.5, rng.standard_normal(2))
    assert out[0] == 3.0 and out[2] is None
    da, db = pullback([1.0, np.ones(2), None])
    assert da == 2.0 and np.array_equal(db, np.zeros(2))


def test_jvp_and_vjp_agree_on_trees(rng):
    dp = tree_map(lambda v: rng.standard_normal(np.shape(v)) if np.shape(v) else 0.3, P)
    _, tangent = ad.jvp(two_outputs, (P,), (dp,))
    out, pullback = ad.vjp(two_outputs, P)
    cotangent = tree_map(lambda v: rng.standard_normal(np.shape(v)) if np.shape(v) else -0.7,
                         out)
    (g,) = pullback(cotangent)

    def inner(a, b):
        return sum(float(np.sum(np.multiply(u, v))) for u, v in zip(flatten(a)[0],
                                                                     flatten(b)[0]))

    assert np.isclose(inner(cotangent, tangent), inner(g, dp))


def test_jacfwd_and_jacrev_nest_output_tree_over_input_tree():
    for jac in (ad.jacfwd, ad.jacrev):
        J = jac(two_outputs)(P)
        assert J["prod"]["x"].shape == (3, 3) and J["prod"]["y"][0].shape == (3, 3)
        assert J["prod"]["y"][1].shape == (3,) and np.shape(J["pair"][0]["y"][1]) == ()
        np.testing.assert_allclose(J["prod"]["x"], np.diag(P["y"][0]))
        np.testing.assert_allclose(J["prod"]["y"][0], np.diag(P["x"]))
        np.testing.assert_allclose(J["pair"][0]["x"], 2 * P["x"])
        np.testing.assert_allclose(J["pair"][1]["y"][1], 3.0)
        np.testing.assert_allclose(J["pair"][1]["x"], np.zeros(3))  # no stale adjoints


def test_jacobians_with_argnums_tuple():
    def f(a, b, c):
        return a * b + c

    a, b = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    for jac in (ad.jacfwd, ad.jacrev):
        Ja, Jc = jac(f, argnums=(0, 2))(a, b, 0.5)
        np.testing.assert_allclose(Ja, np.diag(b))
        np.testing.assert_allclose(Jc, np.ones(2))


def test_hessian_of_a_dict_function_matches_autograd_on_the_flat_vector():
    def f(p, np_=ad):
        return np_.sum(np_.sin(p["u"]) * p["v"] ** 2) + p["u"][0] * p["v"][1] ** 3

    p = {"u": np.array([0.3, -0.4]), "v": np.array([1.2, 0.7])}
    H = ad.hessian(f)(p)
    flat = autograd.hessian(lambda z: f({"u": z[:2], "v": z[2:]}, anp))(np.r_[p["u"], p["v"]])
    assert H.keys() == {"u", "v"} and H["u"].keys() == {"u", "v"}
    full = np.block([[H["u"]["u"], H["u"]["v"]], [H["v"]["u"], H["v"]["v"]]])
    np.testing.assert_allclose(full, flat, rtol=1e-12, atol=1e-14)
    v = {"u": np.array([1.0, -2.0]), "v": np.array([0.5, 0.25])}
    hv = ad.hvp(f, p, v)
    np.testing.assert_allclose(np.r_[hv["u"], hv["v"]], flat @ np.r_[v["u"], v["v"]],
                               rtol=1e-12)


# --------------------------------------------------------------------------------------
# Errors that name the place in the tree
# --------------------------------------------------------------------------------------


def test_a_string_leaf_is_named_by_its_path():
    with pytest.raises(TypeError, match=r"grad: argument 0\['w'\]\[1\] is a str; only floats "
                                        "and float arrays can be differentiated"):
        ad.grad(lambda p: 0.0)({"w": [1.0, "two"]})
    with pytest.raises(TypeError, match=r"jacrev: argument 1\[0\] is an object"):
        ad.jacrev(lambda a, b: a, argnums=1)(1.0, (object(),))
    with pytest.raises(TypeError, match=r"vjp: argument 0\.right is an array of dtype <U1"):
        ad.vjp(lambda p: p.left, Pair(1.0, np.array(["a"])))


def test_a_tangent_nested_differently_is_refused():
    with pytest.raises(ValueError, match=r"jvp: tangent 0: expected a tree shaped like "
                                         r"\{'a': \*, 'b': \*\}, got \{'a': \*\}"):
        ad.jvp(lambda p: p["a"], ({"a": 1.0, "b": 2.0},), ({"a": 1.0},))


def test_a_cotangent_nested_differently_is_refused():
    _, pullback = ad.vjp(lambda a: (a, a * 2.0), 1.0)
    with pytest.raises(ValueError, match=r"vjp: the cotangent: expected a tree shaped like "
                                         r"\(\*, \*\), got \[\*, \*\]"):
        pullback([1.0, 1.0])
    with pytest.raises(ValueError, match=r"cotangent has shape \(2,\) but its output has shape"):
        pullback((1.0, np.ones(2)))


def test_grad_of_a_tree_valued_function_says_to_use_jacrev():
    with pytest.raises(ValueError, match="must return a scalar, but it returned a dict"):
        ad.grad(lambda x: {"y": x})(1.0)
