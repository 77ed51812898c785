"""How a checked value is judged, and how it travels: one comparison for every place.

A test cell's ``check`` compares at once in a student's kernel; in grading, the sandbox only
sends the value out (``encode``) and the trusted judge compares it (``decode``, ``compare``)
with the reference recorded at release. Both sides run this module, so they cannot disagree.
It imports numpy only: it runs inside the grading sandbox too.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

__all__ = ["HOWS", "compare", "encode", "decode", "show"]

HOWS = ("close", "equal", "at_most", "at_least", "order", "true")
MAX_NUMBERS = 1_000_000  # an answer larger than this is not sent out of the sandbox


def compare(how: str, what: str, got: Any, reference: Any, *, rtol: float = 1e-6,
            atol: float = 1e-9, context: Any = None) -> str:
    """'' when ``got`` passes against ``reference``; otherwise a message for the student.

    close: same shape, |got - ref| <= atol + rtol |ref| entry by entry (nan equals nan);
    equal: the same value exactly; at_most / at_least: a number against the bound ``context``;
    order: a list of node names in which every edge of ``context`` (parent, child) runs
    forward, each node once; true: got is True."""
    if isinstance(got, Unsendable):
        return f"{what}: {got.reason}"
    if how == "close":
        return _close(what, got, reference, rtol, atol)
    if how == "equal":
        same = _canonical(got) == _canonical(reference)
        return "" if same else f"{what}: expected {show(reference)}, got {show(got)}"
    if how in ("at_most", "at_least"):
        number = _number(got)
        if number is None:
            return f"{what}: expected a number, got {show(got)}"
        bound = float(context)
        fine = number <= bound if how == "at_most" else number >= bound
        word = "at most" if how == "at_most" else "at least"
        return "" if fine else f"{what}: expected {word} {show(bound)}, got {show(number)}"
    if how == "order":
        return _order(what, got, context)
    if how == "true":
        return "" if got is True else f"{what}: expected True, got {show(got)}"
    raise ValueError(f"check: unknown comparison {how!r}; use one of {', '.join(HOWS)}")


def show_pair(expected: Any, got: Any) -> tuple[str, str]:
    """Both values as a person reads them, with enough digits to tell them apart."""
    short = show(expected), show(got)
    if short[0] != short[1] or not all(isinstance(v, numbers.Real) for v in (expected, got)):
        return short
    for digits in (9, 12, 17):
        long = f"{float(expected):.{digits}g}", f"{float(got):.{digits}g}"
        if long[0] != long[1]:
            return long
    return short


def show(x: Any, limit: int = 6) -> str:
    """A value as a person reads it: 0.14112, array of shape (3,) [1 2 3], 'text'."""
    if isinstance(x, Unsendable):
        return x.reason
    if isinstance(x, bool | np.bool_):
        return str(bool(x))
    if isinstance(x, numbers.Integral):
        return str(int(x))
    if isinstance(x, numbers.Real):
        return f"{float(x):.6g}"
    if isinstance(x, str):
        return repr(x if len(x) <= 40 else x[:37] + "...")
    if isinstance(x, np.ndarray):
        body = np.array2string(x.ravel()[:limit] if x.ndim != 1 else x[:limit], precision=5,
                               separator=", ", suppress_small=False)
        more = ", ..." if x.size > limit else ""
        return f"array of shape {x.shape} {body[:-1] + more + ']'}"
    if isinstance(x, tuple | list):
        inner = ", ".join(show(item, limit) for item in x[:limit])
        more = ", ..." if len(x) > limit else ""
        return f"({inner}{more})" if isinstance(x, tuple) else f"[{inner}{more}]"
    if x is None:
        return "None"
    return f"an object of type {type(x).__name__}"


class Unsendable:
    """A value that could not leave the sandbox (an object, too large): only why travels."""

    def __init__(self, reason: str):
        self.reason = reason

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unsendable) and other.reason == self.reason

    def __repr__(self) -> str:
        return f"Unsendable({self.reason!r})"


def encode(x: Any) -> Any:
    """A JSON-ready copy of a checked value: numbers, strings, arrays, tuples, lists, dicts.

    Runs in the sandbox on the student's values, so it never trusts their types: anything
    else is sent as the name of its type. Iterative, so deep nesting cannot overflow."""
    root: list[Any] = [None]
    stack: list[tuple[Any, list[Any], int, int]] = [(x, root, 0, 0)]
    budget = MAX_NUMBERS
    while stack:
        value, parent, slot, depth = stack.pop()
        if depth > 20:
            parent[slot] = {"unsendable": "nested more than 20 levels deep"}
            continue
        if value is None or isinstance(value, bool | str):
            if isinstance(value, str) and len(value) > 10_000:
                value = value[:10_000]
            parent[slot] = value
        elif type(value) in (int, float) or isinstance(value, np.integer | np.floating
                                                         | np.bool_):
            parent[slot] = _scalar(value)
        elif isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
            if value.size > budget:
                parent[slot] = {"unsendable": f"an array of shape {value.shape}, too large"}
                continue
            budget -= value.size
            data = value.astype({"f": float, "b": bool}.get(value.dtype.kind, int))
            parent[slot] = {"array": [_scalar(v) for v in data.ravel().tolist()],
                            "shape": list(value.shape), "kind": value.dtype.kind}
        elif isinstance(value, tuple | list):
            items: list[Any] = [None] * len(value)
            parent[slot] = {"tuple": items} if isinstance(value, tuple) else {"list": items}
            stack += [(item, items, i, depth + 1) for i, item in enumerate(value[:10_000])]
        elif isinstance(value, dict):
            keys = [k for k in value if isinstance(k, str)][:10_000]
            items = [None] * len(keys)
            parent[slot] = {"dict": keys, "values": items}
            stack += [(value[k], items, i, depth + 1) for i, k in enumerate(keys)]
        else:
            parent[slot] = _as_number(value)
    return root[0]


def decode(x: Any) -> Any:
    """The value ``encode`` sent: arrays back as numpy arrays, tuples as tuples."""
    root: list[Any] = [None]
    stack: list[tuple[Any, list[Any], int]] = [(x, root, 0)]
    while stack:
        value, parent, slot = stack.pop()
        if not isinstance(value, dict):
            parent[slot] = float(value) if isinstance(value, str) and value in (
                "nan", "inf", "-inf") else value
            continue
        if "array" in value:
            kind = {"f": float, "b": bool}.get(value.get("kind"), int)
            numbers_ = [float(v) if isinstance(v, str) else v for v in value["array"]]
            parent[slot] = np.array(numbers_, dtype=kind).reshape(value["shape"])
        elif "tuple" in value or "list" in value:
            items = value.get("tuple", value.get("list"))
            out: list[Any] = [None] * len(items)
            stack += [(item, out, i) for i, item in enumerate(items)]
            parent[slot] = _Later(out, tuple if "tuple" in value else list)
        elif "dict" in value:
            out = [None] * len(value["values"])
            stack += [(item, out, i) for i, item in enumerate(value["values"])]
            parent[slot] = _Later(out, dict, keys=value["dict"])
        elif "unsendable" in value:
            parent[slot] = Unsendable(str(value["unsendable"]))
        else:
            parent[slot] = Unsendable("a value the grader could not read")
    return _finish(root[0])


# --------------------------------------------------------------------------------------


class _Later:
    """A container whose items are still being decoded."""

    def __init__(self, items: list[Any], kind: type, keys: list[str] | None = None):
        self.items, self.kind, self.keys = items, kind, keys


def _finish(x: Any) -> Any:
    """Turn the decoded tree of _Later placeholders into tuples, lists and dicts, bottom up."""
    order, stack = [], [x]
    while stack:
        node = stack.pop()
        if isinstance(node, _Later):
            order.append(node)
            stack += node.items
    built: dict[int, Any] = {}
    for node in reversed(order):
        items = [built.get(id(item), item) for item in node.items]
        if node.kind is dict:
            built[id(node)] = dict(zip(node.keys or [], items))
        else:
            built[id(node)] = node.kind(items)
    return built.get(id(x), x)


def _scalar(v: Any) -> Any:
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, numbers.Integral):
        return int(v)
    v = float(v)
    return v if math.isfinite(v) else str(v)


def _as_number(value: Any) -> Any:
    """A student's object that behaves as a number (has __float__) travels as that number."""
    try:
        array = np.asarray(value, dtype=float)
    except Exception:  # noqa: BLE001 - any failure of student code means: not a number
        return {"unsendable": f"an object of type {type(value).__name__}"}
    if array.size > MAX_NUMBERS:
        return {"unsendable": f"an object of type {type(value).__name__}, too large"}
    if array.ndim == 0:
        return _scalar(array.item())
    return {"array": [_scalar(v) for v in array.ravel().tolist()], "shape": list(array.shape),
            "kind": "f"}


def _number(x: Any) -> float | None:
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return float(x)
    if isinstance(x, np.ndarray) and x.size == 1 and x.dtype.kind in "iuf":
        return float(x.ravel()[0])
    return None


def _as_floats(x: Any) -> np.ndarray | None:
    try:
        return np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        return None


def _close(what: str, got: Any, reference: Any, rtol: float, atol: float) -> str:
    want, have = _as_floats(reference), _as_floats(got)
    if have is None:
        return f"{what}: expected {show(reference)}, got {show(got)}"
    if want is None:  # a reference that is not numeric compares exactly
        return "" if _canonical(got) == _canonical(reference) else (
            f"{what}: expected {show(reference)}, got {show(got)}")
    if have.shape != want.shape:
        return (f"{what}: expected shape {want.shape}, got shape {have.shape} "
                f"({show(got)})")
    if np.allclose(have, want, rtol=rtol, atol=atol, equal_nan=True):
        return ""
    if want.ndim == 0:
        expected, found = show_pair(float(want), float(have))
        return f"{what}: expected {expected}, got {found}"
    wrong = ~np.isclose(have, want, rtol=rtol, atol=atol, equal_nan=True)
    first = tuple(int(i) for i in np.argwhere(wrong)[0])
    expected, found = show_pair(float(want[first]), float(have[first]))
    return (f"{what}: {int(wrong.sum())} of {want.size} entries differ; at index {first} "
            f"expected {expected}, got {found}")


def _canonical(x: Any) -> Any:
    """A comparable form: arrays as nested lists, tuples and lists alike."""
    if isinstance(x, np.ndarray):
        return ("array", x.shape, x.tolist())
    if isinstance(x, tuple | list):
        return ("seq", tuple(_canonical(v) for v in x))  # shallow answers: recursion is fine
    if isinstance(x, dict):
        return ("dict", tuple(sorted((k, _canonical(v)) for k, v in x.items())))
    if isinstance(x, np.generic):
        return x.item()
    return x


def _order(what: str, got: Any, context: Any) -> str:
    nodes, edges = list(context["nodes"]), [tuple(e) for e in context["edges"]]
    if not isinstance(got, list | tuple) or not all(isinstance(n, str) for n in got):
        return f"{what}: expected a list of nodes, got {show(got)}"
    position: dict[str, int] = {}
    for i, name in enumerate(got):
        if name in position:
            return f"{what}: node {name} appears twice (positions {position[name]} and {i})"
        position[name] = i
    missing = [n for n in nodes if n not in position]
    extra = [n for n in got if n not in set(nodes)]
    if missing or extra:
        return (f"{what}: the order must list every node the output depends on once; "
                f"missing {missing[:5]}, not in the graph {extra[:5]}")
    for parent, child in edges:
        if position[parent] > position[child]:
            return (f"{what}: {parent} is a parent of {child} but comes after it "
                    f"(positions {position[parent]} and {position[child]})")
    return ""
