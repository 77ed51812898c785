"""What test cells use: readable comparisons, and checks that an answer is the student's own.

``close`` and ``report`` make assertions whose message shows expected against got;
``own_work`` is a fast first signal that an answer hands its task to course_ad (the trusted
grader checks behaviour as well); ``is_topological_order`` accepts any valid order.
This module imports numpy only: it runs inside the grading sandbox.
"""

from __future__ import annotations

import dis
import types
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["close", "report", "own_work", "is_topological_order"]


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
    return f"{what}: expected {_show(expected)}, got {_show(got)}"


def _show(x: Any) -> str:
    if isinstance(x, np.ndarray):
        return f"array of shape {x.shape} " + np.array2string(x, precision=6, threshold=8)
    if isinstance(x, float | np.floating):
        return f"{float(x):.8g}"
    return repr(x)


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


def _code_names(code: types.CodeType) -> set[str]:
    """Global and imported names used by a code object and the functions nested in it."""
    names: set[str] = set()
    stack = [code]
    while stack:
        current = stack.pop()
        names.update(current.co_names)
        for instruction in dis.get_instructions(current):
            if instruction.opname == "IMPORT_NAME":
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
