"""Neural networks on the reverse engine: modules, layers and losses.

A parameter is a ``ReverseDiff`` leaf that lives as long as its module. ``loss.backward()``
sets every parameter's ``grad`` afresh (the sweep is idempotent), so there is no
``zero_grad``: an optimizer reads ``grad`` and updates ``value``. ``no_graph()`` swaps the
leaves for their plain arrays, so evaluation runs at numpy speed and records nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from . import ops
from .dispatch import primal_value, shape_of
from .reverse import ReverseDiff

__all__ = ["Module", "Linear", "MLP", "ACTIVATIONS", "relu", "tanh", "sigmoid", "mse",
           "cross_entropy", "hinge", "LOSSES"]

relu, tanh, sigmoid = ops.relu, ops.tanh, ops.sigmoid
ACTIVATIONS: dict[str, Callable[[Any], Any]] = {"relu": relu, "tanh": tanh, "sigmoid": sigmoid}


class Module:
    """A function with parameters: subclasses define ``forward``; attributes that are
    ``ReverseDiff`` leaves, modules, or lists of them are found by ``parameters()``."""

    def forward(self, x: Any) -> Any:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __call__(self, x: Any) -> Any:
        return self.forward(x)

    def named_parameters(self, prefix: str = "") -> list[tuple[str, ReverseDiff]]:
        """(dotted name, leaf) pairs in a fixed order, for optimizers and printing."""
        found = []
        for name, value in vars(self).items():
            for key, item in _members(name, value):
                if isinstance(item, ReverseDiff):
                    found.append((prefix + key, item))
                elif isinstance(item, Module):
                    found += item.named_parameters(prefix + key + ".")
        return found

    def parameters(self) -> list[ReverseDiff]:
        return [p for _, p in self.named_parameters()]

    def n_parameters(self) -> int:
        return sum(int(np.size(p.value)) for p in self.parameters())

    @contextmanager
    def no_graph(self) -> Iterator[Module]:
        """Run on plain arrays inside the block: no nodes are recorded, nothing to sweep."""
        swapped = []
        for module in self._modules():
            for name, value in vars(module).items():
                if isinstance(value, ReverseDiff):
                    swapped.append((module, name, value))
                    setattr(module, name, value.value)
        try:
            yield self
        finally:
            for module, name, leaf in swapped:
                setattr(module, name, leaf)

    def _modules(self) -> list[Module]:
        """This module and every module inside it, without recursion."""
        found, stack = [], [self]
        while stack:
            module = stack.pop()
            found.append(module)
            for name, value in vars(module).items():
                stack += [item for _, item in _members(name, value) if isinstance(item, Module)]
        return found


def _members(name: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, list | tuple):
        return [(f"{name}.{i}", item) for i, item in enumerate(value)]
    return [(name, value)]


class Linear(Module):
    """y = x W + b, with W of shape (n_in, n_out), initialised from a seeded generator.

    ``init="he"`` (variance 2/n_in) keeps ReLU activations from shrinking layer by layer;
    ``"glorot"`` (variance 2/(n_in + n_out)) suits tanh and sigmoid."""

    def __init__(self, n_in: int, n_out: int, *, init: str = "he", bias: bool = True,
                 seed: int | np.random.Generator = 0) -> None:
        if init not in ("he", "glorot"):
            raise ValueError(f"Linear: init must be 'he' or 'glorot', got {init!r}")
        rng = np.random.default_rng(seed)
        scale = np.sqrt(2.0 / n_in) if init == "he" else np.sqrt(2.0 / (n_in + n_out))
        self.W = ReverseDiff(rng.standard_normal((n_in, n_out)) * scale, name="W")
        self.b = ReverseDiff(np.zeros(n_out), name="b") if bias else None
        self.n_in, self.n_out = n_in, n_out

    def forward(self, x: Any) -> Any:
        if shape_of(x)[-1:] != (self.n_in,):
            raise ValueError(f"Linear({self.n_in}, {self.n_out}): input of shape {shape_of(x)} "
                             f"has {shape_of(x)[-1:] or 'no'} features, expected {self.n_in}")
        out = x @ self.W
        return out if self.b is None else out + self.b

    def __repr__(self) -> str:
        return f"Linear({self.n_in}, {self.n_out})"


class MLP(Module):
    """A multilayer perceptron: ``MLP([64, 64, 10])`` is Linear(64, 64), ReLU, Linear(64, 10).

    ``sizes`` lists the widths from input to output; the last layer is linear (its outputs
    are logits or scores for the loss)."""

    def __init__(self, sizes: Sequence[int], activation: str = "relu", *, seed: int = 0,
                 init: str | None = None) -> None:
        if len(sizes) < 2:
            raise ValueError(f"MLP: sizes needs an input and an output width, got {sizes}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"MLP: activation must be one of {sorted(ACTIVATIONS)}, "
                             f"got {activation!r}")
        rng = np.random.default_rng(seed)
        init = init or ("he" if activation == "relu" else "glorot")
        self.layers = [Linear(a, b, init=init, seed=rng) for a, b in zip(sizes[:-1], sizes[1:])]
        self.activation = activation
        self.sizes = tuple(sizes)

    def forward(self, x: Any) -> Any:
        act = ACTIVATIONS[self.activation]
        for layer in self.layers[:-1]:
            x = act(layer(x))
        return self.layers[-1](x)

    def __repr__(self) -> str:
        return f"MLP({list(self.sizes)}, activation={self.activation!r})"


# --------------------------------------------------------------------------------------
# Losses: each maps (model output, targets) to a scalar
# --------------------------------------------------------------------------------------


def mse(prediction: Any, target: Any) -> Any:
    """mean (prediction − target)²"""
    target = np.asarray(primal_value(target), dtype=float)
    if shape_of(prediction) != target.shape:
        target = target.reshape(shape_of(prediction))
    return ops.mean((prediction - target) ** 2)


def cross_entropy(logits: Any, labels: Any) -> Any:
    """mean over rows of log Σⱼ e^{zⱼ} − z_y: softmax cross-entropy, never overflowing"""
    return ops.cross_entropy(logits, labels)


def hinge(scores: Any, labels: Any) -> Any:
    """mean max(0, 1 − y·s) for labels y in {−1, +1} (0/1 labels are mapped to −1/+1)"""
    y = np.asarray(primal_value(labels), dtype=float)
    if set(np.unique(y)) <= {0.0, 1.0}:
        y = 2.0 * y - 1.0
    s = scores[:, 0] if len(shape_of(scores)) == 2 else scores
    return ops.mean(ops.relu(1.0 - y * s))


LOSSES: dict[str, Callable[[Any, Any], Any]] = {"mse": mse, "cross_entropy": cross_entropy,
                                                "hinge": hinge}
