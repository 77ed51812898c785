"""Data for the lectures: generated (moons, spirals) and scikit-learn's bundled digits.

Everything is seeded and nothing is downloaded: the digits ship inside scikit-learn.
"""

from __future__ import annotations

import numpy as np

__all__ = ["moons", "spirals", "digits"]


def moons(n: int = 200, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles in 2-D, labels 0 and 1: not linearly separable."""
    rng = np.random.default_rng(seed)
    upper = n // 2
    angles = np.concatenate([np.linspace(0, np.pi, upper), np.linspace(0, np.pi, n - upper)])
    X = np.column_stack([np.cos(angles), np.sin(angles)])
    X[upper:] = np.column_stack([1 - np.cos(angles[upper:]), 0.5 - np.sin(angles[upper:])])
    y = np.repeat([0, 1], [upper, n - upper])
    X += noise * rng.standard_normal(X.shape)
    order = rng.permutation(n)
    return X[order], y[order]


def spirals(n: int = 300, classes: int = 3, noise: float = 0.2,
            seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``classes`` arms of a spiral in 2-D: a classic test that a network bends its boundary."""
    rng = np.random.default_rng(seed)
    per = np.full(classes, n // classes)
    per[: n % classes] += 1
    X, y = [], []
    for k, count in enumerate(per):
        radius = np.linspace(0.05, 1.0, count)
        angle = np.linspace(k * 2 * np.pi / classes, k * 2 * np.pi / classes + 4.0, count)
        angle += noise * rng.standard_normal(count)
        X.append(np.column_stack([radius * np.sin(angle), radius * np.cos(angle)]))
        y.append(np.full(count, k))
    X, y = np.concatenate(X), np.concatenate(y)
    order = rng.permutation(n)
    return X[order], y[order]


def digits(test_size: float = 0.25,
           seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 8×8 handwritten digits, pixels scaled to [0, 1], with a seeded
    stratified split: ``X_train, X_test, y_train, y_test`` (the order of train_test_split)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    X = bunch.data / 16.0
    return train_test_split(X, bunch.target, test_size=test_size, random_state=seed,
                            stratify=bunch.target)
