"""Training loops: ``fit`` a model with minibatches, ``evaluate`` it, plot what happened.

Each step is the lecture's recipe: forward pass (the graph is recorded), loss, one reverse
sweep for every parameter's gradient, optimizer step. Inputs are checked before the first
step, so a shape or label mistake is an error that says what to fix, not a crash mid-epoch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .nn import LOSSES, Module
from .optim import Adam, Optimizer

__all__ = ["fit", "evaluate", "History", "plot_decision_boundary"]


@dataclass
class History:
    """Per-epoch loss and accuracy (on the training batches, and on validation data if any)."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def epochs(self) -> int:
        return len(self.loss)

    def __repr__(self) -> str:
        if not self.loss:
            return "History(no epochs)"
        last = f"loss {self.loss[-1]:.4f}, accuracy {self.accuracy[-1]:.3f}"
        if self.val_loss:
            last += f", val_loss {self.val_loss[-1]:.4f}, val_accuracy {self.val_accuracy[-1]:.3f}"
        return f"History({self.epochs} epochs in {self.seconds:.2f} s; last: {last})"

    def plot(self, title: str = "training"):
        """Loss and accuracy curves per epoch; returns the matplotlib figure."""
        import matplotlib.pyplot as plt

        fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
        epochs = np.arange(1, self.epochs + 1)
        left.plot(epochs, self.loss, marker="o", ms=3, label="training")
        right.plot(epochs, self.accuracy, marker="o", ms=3, label="training")
        if self.val_loss:
            left.plot(epochs, self.val_loss, marker="s", ms=3, label="validation")
            right.plot(epochs, self.val_accuracy, marker="s", ms=3, label="validation")
        left.set(xlabel="epoch", ylabel="loss", title=f"{title}: loss")
        right.set(xlabel="epoch", ylabel="accuracy", title=f"{title}: accuracy", ylim=(0, 1.02))
        for ax in (left, right):
            ax.grid(alpha=0.3)
            ax.legend()
        return fig


def fit(model: Module, X: Any, y: Any, *, loss: str = "cross_entropy",
        optimizer: Optimizer | None = None, epochs: int = 10, batch_size: int = 32,
        seed: int = 0, validation: tuple[Any, Any] | None = None,
        progress: bool = True) -> History:
    """Train ``model`` on (X, y) with shuffled minibatches; returns the ``History``.

    ``loss`` is "cross_entropy" (integer labels), "hinge" (two classes) or "mse";
    ``optimizer`` defaults to Adam(lr=1e-3); ``validation=(X_val, y_val)`` is evaluated after
    every epoch. The progress bar is a widget in Jupyter and text in a terminal."""
    loss_fn = _loss(loss)
    X, y = _check_data(model, X, y, loss, "fit")
    if validation is not None:
        validation = _check_data(model, *validation, loss, "fit (validation)")
    if not (isinstance(epochs, int) and epochs > 0 and isinstance(batch_size, int)
            and batch_size > 0):
        raise ValueError(f"fit: epochs and batch_size must be positive integers, got {epochs} "
                         f"and {batch_size}")
    optimizer = optimizer or Adam(model.parameters())
    rng = np.random.default_rng(seed)
    history = History()
    n = len(X)
    bar = _progress(epochs, progress)
    start = time.perf_counter()
    for _ in range(epochs):
        order = rng.permutation(n)
        total_loss = total_correct = 0.0
        for first in range(0, n, batch_size):
            batch = order[first:first + batch_size]
            out = model(X[batch])
            value = loss_fn(out, y[batch])
            value.backward()
            optimizer.step()
            total_loss += value.value * len(batch)
            total_correct += _correct(out.value, y[batch], loss)
        history.loss.append(total_loss / n)
        history.accuracy.append(total_correct / n)
        postfix = {"loss": f"{history.loss[-1]:.4f}", "acc": f"{history.accuracy[-1]:.3f}"}
        if validation is not None:
            scores = evaluate(model, *validation, loss=loss)
            history.val_loss.append(scores["loss"])
            history.val_accuracy.append(scores["accuracy"])
            postfix.update(val_acc=f"{scores['accuracy']:.3f}")
        if bar is not None:
            bar.set_postfix(postfix, refresh=False)
            bar.update()
    history.seconds = time.perf_counter() - start
    if bar is not None:
        bar.close()
    return history


def evaluate(model: Module, X: Any, y: Any, loss: str = "cross_entropy") -> dict[str, float]:
    """Loss and accuracy of ``model`` on (X, y), on plain arrays: no graph is recorded."""
    loss_fn = _loss(loss)
    X, y = _check_data(model, X, y, loss, "evaluate")
    with model.no_graph():
        out = model(X)
        value = float(loss_fn(out, y))
    return {"loss": value, "accuracy": _correct(out, y, loss) / len(X)}


def plot_decision_boundary(model: Module, X: Any, y: Any, ax=None, resolution: int = 200,
                           title: str = "decision boundary"):
    """Colour the plane by the model's predicted class, with the 2-D data on top."""
    import matplotlib.pyplot as plt

    X, y = np.asarray(X, dtype=float), np.asarray(y)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plot_decision_boundary: needs 2-D points, got X of shape {X.shape}")
    pad = 0.3
    xs = np.linspace(X[:, 0].min() - pad, X[:, 0].max() + pad, resolution)
    ys = np.linspace(X[:, 1].min() - pad, X[:, 1].max() + pad, resolution)
    gx, gy = np.meshgrid(xs, ys)
    with model.no_graph():
        scores = np.asarray(model(np.column_stack([gx.ravel(), gy.ravel()])))
    classes = scores.argmax(axis=1) if scores.shape[1] > 1 else (scores[:, 0] > 0).astype(int)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4), constrained_layout=True)
    ax.contourf(gx, gy, classes.reshape(gx.shape), alpha=0.25, cmap="coolwarm",
                levels=np.arange(classes.max() + 2) - 0.5)
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap="coolwarm", s=14, edgecolors="k", linewidths=0.3)
    ax.set(title=title, xlabel="$x_1$", ylabel="$x_2$")
    return ax.figure


def _loss(name: str) -> Callable[[Any, Any], Any]:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}")
    return LOSSES[name]


def _check_data(model: Module, X: Any, y: Any, loss: str, who: str):
    """Shapes, labels and NaNs, checked before any work is done."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"{who}: X must be a 2-D array (samples, features), got shape {X.shape}")
    if len(X) != len(y):
        raise ValueError(f"{who}: X has {len(X)} samples but y has {len(y)} labels; they must "
                         "match one to one")
    if len(X) == 0:
        raise ValueError(f"{who}: there is no data (X has 0 rows)")
    if not np.isfinite(X).all():
        bad = np.argwhere(~np.isfinite(X))[0]
        raise ValueError(f"{who}: X contains NaN or inf (first at row {bad[0]}, column "
                         f"{bad[1]}); clean or impute the data first")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        row = np.argwhere(~np.isfinite(y))[0][0]
        raise ValueError(f"{who}: y contains NaN or inf at row {row}")
    outputs = _outputs(model)
    if loss == "cross_entropy":
        if y.dtype.kind == "f" and np.all(y == np.round(y)):
            y = y.astype(int)
        if y.dtype.kind not in "iu":
            raise ValueError(f"{who}: cross_entropy needs integer class labels, got dtype "
                             f"{y.dtype}")
        if outputs is not None and (y.min() < 0 or y.max() >= outputs):
            raise ValueError(f"{who}: labels must lie in 0..{outputs - 1} for a model with "
                             f"{outputs} outputs, got labels from {y.min()} to {y.max()}")
    elif loss == "hinge" and not set(np.unique(y)) <= {-1, 0, 1}:
        raise ValueError(f"{who}: hinge loss needs two classes labelled 0/1 or -1/+1, got "
                         f"{np.unique(y)[:6]}")
    return X, y


def _outputs(model: Module) -> int | None:
    layers = getattr(model, "layers", None)
    return layers[-1].n_out if layers else getattr(model, "n_out", None)


def _correct(out: Any, y: np.ndarray, loss: str) -> float:
    out = np.asarray(out)
    if loss == "cross_entropy":
        return float(np.count_nonzero(out.argmax(axis=1) == y))
    if loss == "hinge":
        positive = (out[:, 0] if out.ndim == 2 else out) > 0
        return float(np.count_nonzero(positive == (y > 0)))
    return float("nan")


def _progress(epochs: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=epochs, desc="epochs", unit="epoch", leave=True)
