"""(b) one step of a 784-H-10 ReLU MLP with softmax cross-entropy, float64, and
(c) the cheap gradient principle: time of value + gradient over time of value."""

from __future__ import annotations

import numpy as np

import course_ad as ad
from course_ad import ReverseDiff

from .harness import best_times

SIZES = [(32, 64), (256, 256)]
TARGETS = {32: 1.3, 256: 1.15}


def make_problem(batch: int, hidden: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((batch, 784))
    y = rng.integers(0, 10, batch)
    params = [rng.standard_normal((784, hidden)) * 0.05, np.zeros(hidden),
              rng.standard_normal((hidden, 10)) * 0.1, np.zeros(10)]
    return X, y, params


def loss(W1, b1, W2, b2, X, y):
    """Mean softmax cross-entropy of a 2-layer ReLU MLP, written from primitives as a user
    would (no fused loss): log-sum-exp from max, exp, sum and log. Runs on numpy arrays too."""
    logits = ad.relu(X @ W1 + b1) @ W2 + b2
    m = ad.max(logits, axis=1, keepdims=True)
    lse = ad.log(ad.sum(ad.exp(logits - m), axis=1)) + m[:, 0]
    return ad.mean(lse - logits[np.arange(len(y)), y])


def course_ad_step(X, y, params):
    nodes = [ReverseDiff(p) for p in params]
    out = loss(*nodes, X, y)
    out.backward()
    return out.value, [n.grad for n in nodes]


def numpy_step(X, y, params):
    """Backpropagation written by hand: the floor any engine is measured against."""
    W1, b1, W2, b2 = params
    z1 = X @ W1 + b1
    h = np.maximum(z1, 0.0)
    logits = h @ W2 + b2
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    rows = np.arange(len(y))
    value = np.mean(np.log(total[:, 0]) - shifted[rows, y])
    dlogits = exp / total
    dlogits[rows, y] -= 1.0
    dlogits /= len(y)
    dh = dlogits @ W2.T
    dz1 = dh * (z1 > 0)
    return value, [X.T @ dz1, dz1.sum(axis=0), h.T @ dlogits, dlogits.sum(axis=0)]


def _autograd_step():
    try:
        import autograd
        import autograd.numpy as anp
    except ImportError:
        return None

    def f(W1, b1, W2, b2, X, y):
        logits = anp.maximum(anp.dot(X, W1) + b1, 0.0) @ W2 + b2
        m = anp.max(logits, axis=1, keepdims=True)
        lse = anp.log(anp.sum(anp.exp(logits - m), axis=1)) + m[:, 0]
        return anp.mean(lse - logits[np.arange(len(y)), y])

    both = autograd.value_and_grad(f, (0, 1, 2, 3))
    return lambda X, y, params: both(*params, X, y)


def _torch_step():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)

    def step(X, y, params):
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        ps = [torch.from_numpy(p).requires_grad_() for p in params]
        logits = torch.relu(Xt @ ps[0] + ps[1]) @ ps[2] + ps[3]
        out = torch.nn.functional.cross_entropy(logits, yt)
        out.backward()
        return out.item(), [p.grad for p in ps]

    return step


def run() -> list[dict]:
    results = []
    peers = {"hand-written numpy": numpy_step, "course_ad": course_ad_step}
    for name, make in [("HIPS autograd", _autograd_step), ("PyTorch", _torch_step)]:
        step = make()
        if step is None:
            print(f"  {name} is not installed: skipped")
        else:
            peers[name] = step
    for batch, hidden in SIZES:
        X, y, params = make_problem(batch, hidden)
        expected, grads = numpy_step(X, y, params)
        got, ours = course_ad_step(X, y, params)
        assert np.isclose(got, expected) and all(np.allclose(a, b) for a, b in zip(ours, grads))
        times = best_times({k: (lambda s=s, X=X, y=y, p=params: s(X, y, p))
                            for k, s in peers.items()},
                           seconds=1.5)
        base = times["hand-written numpy"]
        for name, t in times.items():
            results.append({"bench": f"(b) MLP step B={batch} H={hidden}", "case": name,
                            "time": t, "ratio": t / base, "vs": "numpy",
                            "target": TARGETS[batch] if name == "course_ad" else None})
    return results


def run_cheap_gradient() -> list[dict]:
    """The same Python function, once on arrays (value) and once traced (value + gradient)."""
    results = []
    for batch, hidden in SIZES:
        X, y, params = make_problem(batch, hidden)
        both = ad.value_and_grad(loss, argnums=(0, 1, 2, 3))
        times = best_times({"value": lambda p=params, X=X, y=y: loss(*p, X, y),
                            "value + gradient": lambda f=both, p=params, X=X, y=y: f(*p, X, y)},
                           seconds=1.5)
        results.append({"bench": f"(c) cheap gradient B={batch} H={hidden}",
                        "case": "value+gradient / value", "time": times["value + gradient"],
                        "ratio": times["value + gradient"] / times["value"], "vs": "value",
                        "target": 3.0})
    return results
