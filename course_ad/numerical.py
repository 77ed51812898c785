"""Numerical differentiation and the gradient checker.

Difference quotients approximate a derivative from values of f alone: forward and backward
differences have error O(h), central differences O(h²), and all suffer cancellation as h
shrinks: f(x + h) and f(x) agree in their leading digits, so their difference keeps only the
rounding noise. The complex step i·h subtracts nothing, so it has no cancellation (it still
rounds, like any floating-point evaluation, at the level of ε). A gradient in n variables
costs n + 1 evaluations with one-sided differences (f(x) is shared), 2n with central ones,
which is why they check AD rather than replace it. ``gradcheck`` compares AD against central
differences along random directions, and forward against reverse mode, at first and second
order.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import ops
from .dispatch import primal_value, shape_of
from .functional import jvp, vjp

__all__ = [
    "forward_difference", "backward_difference", "central_difference", "complex_step",
    "numerical_gradient", "gradcheck", "check_grads", "GradCheckReport", "Check",
    "error_versus_step", "StepStudy",
]

DIFFERENCES = ("forward", "backward", "central", "complex")


def forward_difference(f: Callable[[Any], Any], x: Any, h: float = 1e-6) -> Any:
    """(f(x + h) - f(x)) / h: one extra evaluation, error O(h)."""
    return (f(x + h) - f(x)) / h


def backward_difference(f: Callable[[Any], Any], x: Any, h: float = 1e-6) -> Any:
    """(f(x) - f(x - h)) / h: error O(h), from the other side."""
    return (f(x) - f(x - h)) / h


def central_difference(f: Callable[[Any], Any], x: Any, h: float = 1e-6) -> Any:
    """(f(x + h) - f(x - h)) / 2h: the O(h) terms cancel, error O(h²)."""
    return (f(x + h) - f(x - h)) / (2 * h)


def complex_step(f: Callable[[Any], Any], x: Any, h: float = 1e-20) -> Any:
    """Im f(x + ih) / h: no difference of nearby values, so no cancellation.

    Evaluating f in floating point still rounds, so the result carries a relative error of
    order ε, not zero. f must accept complex numbers (numpy's functions and course_ad's
    primitives do) and be analytic there (no abs, no comparisons on the imaginary part)."""
    return np.imag(f(x + 1j * h)) / h


_METHODS = {"forward": forward_difference, "backward": backward_difference,
            "central": central_difference, "complex": complex_step}


def numerical_gradient(f: Callable[[Any], Any], x: Any, h: float | None = None,
                       method: str = "central") -> Any:
    """∂f/∂x by perturbing one coordinate of x at a time.

    Evaluations of f for x with n entries: n + 1 for "forward" and "backward" (f(x) once,
    then one shifted point per coordinate), 2n for "central", n for "complex".
    For a scalar f the result has the shape of x; otherwise ``f(x).shape + x.shape``."""
    if method not in _METHODS:
        raise ValueError(f"numerical_gradient: method must be one of {DIFFERENCES}, "
                         f"got {method!r}")
    h = (1e-20 if method == "complex" else 1e-6) if h is None else h
    x = np.asarray(primal_value(x), dtype=complex if method == "complex" else float)
    if x.shape == ():
        return np.asarray(_METHODS[method](f, x[()], h))
    centre = np.asarray(f(x)) if method in ("forward", "backward") else None
    columns = []
    for i in range(x.size):
        step = np.zeros(x.shape)
        step.flat[i] = h
        if method == "forward":
            column = (np.asarray(f(x + step)) - centre) / h
        elif method == "backward":
            column = (centre - np.asarray(f(x - step))) / h
        elif method == "central":
            column = (np.asarray(f(x + step)) - np.asarray(f(x - step))) / (2 * h)
        else:
            column = np.imag(np.asarray(f(x + 1j * step))) / h
        columns.append(column)
    out_shape = columns[0].shape
    return np.stack(columns, axis=-1).reshape(out_shape + x.shape)


# --------------------------------------------------------------------------------------
# The gradient checker
# --------------------------------------------------------------------------------------


@dataclass
class Check:
    """One comparison of a derivative computed two ways."""

    name: str
    analytic: float
    numeric: float
    abs_error: float
    rel_error: float
    passed: bool
    index: tuple[int, ...] | None = None


@dataclass
class GradCheckReport:
    """The result of ``gradcheck``: truthy when every check passed; a table when shown."""

    checks: list[Check] = field(default_factory=list)
    rtol: float = 1e-5
    atol: float = 1e-6

    def __bool__(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def max_abs_error(self) -> float:
        return max((c.abs_error for c in self.checks), default=0.0)

    @property
    def max_rel_error(self) -> float:
        return max((c.rel_error for c in self.checks), default=0.0)

    @property
    def worst(self) -> Check | None:
        """The check with the largest error relative to its tolerance."""
        return max(self.checks, default=None,
                   key=lambda c: c.abs_error / (self.atol + self.rtol * abs(c.numeric)))

    def assert_ok(self) -> None:
        """Raise an ``AssertionError`` that shows the table if any check failed."""
        if not self:
            raise AssertionError("gradient check failed:\n" + repr(self))

    def __repr__(self) -> str:
        verdict = "passed" if self else "FAILED"
        lines = [f"gradcheck {verdict}: {len(self.checks)} checks, max abs error "
                 f"{self.max_abs_error:.2e}, max rel error {self.max_rel_error:.2e} "
                 f"(rtol {self.rtol:g}, atol {self.atol:g})"]
        lines.append(f"  {'check':<52} {'analytic':>14} {'numeric':>14} {'abs err':>9}  ok")
        for c in self.checks:
            where = "" if c.index is None else f" at {c.index}"
            lines.append(f"  {(c.name + where)[:52]:<52} {c.analytic:>14.7g} {c.numeric:>14.7g} "
                         f"{c.abs_error:>9.1e}  {'✓' if c.passed else '✗'}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        colour = "#1b7f3b" if self else "#b3261e"
        rows = "".join(
            f"<tr style='color:{'inherit' if c.passed else colour}'>"
            f"<td>{html.escape(c.name)}</td><td>{'' if c.index is None else c.index}</td>"
            f"<td>{c.analytic:.7g}</td><td>{c.numeric:.7g}</td><td>{c.abs_error:.1e}</td>"
            f"<td>{c.rel_error:.1e}</td><td>{'✓' if c.passed else '✗'}</td></tr>"
            for c in self.checks
        )
        return (f"<p style='color:{colour}'><b>gradcheck {'passed' if self else 'failed'}</b>: "
                f"max abs error {self.max_abs_error:.2e}, max rel error "
                f"{self.max_rel_error:.2e}</p><table><tr><th>check</th><th>index</th>"
                "<th>analytic</th><th>numeric</th><th>abs error</th><th>rel error</th>"
                f"<th>ok</th></tr>{rows}</table>")


def gradcheck(f: Callable[..., Any], *args: Any, order: int = 2,
              modes: Sequence[str] = ("fwd", "rev"), eps: float = 1e-6, rtol: float = 1e-5,
              atol: float = 1e-6, seed: int = 0, elementwise_limit: int = 64) -> GradCheckReport:
    """Check f's derivatives at ``args``: AD against central differences, fwd against rev.

    Along a random input direction u and output direction v it compares ⟨v, J u⟩ from
    forward mode and ⟨Jᵀv, u⟩ from reverse mode with the central difference of ⟨v, f⟩, and
    the two modes with each other. With ``order=2`` it checks the derivatives of the JVP and
    VJP functions too. For small inputs of a scalar f it also compares every entry of the
    gradient, so the report can name the worst index."""
    rng = np.random.default_rng(seed)
    report = GradCheckReport(rtol=rtol, atol=atol)
    primals = [np.asarray(primal_value(a), dtype=float) if shape_of(a) else float(a)
               for a in args]
    _check_order(f, primals, order, tuple(modes), eps, rng, report, "")
    out = f(*primals)
    total = sum(int(np.size(p)) for p in primals)
    if "rev" in modes and shape_of(out) == () and total <= elementwise_limit:
        _check_entries(f, primals, eps, report)
    return report


check_grads = gradcheck


def _check_order(f, primals, order, modes, eps, rng, report, prefix):
    u = [_random_like(p, rng) for p in primals]
    out = f(*primals)
    v = _random_like(out, rng)

    def along(t: float) -> float:
        moved = [p + t * d for p, d in zip(primals, u)]
        return _inner(v, f(*moved))

    numeric = (along(eps) - along(-eps)) / (2 * eps)
    results = {}
    if "fwd" in modes:
        try:
            _, tangent = jvp(f, primals, u)
            _check_shape(tangent, shape_of(out), "the output tangent")
            results["fwd"] = _inner(v, tangent)
        except Exception as err:  # a broken rule is a failed check, not a crash
            _record_failure(report, f"{prefix}forward mode", err, numeric)
        else:
            _record(report, f"{prefix}forward vs central difference", results["fwd"], numeric)
    if "rev" in modes:
        try:
            _, pullback = vjp(f, *primals)
            cotangents = pullback(v)
            for k, (c, p) in enumerate(zip(cotangents, primals)):
                _check_shape(c, shape_of(p), f"the cotangent of argument {k}")
            results["rev"] = sum(_inner(c, d) for c, d in zip(cotangents, u))
        except Exception as err:
            _record_failure(report, f"{prefix}reverse mode", err, numeric)
        else:
            _record(report, f"{prefix}reverse vs central difference", results["rev"], numeric)
    if len(results) == 2:
        _record(report, f"{prefix}forward vs reverse", results["fwd"], results["rev"])
    if order > 1:
        if "fwd" in results:
            def tangent_of(*xs):
                return jvp(f, xs, u)[1]
            _check_order(tangent_of, primals, order - 1, modes, eps, rng, report,
                         prefix + "order 2, d(J·u): ")
        if "rev" in results:
            def cotangent_of(*xs):
                return _flat_sum(vjp(f, *xs)[1](v), u)
            _check_order(cotangent_of, primals, order - 1, modes, eps, rng, report,
                         prefix + "order 2, d(Jᵀv): ")


def _check_shape(value: Any, want: tuple[int, ...], what: str) -> None:
    if shape_of(value) != want:
        raise ValueError(f"{what} has shape {shape_of(value)}, expected {want}")


def _record_failure(report, name, err, numeric):
    """A derivative that raised (or came out in the wrong shape): a failed row that says why."""
    message = str(err).splitlines()[0] if str(err) else ""
    if len(message) > 100:
        message = message[:97] + "..."
    numeric = float(primal_value(numeric))
    report.checks.append(Check(f"{name} failed: {type(err).__name__}: {message}", math.nan,
                               numeric, math.inf, math.inf, False))


def _check_entries(f, primals, eps, report):
    """Every entry of a small gradient: where a rule is wrong, the index says where."""
    try:
        _, pullback = vjp(f, *primals)
        grads = pullback(1.0)
        for k, (g, p) in enumerate(zip(grads, primals)):
            _check_shape(g, shape_of(p), f"the gradient of argument {k}")
    except Exception as err:
        _record_failure(report, "gradient entry by entry", err, math.nan)
        return
    for k, (p, g) in enumerate(zip(primals, grads)):
        def of_p(x, k=k):
            return f(*primals[:k], x, *primals[k + 1:])

        numeric = numerical_gradient(of_p, p, eps)
        analytic = np.asarray(primal_value(g), dtype=float)
        errors = np.abs(analytic - numeric)
        worst = np.unravel_index(int(np.argmax(errors)), errors.shape) if errors.size else ()
        index = (k,) + tuple(int(i) for i in worst)
        _record(report, f"∂f/∂arg{k} entry by entry (worst)", float(analytic[worst]),
                float(numeric[worst]), index)


def _record(report, name, analytic, numeric, index=None):
    analytic, numeric = float(primal_value(analytic)), float(primal_value(numeric))
    error = abs(analytic - numeric)
    rel = error / max(abs(numeric), 1e-300)
    passed = bool(error <= report.atol + report.rtol * abs(numeric)) and math.isfinite(analytic)
    report.checks.append(Check(name, analytic, numeric, error, rel, passed, index))


def _random_like(x: Any, rng: np.random.Generator) -> Any:
    shape = shape_of(x)
    return rng.standard_normal(shape) if shape else float(rng.standard_normal())


def _inner(a: Any, b: Any) -> Any:
    """⟨a, b⟩ = Σ aᵢ bᵢ, traced when b is."""
    return ops.sum(a * b) if shape_of(a) or shape_of(b) else a * b


def _flat_sum(cotangents, directions):
    total = 0.0
    for c, d in zip(cotangents, directions):
        total = total + _inner(d, c)
    return total


# --------------------------------------------------------------------------------------
# Error against step size: truncation against round-off
# --------------------------------------------------------------------------------------


@dataclass
class StepStudy:
    """Absolute error of each difference quotient at each step size h."""

    h: np.ndarray
    errors: dict[str, np.ndarray]
    exact: float

    def best_step(self, method: str) -> float:
        """The step with the smallest error: where truncation meets round-off."""
        return float(self.h[int(np.nanargmin(self.errors[method]))])

    def __repr__(self) -> str:
        best = ", ".join(f"{m}: h={self.best_step(m):.0e} (error "
                         f"{np.nanmin(self.errors[m]):.1e})" for m in self.errors)
        return f"StepStudy over {len(self.h)} steps from {self.h[0]:.0e} to {self.h[-1]:.0e}; " \
               f"best {best}"


def error_versus_step(f: Callable[[Any], Any], x: float, exact: float,
                      steps: Sequence[float] | None = None,
                      methods: Sequence[str] = ("forward", "central", "complex")) -> StepStudy:
    """The error of each difference quotient of f at x for h from 1 down to 1e-16.

    Shows the lesson in numbers: forward differences are best near h ≈ 1e-8 (√ε), central
    near 1e-5 (∛ε), and the complex step reaches the rounding level ε and stays there down
    to the tiniest h (no cancellation, but still rounding)."""
    h = np.logspace(0, -16, 33) if steps is None else np.asarray(steps, dtype=float)
    errors = {}
    with np.errstate(all="ignore"):
        for method in methods:
            errors[method] = np.array([abs(float(np.real(_METHODS[method](f, x, step))) - exact)
                                       for step in h])
    return StepStudy(h, errors, exact)
