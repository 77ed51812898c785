"""(f) the 784-H-10 MLP step through a tape, the loss written from primitives as a user
would (log-sum-exp by max, exp, sum and log; no fused cross-entropy), against hand-written
numpy; JAX jit and PyTorch eager run the same primitive loss when they are installed."""

from __future__ import annotations

import os

import numpy as np

import course_ad as ad

from .harness import best_times
from .mlp_step import SIZES, make_problem, numpy_step

TARGET = 1.0  # the tape must beat the code a person writes by hand


def loss(W1, b1, W2, b2, X, y):
    """Mean softmax cross-entropy of a ReLU MLP, from primitives."""
    h = ad.relu(X @ W1 + b1)
    logits = h @ W2 + b2
    shifted = logits - ad.max(logits, axis=1, keepdims=True)
    logp = shifted - ad.log(ad.sum(ad.exp(shifted), axis=1, keepdims=True))
    return -ad.mean(logp[np.arange(len(y)), y])


def tape_step(X, y, params):
    """Records once (outside the timing), then one forward and one reverse replay per step."""
    recorded = ad.tape(loss, *params, X, y)

    def step(X, y, params):
        return recorded.value_and_grad(*params, X, y, argnums=(0, 1, 2, 3))

    return step


def eager_step(X, y, params):
    return ad.value_and_grad(loss, argnums=(0, 1, 2, 3))(*params, X, y)


def _jax_step(X, y, params):
    """jax.jit of value_and_grad; arrays moved to JAX once, as a training loop keeps them."""
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                                       "intra_op_parallelism_threads=1")
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)

    def f(W1, b1, W2, b2, X, y):
        logits = jnp.maximum(X @ W1 + b1, 0.0) @ W2 + b2
        shifted = logits - jnp.max(logits, axis=1, keepdims=True)
        logp = shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=1, keepdims=True))
        return -jnp.mean(logp[jnp.arange(y.shape[0]), y])

    both = jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2, 3)))
    moved = [jnp.asarray(a) for a in (*params, X, y)]
    return lambda X, y, params: jax.block_until_ready(both(*moved))


def _torch_step(X, y, params):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)

    def step(X, y, params):
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        W1, b1, W2, b2 = ps = [torch.from_numpy(p).requires_grad_() for p in params]
        logits = torch.relu(Xt @ W1 + b1) @ W2 + b2
        shifted = logits - logits.max(dim=1, keepdim=True).values
        logp = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
        out = -logp[torch.arange(len(yt)), yt].mean()
        out.backward()
        return out.item(), [p.grad for p in ps]

    return step


def run() -> list[dict]:
    results = []
    for batch, hidden in SIZES:
        X, y, params = make_problem(batch, hidden)
        expected, grads = numpy_step(X, y, params)
        peers = {"hand-written numpy": numpy_step, "course_ad tape": tape_step(X, y, params),
                 "course_ad (no tape)": eager_step}
        for name, make in [("JAX jit", _jax_step), ("PyTorch eager", _torch_step)]:
            step = make(X, y, params)
            if step is None:
                print(f"  {name} is not installed: skipped")
            else:
                peers[name] = step
        got, ours = peers["course_ad tape"](X, y, params)
        assert np.isclose(got, expected) and all(np.allclose(a, b) for a, b in zip(ours, grads))
        times = best_times({k: (lambda s=s, X=X, y=y, p=params: s(X, y, p))
                            for k, s in peers.items()}, seconds=2.0, rounds=25)
        base = times["hand-written numpy"]
        for name, t in times.items():
            results.append({"bench": f"(f) tape MLP step B={batch} H={hidden}", "case": name,
                            "time": t, "ratio": t / base, "vs": "numpy",
                            "target": TARGET if name == "course_ad tape" else None})
    return results
