"""Optimizers: read each parameter's ``grad``, update its ``value`` in place.

There is no ``zero_grad``: ``backward()`` sets fresh gradients on every call.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .reverse import ReverseDiff

__all__ = ["Optimizer", "SGD", "Adam"]


class Optimizer:
    """Holds the parameters and one state array per parameter and slot."""

    def __init__(self, params: Iterable[ReverseDiff], lr: float) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got no parameters to optimise")
        for p in self.params:
            if not isinstance(p, ReverseDiff):
                raise TypeError(f"{type(self).__name__}: parameters must be ReverseDiff leaves, "
                                f"got {type(p).__name__}; pass model.parameters()")
            if not isinstance(p.value, np.ndarray):
                p.value = np.asarray(p.value, dtype=float)  # updated in place from now on
        if lr <= 0:
            raise ValueError(f"{type(self).__name__}: the learning rate must be positive, "
                             f"got {lr}")
        self.lr = lr

    def _gradients(self) -> list[np.ndarray]:
        grads = []
        for p in self.params:
            if p.grad is None:
                raise ValueError(f"{type(self).__name__}.step: a parameter has no gradient; "
                                 "call loss.backward() before step()")
            grads.append(p.grad)
        return grads

    def step(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError


class SGD(Optimizer):
    """v ← μ v + (g + λ w);  w ← w − η v.  Momentum μ smooths the steps; λ is weight decay."""

    def __init__(self, params: Iterable[ReverseDiff], lr: float = 0.01, momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        self.momentum, self.weight_decay = momentum, weight_decay
        self.velocity = [np.zeros_like(p.value) for p in self.params]

    def step(self) -> None:
        for p, g, v in zip(self.params, self._gradients(), self.velocity):
            if self.weight_decay:
                g = g + self.weight_decay * p.value
            if self.momentum:
                v *= self.momentum
                v += g
                g = v
            p.value -= self.lr * g


class Adam(Optimizer):
    """m ← β₁m + (1−β₁)g;  s ← β₂s + (1−β₂)g²;  w ← w − η m̂ / (√ŝ + ε).

    m̂ and ŝ undo the bias of starting the averages at zero; each weight gets its own step
    size, so badly scaled gradients still train."""

    def __init__(self, params: Iterable[ReverseDiff], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay
        self.m = [np.zeros_like(p.value) for p in self.params]
        self.s = [np.zeros_like(p.value) for p in self.params]
        self.t = 0

    def step(self) -> None:
        self.t += 1
        beta1, beta2 = self.betas
        step_size = self.lr * np.sqrt(1 - beta2**self.t) / (1 - beta1**self.t)
        eps_hat = self.eps * np.sqrt(1 - beta2**self.t)  # ε on ŝ, moved onto s
        for p, g, m, s in zip(self.params, self._gradients(), self.m, self.s):
            if self.weight_decay:
                g = g + self.weight_decay * p.value
            m *= beta1
            m += (1 - beta1) * g
            s *= beta2
            s += (1 - beta2) * (g * g)
            p.value -= step_size * m / (np.sqrt(s) + eps_hat)
