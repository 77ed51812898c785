"""Random expression trees: our gradients (both modes) against HIPS autograd as an oracle."""

import autograd
import autograd.numpy as anp
import numpy as np
import pytest

import course_ad as ad

N_TREES = 1000

# (name, arity, course_ad form, autograd form): each safe on all of R, so any tree is defined
OPERATIONS = [
    ("add", 2, lambda a, b: a + b, lambda a, b: a + b),
    ("sub", 2, lambda a, b: a - b, lambda a, b: a - b),
    ("mul", 2, lambda a, b: a * b, lambda a, b: a * b),
    ("div", 2, lambda a, b: a / (1.5 + b * b), lambda a, b: a / (1.5 + b * b)),
    ("sin", 1, ad.sin, anp.sin),
    ("cos", 1, ad.cos, anp.cos),
    ("tanh", 1, ad.tanh, anp.tanh),
    ("sigmoid", 1, ad.sigmoid, lambda a: 0.5 * (anp.tanh(0.5 * a) + 1)),
    ("exp", 1, lambda a: ad.exp(ad.tanh(a)), lambda a: anp.exp(anp.tanh(a))),
    ("log", 1, lambda a: ad.log(1.0 + a * a), lambda a: anp.log(1.0 + a * a)),
    ("sqrt", 1, lambda a: ad.sqrt(2.0 + a * a), lambda a: anp.sqrt(2.0 + a * a)),
    ("pow", 1, lambda a: (1.0 + a * a) ** 1.5, lambda a: (1.0 + a * a) ** 1.5),
    ("neg", 1, lambda a: -a, lambda a: -a),
    ("sumbcast", 1, lambda a: a + ad.sum(a) * 0.1, lambda a: a + anp.sum(a) * 0.1),
]


def random_tree(rng, depth, n_inputs):
    if depth == 0 or rng.random() < 0.2:
        return ("input", int(rng.integers(n_inputs)))
    op = OPERATIONS[int(rng.integers(len(OPERATIONS)))]
    return (op, [random_tree(rng, depth - 1, n_inputs) for _ in range(op[1])])


def evaluate(tree, inputs, engine):
    """Iterative post-order evaluation (trees can be deep): engine 2 = course_ad, 3 = autograd."""
    results = {}
    stack = [(tree, False)]
    while stack:
        node, ready = stack.pop()
        if node[0] == "input":
            results[id(node)] = inputs[node[1]]
        elif ready:
            results[id(node)] = node[0][engine](*(results[id(c)] for c in node[1]))
        else:
            stack.append((node, True))
            stack.extend((c, False) for c in node[1])
    return results[id(tree)]


@pytest.mark.filterwarnings("ignore:overflow encountered in cosh")  # autograd's tanh rule
@pytest.mark.parametrize("block", range(4))
def test_random_expression_trees_match_autograd(block):
    rng = np.random.default_rng(1234 + block)
    checked = 0
    for _ in range(N_TREES // 4):
        tree = random_tree(rng, depth=int(rng.integers(1, 7)), n_inputs=3)
        shape = () if rng.random() < 0.5 else (3,)
        xs = [rng.uniform(-1.5, 1.5, shape) for _ in range(3)]
        if shape == ():
            xs = [float(x) for x in xs]

        def ours(*inputs, tree=tree):
            return ad.sum(evaluate(tree, inputs, 2))

        def theirs(*inputs, tree=tree):
            return anp.sum(evaluate(tree, inputs, 3))

        expected = autograd.grad(theirs, (0, 1, 2))(*xs)
        reverse = ad.grad(ours, argnums=(0, 1, 2))(*xs)
        direction = [np.ones_like(x) * 0.7 for x in xs]
        _, forward = ad.jvp(ours, xs, direction)
        for want, got in zip(expected, reverse):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
        want_forward = sum(np.sum(g * d) for g, d in zip(expected, direction))
        np.testing.assert_allclose(forward, want_forward, rtol=1e-9, atol=1e-12)
        checked += 1
    assert checked == N_TREES // 4


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
