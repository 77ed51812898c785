"""(a) micrograd's demo step: MLP 2-16-16-1 on 100 moons, hinge loss, forward + backward."""

from __future__ import annotations

import random

import numpy as np

import course_ad as ad
from course_ad import ReverseDiff

from .harness import best_times

ALPHA = 1e-4  # micrograd's L2 weight


def _moons(n: int = 100):
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=n, noise=0.1, random_state=1)
    return X, 2.0 * y - 1.0  # labels in {-1, 1}


def course_ad_arrays(X, y, layers):
    """The same network on arrays: one node per layer operation, not per multiply."""
    params = [ReverseDiff(p) for layer in layers for p in layer]
    h = X
    for i in range(0, len(params), 2):
        h = h @ params[i] + params[i + 1]
        if i + 2 < len(params):
            h = ad.relu(h)
    data_loss = ad.mean(ad.relu(1.0 - y * h[:, 0]))
    reg_loss = ALPHA * sum(ad.sum(p * p) for p in params)
    loss = data_loss + reg_loss
    loss.backward()
    return loss.value, [p.grad for p in params]


def course_ad_scalars(X, y, layers):
    """The same network built from Python floats, one node per multiply, like micrograd."""
    params = [[[ReverseDiff(float(w)) for w in row] for row in W.T] + [[ReverseDiff(float(b))
               for b in bias]] for W, bias in layers]
    losses = []
    for xrow, yi in zip(X, y):
        h = [float(v) for v in xrow]
        for li, layer in enumerate(params):
            weights, biases = layer[:-1], layer[-1]
            h = [sum((wi * hi for wi, hi in zip(w, h)), b) for w, b in zip(weights, biases)]
            if li + 1 < len(params):
                h = [v.relu() for v in h]
        losses.append((1 + -yi * h[0]).relu())
    flat = [p for layer in params for row in layer for p in row]
    loss = sum(losses) * (1.0 / len(losses)) + ALPHA * sum(p * p for p in flat)
    loss.backward()
    return loss.value


def run() -> list[dict]:
    try:
        from micrograd.engine import Value
        from micrograd.nn import MLP
    except ImportError:
        print("  micrograd is not installed: skipped (pip install -e '.[bench]')")
        return []
    X, y = _moons()
    random.seed(1337)
    model = MLP(2, [16, 16, 1])
    layers = [(np.array([[n.w[i].data for n in layer.neurons]
                         for i in range(len(layer.neurons[0].w))]),
               np.array([n.b.data for n in layer.neurons])) for layer in model.layers]

    def micrograd_step():
        inputs = [list(map(Value, row)) for row in X]
        scores = list(map(model, inputs))
        losses = [(1 + -yi * si).relu() for yi, si in zip(y, scores)]
        loss = sum(losses) * (1.0 / len(losses)) + ALPHA * sum(p * p for p in model.parameters())
        model.zero_grad()
        loss.backward()
        return loss.data

    reference = micrograd_step()
    ours, _ = course_ad_arrays(X, y, layers)
    scalar = course_ad_scalars(X, y, layers)
    assert np.isclose(ours, reference) and np.isclose(scalar, reference), (ours, scalar, reference)
    times = best_times({
        "micrograd": micrograd_step,
        "course_ad (arrays)": lambda: course_ad_arrays(X, y, layers),
        "course_ad (scalars, micrograd's graph)": lambda: course_ad_scalars(X, y, layers),
    }, seconds=3.0, rounds=7)
    base = times["micrograd"]
    return [
        {"bench": "(a) micrograd demo step", "case": name, "time": t, "ratio": t / base,
         "vs": "micrograd", "target": None if name == "micrograd" else 1 / 3}
        for name, t in times.items()
    ]
