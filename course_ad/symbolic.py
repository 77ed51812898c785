"""A tiny symbolic differentiator, to see why symbolic derivatives swell.

Expressions are trees of tuples: ``("x",)`` a variable, ``("const", 2.0)``, and
``(op, a, b)`` / ``(op, a)`` for ``add mul sub div pow sin cos exp log``. ``diff`` applies the
calculus rules to a tree and returns a new tree; nothing is shared, so a product of n factors
gives a derivative of n terms of n factors each: the expression swell that AD avoids by
working with numbers at each step instead of formulas.
"""

from __future__ import annotations

import math

__all__ = ["var", "const", "diff", "size", "evaluate", "to_text", "simplify"]

Expr = tuple


def var(name: str = "x") -> Expr:
    return (name,)


def const(value: float) -> Expr:
    return ("const", float(value))


_BINARY = {"add", "sub", "mul", "div", "pow"}
_UNARY = {"sin", "cos", "exp", "log", "neg"}


def diff(e: Expr, wrt: str = "x") -> Expr:
    """d e / d wrt by the rules of calculus (no simplification beyond constants)."""
    op = e[0]
    if op == "const":
        return const(0)
    if len(e) == 1:
        return const(1 if op == wrt else 0)
    if op in ("add", "sub"):
        return (op, diff(e[1], wrt), diff(e[2], wrt))
    if op == "mul":
        a, b = e[1], e[2]
        return ("add", ("mul", diff(a, wrt), b), ("mul", a, diff(b, wrt)))
    if op == "div":
        a, b = e[1], e[2]
        top = ("sub", ("mul", diff(a, wrt), b), ("mul", a, diff(b, wrt)))
        return ("div", top, ("mul", b, b))
    if op == "pow":
        base, exponent = e[1], e[2]
        if exponent[0] != "const":
            raise ValueError("diff: only constant exponents (write exp(y log x) otherwise)")
        lower = ("pow", base, const(exponent[1] - 1))
        return ("mul", ("mul", exponent, lower), diff(base, wrt))
    inner = diff(e[1], wrt)
    outer = {"sin": lambda a: ("cos", a), "cos": lambda a: ("neg", ("sin", a)),
             "exp": lambda a: ("exp", a), "log": lambda a: ("div", const(1), a),
             "neg": lambda a: const(-1)}
    if op not in outer:
        raise ValueError(f"diff: no rule for {op!r}; known: {sorted(_BINARY | _UNARY)}")
    return ("mul", outer[op](e[1]), inner)


def simplify(e: Expr) -> Expr:
    """Fold constants and drop ×1, ×0, +0: what a computer algebra system does first."""
    if len(e) == 1 or e[0] == "const":
        return e
    args = [simplify(a) for a in e[1:]]
    op = e[0]
    if all(a[0] == "const" for a in args):
        return const(evaluate((op, *args), {}))
    if op == "mul":
        a, b = args
        if const(0) in (a, b):
            return const(0)
        if a == const(1):
            return b
        if b == const(1):
            return a
    if op == "add":
        a, b = args
        if a == const(0):
            return b
        if b == const(0):
            return a
    if op == "sub" and args[1] == const(0):
        return args[0]
    return (op, *args)


def size(e: Expr) -> int:
    """Number of nodes in the tree (counting repeated subtrees every time they appear)."""
    total, stack = 0, [e]
    while stack:
        node = stack.pop()
        total += 1
        if len(node) > 1 and node[0] != "const":
            stack.extend(node[1:])
    return total


def evaluate(e: Expr, env: dict[str, float]) -> float:
    op = e[0]
    if op == "const":
        return e[1]
    if len(e) == 1:
        return env[op]
    a = [evaluate(x, env) for x in e[1:]]
    functions = {"add": lambda p, q: p + q, "sub": lambda p, q: p - q,
                 "mul": lambda p, q: p * q, "div": lambda p, q: p / q,
                 "pow": lambda p, q: p**q, "sin": math.sin, "cos": math.cos,
                 "exp": math.exp, "log": math.log, "neg": lambda p: -p}
    return functions[op](*a)


def to_text(e: Expr) -> str:
    op = e[0]
    if op == "const":
        return f"{e[1]:g}"
    if len(e) == 1:
        return op
    if op in _UNARY:
        return f"-({to_text(e[1])})" if op == "neg" else f"{op}({to_text(e[1])})"
    symbol = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "^"}[op]
    return f"({to_text(e[1])} {symbol} {to_text(e[2])})"
