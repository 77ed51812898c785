"""Cheats that only make sense for one assignment: derivatives by differences, not by AD.

Each replaces one task's answer with a finite-difference or complex-step version that is
right to 1e-6 or better; the task asks for AD, so it must earn nothing for that task. The
tasks chosen have no later task that depends on them, so the fair score is exact.
"""

from __future__ import annotations

from adversarial import Case, with_code, without

CHAIN_BY_DIFFERENCES = '''\
def sigmoid(t):
    return 1.0 / (1.0 + (-t).exp())


def chain_gradient(w, x, activation=sigmoid):
    def y_of(ws):
        y = float(x)
        for weight in ws:
            y = 1.0 / (1.0 + np.exp(-(weight * y)))
        return y

    w = np.asarray(w, dtype=float)
    h = 1e-6
    steps = np.eye(len(w)) * h
    return y_of(w), np.array([(y_of(w + s) - y_of(w - s)) / (2 * h) for s in steps])
'''

CHAIN_BY_COMPLEX_STEP = '''\
def sigmoid(t):
    return 1.0 / (1.0 + (-t).exp())


def chain_gradient(w, x, activation=sigmoid):
    def y_of(ws):
        y = complex(x)
        for weight in ws:
            y = 1.0 / (1.0 + np.exp(-(weight * y)))
        return y

    w = np.asarray(w, dtype=float)
    h = 1e-30
    steps = np.eye(len(w)) * 1j * h
    return y_of(w).real, np.array([y_of(w + s).imag / h for s in steps])
'''

TANGENT_BY_DIFFERENCES = '''\
def loss_and_tangent(params, tangents, X, y):
    h = 1e-6
    plus = {k: params[k] + h * tangents[k] for k in params}
    minus = {k: params[k] - h * tangents[k] for k in params}
    return loss_value(params, X, y), (loss_value(plus, X, y) - loss_value(minus, X, y)) / (2 * h)
'''

TANGENT_BY_COMPLEX_STEP = '''\
def loss_and_tangent(params, tangents, X, y):
    h = 1e-30
    p = {k: params[k] + 1j * h * tangents[k] for k in params}
    pre = X @ p["W1"] + p["b1"]
    hidden = np.where(pre.real > 0, pre, 0.0)
    logits = hidden @ p["W2"] + p["b2"]
    shifted = logits - logits.real.max(axis=1, keepdims=True)
    total = np.exp(shifted).sum(axis=1)
    losses = np.log(total) - shifted[np.arange(len(y)), y]
    loss = np.mean(losses)
    return float(loss.real), float(loss.imag / h)
'''

SPECIFIC: dict[str, list[Case]] = {
    "03_reverse_mode": [
        Case("numeric_chain_by_differences", "numeric",
             with_code("solved", -1, CHAIN_BY_DIFFERENCES, "instead"), without(-1)),
        Case("numeric_chain_by_complex_step", "numeric",
             with_code("solved", -1, CHAIN_BY_COMPLEX_STEP, "instead"), without(-1)),
    ],
    "05_mlp": [
        Case("numeric_tangent_by_differences", "numeric",
             with_code("solved", 5, TANGENT_BY_DIFFERENCES, "instead"), without(5)),
        Case("numeric_tangent_by_complex_step", "numeric",
             with_code("solved", 5, TANGENT_BY_COMPLEX_STEP, "instead"), without(5)),
    ],
}
