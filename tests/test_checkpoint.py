"""Checkpointing: O(√n) stored values for a chain of n steps, the same gradients."""

import math
import tracemalloc

import numpy as np
import pytest

import course_ad as ad
from course_ad import ReverseDiff, topological_order


def step(x):
    """One step of the chain: four nodes."""
    return ad.sin(x) * 0.9 + 0.1 * x


def chain(x, n):
    for _ in range(n):
        x = step(x)
    return x


def checkpointed_chain(x, n):
    """The same chain, cut into √n segments whose insides are recomputed."""
    every = math.isqrt(n)
    segment = ad.checkpoint(lambda x: chain(x, every))
    for _ in range(n // every):
        x = segment(x)
    return chain(x, n % every)


def loss(chain_fn, n):
    return lambda x: ad.sum(chain_fn(x, n) ** 2)


def test_gradients_equal_the_plain_ones(rng):
    x = rng.standard_normal(5)
    for n in (1, 10, 50):
        np.testing.assert_allclose(ad.grad(loss(checkpointed_chain, n))(x),
                                   ad.grad(loss(chain, n))(x), rtol=1e-13)


def test_the_graph_stores_one_node_per_segment():
    n = 400
    plain = loss(chain, n)(ReverseDiff(np.ones(3)))
    cut = loss(checkpointed_chain, n)(ReverseDiff(np.ones(3)))
    assert len(topological_order(plain)) == 4 * n + 3  # leaf, 4 per step, square, sum
    assert len(topological_order(cut)) == math.isqrt(n) + 3
    assert {node.op for node in topological_order(cut)} == {"", "checkpoint(<lambda>)",
                                                             "pow", "sum"}


def test_peak_memory_of_the_reverse_sweep_is_o_sqrt_n():
    """tracemalloc's peak over forward and reverse sweeps: 20 segments of 20 steps keep
    about 20 + 80 values alive, the plain chain 1600."""
    n, x = 400, np.linspace(-1.0, 1.0, 2000)

    def peak(f):
        tracemalloc.start()
        try:
            ad.grad(f)(x)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    plain, cut = peak(loss(chain, n)), peak(loss(checkpointed_chain, n))
    assert cut < plain / 6, (cut, plain)


def test_recomputation_counts_one_extra_forward_per_segment():
    calls = []

    def counted(x):
        calls.append(type(x).__name__)
        return step(x)

    segment = ad.checkpoint(counted)
    ad.grad(lambda x: ad.sum(segment(segment(x))))(np.ones(2))
    assert calls == ["ndarray", "ndarray", "ReverseDiff", "ReverseDiff"]


def test_several_inputs_and_constants(rng):
    def f(x, w, c):
        return ad.tanh(x @ w) * c

    a, w, c = rng.standard_normal((3, 4)), rng.standard_normal(4), np.array([1.0, 2.0, 3.0])
    cut = ad.checkpoint(f)
    got = ad.grad(lambda a, w: ad.sum(cut(a, w, c) ** 2), argnums=(0, 1))(a, w)
    expected = ad.grad(lambda a, w: ad.sum(f(a, w, c) ** 2), argnums=(0, 1))(a, w)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-13)


def test_plain_values_pass_straight_through():
    segment = ad.checkpoint(step)
    assert segment(0.5) == step(0.5)


def test_grad_of_grad_through_a_checkpoint():
    segment = ad.checkpoint(lambda x: ad.sin(x) * x)
    second = ad.grad(ad.grad(lambda x: segment(x) * 2.0))(0.7)
    exact = 2.0 * (2 * math.cos(0.7) - 0.7 * math.sin(0.7))
    assert second == pytest.approx(exact, rel=1e-12)


def test_forward_mode_through_a_checkpoint():
    segment = ad.checkpoint(lambda x: ad.sin(x) * x)
    assert ad.derivative(segment)(0.7) == pytest.approx(math.cos(0.7) * 0.7 + math.sin(0.7))


def test_several_outputs_are_refused():
    pair = ad.checkpoint(lambda x: (x, x))
    with pytest.raises(TypeError, match="must return one array"):
        ad.grad(lambda x: pair(x)[0])(1.0)


def test_a_tape_replays_through_a_checkpoint():
    segment = ad.checkpoint(lambda x: ad.tanh(x) * 0.9)

    def f(x):
        return ad.sum(segment(segment(x)) ** 2)

    t = ad.tape(f, np.linspace(-1.0, 1.0, 4))
    x = np.linspace(-2.0, 2.0, 4)
    np.testing.assert_allclose(t.grad(x), ad.grad(f)(x), rtol=1e-13)
