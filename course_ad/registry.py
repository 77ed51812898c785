"""The rule record and the table that holds the records: the lowest layer of the engine.

``ops`` (the generic operations) looks primitives up here by name when it is called, and
``rules`` (the records themselves, written with ``ops``) fills the table when it is
imported. So the dependencies run one way: ``registry`` ← ``ops`` ← ``rules``; neither
``ops`` nor ``registry`` imports ``rules``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .dispatch import shape_of, zeros

__all__ = ["Rule", "Domain", "RULES", "VJP_RULES", "JVP_RULES", "MissingRuleError", "get_rule",
           "register"]


@dataclass(frozen=True)
class Domain:
    """Where tests may sample an input: ``low <= x <= high`` and ``|x| >= gap``."""

    low: float = -3.0
    high: float = 3.0
    gap: float = 0.0


@dataclass(frozen=True)
class Rule:
    """One primitive: primal, per-input JVP and VJP functions, label, rule card, domain."""

    name: str
    primal: Callable[..., Any]
    jvp: tuple[Callable[..., Any] | None, ...]
    vjp: tuple[Callable[..., Any] | None, ...]
    symbol: str
    formula: str  # LaTeX of the primal, with inputs x, y and output v
    jvp_latex: str  # LaTeX of the tangent rule
    vjp_latex: str  # LaTeX of the adjoint rule
    domain: tuple[Domain, ...] = ()
    elementwise: bool = False
    broadcasts: bool = False  # leading axes broadcast between inputs (elementwise, matmul)
    variadic: bool = False  # stack/concatenate: any number of inputs; rules get argnum
    examples: Callable[[np.random.Generator], list[tuple[tuple, dict]]] | None = field(
        default=None, repr=False
    )

    @property
    def arity(self) -> int:
        return len(self.vjp)

    def __repr__(self) -> str:
        return f"Rule({self.name!r}, symbol={self.symbol!r}, arity={self.arity})"

    def tangent(self, tangents: list, out: Any, args: list | tuple, params: dict,
                batch: tuple[int, ...] = ()) -> Any:
        """v̇ = Σᵢ JVPᵢ(u̇ᵢ): the inputs' tangents (None for a constant) pushed through the
        rule; None when no input carries a tangent. ``batch`` is the shape of the tangents'
        leading batch axes (a variadic rule gets zeros of that shape for its constants)."""
        if self.variadic:
            filled = tuple(zeros(batch + shape_of(a), a) if t is None else t
                           for t, a in zip(tangents, args))
            return self.jvp[0](filled, out, *args, **params)
        total = None
        for jvp, t in zip(self.jvp, tangents):
            if t is not None:
                if jvp is None:
                    argnum = next(i for i, u in enumerate(tangents) if u is t)
                    raise self.not_differentiable(argnum, "JVP")
                contribution = jvp(t, out, *args, **params)
                total = contribution if total is None else total + contribution
        return total

    def cotangent(self, argnum: int, g: Any, out: Any, args: list | tuple, params: dict) -> Any:
        """x̄ of argument ``argnum``: the output's cotangent pulled back by that input's VJP.
        The engine reduces it to the input's shape afterwards. A rule not differentiable in
        that input (VJP None) raises ``MissingRuleError``: never a silent zero."""
        if self.variadic:
            return self.vjp[0](g, out, *args, argnum=argnum, **params)
        vjp = self.vjp[argnum]
        if vjp is None:
            raise self.not_differentiable(argnum, "VJP")
        return vjp(g, out, *args, **params)

    def not_differentiable(self, argnum: int, kind: str) -> MissingRuleError:
        """The error for a traced value in an input this rule cannot differentiate.

        A silent zero would be a wrong derivative; an input whose derivative really is 0
        (a mask, a condition) should get a rule that returns zeros instead of None."""
        return MissingRuleError(
            f"{self.name}: argument {argnum} has no {kind} rule (the rule is not "
            "differentiable in it), but a traced value reached it. Pass a constant there "
            "(a plain number or array, e.g. x.value), or register a rule with a "
            f"{kind} for that argument"
        )


class MissingRuleError(ValueError):
    """Raised for an operation that has no rule; the message lists the known ones."""


RULES: dict[str, Rule] = {}
VJP_RULES: dict[str, tuple[Callable[..., Any] | None, ...]] = {}
JVP_RULES: dict[str, tuple[Callable[..., Any] | None, ...]] = {}


def register(rule: Rule) -> Rule:
    """Add a primitive to the table (and so to both modes, the pictures and the tests)."""
    if rule.name in RULES:
        raise ValueError(f"register: a rule named {rule.name!r} exists already")
    if len(rule.jvp) != len(rule.vjp):
        raise ValueError(
            f"register: rule {rule.name!r} has {len(rule.jvp)} JVP and {len(rule.vjp)} VJP "
            "functions; give one of each per input (None where not differentiable)"
        )
    RULES[rule.name] = rule
    VJP_RULES[rule.name] = rule.vjp
    JVP_RULES[rule.name] = rule.jvp
    return rule


def get_rule(name: str) -> Rule:
    """The record for ``name``; a ``MissingRuleError`` listing the known rules otherwise."""
    try:
        return RULES[name]
    except KeyError:
        raise MissingRuleError(
            f"no rule for {name!r}; known rules: {', '.join(sorted(RULES))}. "
            "Add one with course_ad.rules.register(Rule(...))"
        ) from None


