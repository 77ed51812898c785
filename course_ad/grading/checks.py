"""What test cells use: ``check`` a value, count calls, catch errors; readable messages.

``check(what, got, expected)`` is the one way a test states a fact. In a student's kernel it
compares at once and raises ``AssertionError`` with a message for people. While grading, the
sandbox only sends ``got`` out; the trusted judge compares it with the value the reference
solution gave at release, so nothing the student's code does in its own process can pass a
check without computing the right value. ``counted`` counts evaluations of a function (a
finite-difference answer needs n+1 of them, reverse mode one), ``raised`` names the error a
call raises. ``own_work`` is a fast first signal that an answer hands its task to course_ad.
This module imports numpy only: it runs inside the grading sandbox.
"""

from __future__ import annotations

import dis
import types
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .compare import compare, encode, show

__all__ = ["check", "counted", "raised", "order_names", "close", "report", "own_work",
           "is_topological_order"]

_UNSET: Any = object()


def check(what: str, got: Any, expected: Any = _UNSET, *, rtol: float = 1e-6,
          atol: float = 1e-9, how: str = "close", at_most: float | None = None,
          at_least: float | None = None, edges: Any = None) -> None:
    """State one fact of a test: ``got`` (the student's value) must match.

    |got - expected| <= atol + rtol |expected| (how="close"), or exactly (how="equal"),
    got <= at_most, got >= at_least, or a valid order of ``edges`` (how="order").
    Why: the comparison of record is made by the trusted judge against the value the
    reference solution computed at release; ``expected`` only serves the student's kernel."""
    if at_most is not None:
        how, context = "at_most", at_most
    elif at_least is not None:
        how, context = "at_least", at_least
    elif how == "order":
        context = _edges_context(edges)
    else:
        context = None
    _SINK.emit(what, how, got, expected, rtol, atol, context)


def counted(f: Callable[..., Any]) -> Callable[..., Any]:
    """f, counting its calls in ``.calls``: reverse mode needs one, differences n + 1."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        wrapper.calls += 1  # type: ignore[attr-defined]
        return f(*args, **kwargs)

    wrapper.calls = 0  # type: ignore[attr-defined]
    wrapper.__name__ = getattr(f, "__name__", "f")
    return wrapper


def raised(call: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    """The name of the exception ``call(*args)`` raises, or 'no error'."""
    try:
        call(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - naming any error is the point
        return type(error).__name__
    return "no error"


def order_names(order: Any) -> list[str]:
    """The names of the nodes of an order (``node.name``, else ``repr``), for how="order"."""
    return [str(getattr(node, "name", node)) for node in order]


class _Immediate:
    """The student's kernel: compare now, raise on a mismatch, say nothing on success."""

    def emit(self, what: str, how: str, got: Any, expected: Any, rtol: float, atol: float,
             context: Any) -> None:
        if how in ("close", "equal") and expected is _UNSET:
            return  # nothing to compare with outside grading
        problem = compare(how, what, got, expected, rtol=rtol, atol=atol, context=context)
        if problem:
            raise AssertionError(problem)


class Recorder:
    """Grading and release: send every check out; the judge compares (set by the worker)."""

    def __init__(self, send: Callable[[dict[str, Any]], None]):
        self.send, self.cell, self.part, self.seen = send, "", "visible", {}

    def begin(self, cell: str, part: str = "visible") -> None:
        self.cell, self.part = cell, part
        if part == "visible":
            self.seen = {}

    def emit(self, what: str, how: str, got: Any, expected: Any, rtol: float, atol: float,
             context: Any) -> None:
        what = str(what)[:200]
        n = self.seen[what] = self.seen.get(what, 0) + 1
        self.send({"event": "check", "cell": self.cell, "part": self.part, "what": what,
                   "n": n, "how": how,
                   "got": encode(got), "rtol": float(rtol), "atol": float(atol),
                   "context": encode(context),
                   "expected": None if expected is _UNSET else encode(expected),
                   "has_expected": expected is not _UNSET})


_SINK: Any = _Immediate()


def _edges_context(edges: Any) -> dict[str, list[Any]]:
    """Nodes and (parent, child) name pairs of a graph given by its output node or edges."""
    if isinstance(edges, list | tuple):
        pairs = [(str(a), str(b)) for a, b in edges]
        nodes = sorted({n for pair in pairs for n in pair})
        return {"nodes": nodes, "edges": pairs}
    seen, stack, pairs = {id(edges): edges}, [edges], []
    while stack:
        node = stack.pop()
        for parent in getattr(node, "parents", ()):
            pairs.append((order_names([parent])[0], order_names([node])[0]))
            if id(parent) not in seen:
                seen[id(parent)] = parent
                stack.append(parent)
    return {"nodes": sorted(order_names(seen.values())), "edges": pairs}


def close(got: Any, expected: Any, rtol: float = 1e-6, atol: float = 1e-9) -> bool:
    """True when got matches expected in shape and, entry by entry, to the tolerances."""
    try:
        got_array = np.asarray(got, dtype=float)
        expected_array = np.asarray(expected, dtype=float)
    except (TypeError, ValueError):
        return False
    if got_array.shape != expected_array.shape:
        return False
    return bool(np.allclose(got_array, expected_array, rtol=rtol, atol=atol, equal_nan=True))


def report(what: str, got: Any, expected: Any) -> str:
    """The message of a failed check: what was computed, what was expected, what came out."""
    return f"{what}: expected {show(expected)}, got {show(got)}"


def own_work(*answers: Any, allow: Iterable[str] = ()) -> bool:
    """Check that each answer (function or class) is the student's own code.

    Fails when an answer is course_ad's object, subclasses one, or its code (or any helper
    of the notebook it calls) refers to course_ad, except for the names in ``allow``.
    Returns True so a test can read ``assert own_work(f)``."""
    allowed = set(allow)
    for answer in answers:
        found = _borrowed(answer, allowed)
        if found:
            name = getattr(answer, "__qualname__", repr(answer))
            raise AssertionError(
                f"{name} must be your own code, but it uses course_ad's implementation "
                f"({', '.join(sorted(found))}); write it with numpy and Python only")
    return True


def _borrowed(answer: Any, allowed: set[str]) -> set[str]:
    """Names through which ``answer`` reaches course_ad, searched without recursion."""
    found: set[str] = set()
    seen: set[int] = set()
    stack = [answer]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        module = getattr(obj, "__module__", "") or ""
        if module.startswith("course_ad") and getattr(obj, "__name__", "") not in allowed:
            found.add(f"{module}.{getattr(obj, '__qualname__', obj)}")
            continue
        if isinstance(obj, type):
            for base in obj.__mro__[1:]:
                if (base.__module__ or "").startswith("course_ad"):
                    found.add(f"a subclass of {base.__module__}.{base.__qualname__}")
            for member in vars(obj).values():
                if isinstance(member, staticmethod | classmethod):
                    member = member.__func__
                if isinstance(member, property):
                    stack += [f for f in (member.fget, member.fset) if f is not None]
                elif isinstance(member, types.FunctionType):
                    stack.append(member)
        elif isinstance(obj, types.FunctionType):
            globals_ = obj.__globals__
            for name in _code_names(obj.__code__):
                if name.startswith("course_ad") and name.split(".")[-1] not in allowed:
                    found.add(f"import {name}")
                    continue
                value = globals_.get(name)
                if name in allowed or value is None:
                    continue
                if isinstance(value, types.ModuleType):
                    if value.__name__.startswith("course_ad"):
                        found.add(f"{name} (the module {value.__name__})")
                elif isinstance(value, type | types.FunctionType):
                    if (getattr(value, "__module__", "") or "").startswith("course_ad"):
                        found.add(f"{name} from {value.__module__}")
                    elif value.__module__ == obj.__module__:
                        stack.append(value)  # the student's own helper: look inside it too
    return found


_GLOBAL_LOOKUPS = {"LOAD_GLOBAL", "LOAD_NAME", "IMPORT_NAME", "STORE_GLOBAL", "DELETE_GLOBAL"}


def _code_names(code: types.CodeType) -> set[str]:
    """Names a code object (and the functions nested in it) looks up as globals or imports.

    Attribute names are not globals: ``plt.close(fig)`` looks up ``plt`` only."""
    names: set[str] = set()
    stack = [code]
    while stack:
        current = stack.pop()
        for instruction in dis.get_instructions(current):
            if instruction.opname in _GLOBAL_LOOKUPS:
                names.add(str(instruction.argval))
        stack += [c for c in current.co_consts if isinstance(c, types.CodeType)]
    return names


def is_topological_order(order: list[Any], output: Any) -> str:
    """'' when ``order`` lists every node ``output`` depends on exactly once, parents first;
    otherwise what is wrong. Any valid order passes: the test checks the property."""
    reachable, stack = {id(output): output}, [output]
    while stack:
        for parent in getattr(stack.pop(), "parents", ()):
            if id(parent) not in reachable:
                reachable[id(parent)] = parent
                stack.append(parent)
    position = {}
    for i, node in enumerate(order):
        if id(node) in position:
            return f"node {i} appears twice (first at position {position[id(node)]})"
        position[id(node)] = i
    if set(position) != set(reachable):
        return (f"the order has {len(position)} nodes but the graph has {len(reachable)}; "
                "list every node the output depends on, and only those")
    for node in order:
        for parent in getattr(node, "parents", ()):
            if position[id(parent)] > position[id(node)]:
                return (f"a parent (position {position[id(parent)]}) comes after its child "
                        f"(position {position[id(node)]})")
    return ""
