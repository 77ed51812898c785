"""The tape: record the evaluation trace once, replay its forward and reverse sweeps many times.

This is the "taping for adjoint recursion" of the lecture notes. ``tape(f, *example_args)``
runs ``f`` once with the reverse engine and keeps the Wengert list it produced: every
statement vᵢ = φᵢ(vⱼ)ⱼ₍ᵢ₎ with its rule from the rule table. Replaying needs no graph and no
dispatch: the statements run in order on new inputs of the same shapes and dtypes, then
the adjoint statements v̄ⱼ += v̄ᵢ ∂φᵢ/∂vⱼ run backwards.

Because shapes are fixed, memory is planned once (``course_ad.plan``): each stored value
gets a preallocated buffer, numpy writes into it with ``out=``, and buffers are reused as
soon as no later statement, forward or reverse, still reads their value. The planned sweeps
are then written out as one straight-line Python function (``course_ad.replay``;
``Tape.source`` shows it): the adjoint program, as a source-transformation tool writes it.

A trace is one path through ``f``. Every comparison made on a traced value while recording
(``x > 0``, ``if x:``, ``np.sign(x)``, ...) is kept as a *guard*; a replay checks each guard
and raises ``TapeGuardError`` when a branch would go the other way, instead of replaying a
path that no longer is ``f``.

    t = tape(loss, W1, b1, W2, b2, X, y)       # records once
    value = t(W1, b1, W2, b2, X, y)              # forward sweep
    value, grads = t.value_and_grad(W1, b1, W2, b2, X, y, argnums=(0, 1, 2, 3))
"""

from __future__ import annotations

import html
import inspect
import numbers
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .dispatch import Traced, new_level, primal_value
from .graph import INFIX, _short, subscript
from .ops import _INSPECTION, _NOT_DIFFERENTIABLE_UFUNCS
from .plan import MemoryPlan
from .replay import Guard, Program, Statement, TapeError, TapeGuardError, _Ref, _short_param
from .reverse import ReverseDiff

__all__ = ["tape", "Tape", "TapeError", "TapeGuardError"]

Argnums = int | Sequence[int]


def tape(f: Callable[..., Any], *example_args: Any) -> Tape:
    """Record the evaluation trace of ``f`` at ``example_args``; replay it with the result.

    Arguments may be float arrays (differentiable, replayed with new values of the same shape
    and dtype), Python floats, or integer arrays (e.g. class labels), which may only be used
    as indices of traced values (``logp[rows, y]``). ``f`` returns one value."""
    return Tape(f, example_args)


# --------------------------------------------------------------------------------------
# Recording
# --------------------------------------------------------------------------------------


class _Recording:
    def __init__(self) -> None:
        self.nodes: list[ReverseDiff] = []
        self.guards: list[tuple[str, Callable, tuple, dict, Any]] = []


_recordings: list[_Recording] = []


class _TapeNode(ReverseDiff):
    """A reverse-mode node that also writes itself on the tape being recorded, and turns
    every comparison made on it into a guard."""

    __slots__ = ()

    def _apply(self, rule: Any, args: tuple, params: dict) -> ReverseDiff:
        node = ReverseDiff._apply(self, rule, args, params)
        if _recordings:
            _recordings[-1].nodes.append(node)
        return node

    def __lt__(self, other): return _guard("<", operator.lt, self, other)
    def __le__(self, other): return _guard("<=", operator.le, self, other)
    def __gt__(self, other): return _guard(">", operator.gt, self, other)
    def __ge__(self, other): return _guard(">=", operator.ge, self, other)
    def __eq__(self, other): return _guard("==", operator.eq, self, other)
    def __ne__(self, other): return _guard("!=", operator.ne, self, other)
    __hash__ = ReverseDiff.__hash__

    def __bool__(self): return _guard("bool", bool, self)
    def __float__(self): return _escape("float", self)
    def __int__(self): return _escape("int", self)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method == "__call__" and not kwargs and ufunc.__name__ in _NOT_DIFFERENTIABLE_UFUNCS:
            return _guard(f"np.{ufunc.__name__}", ufunc, *inputs)
        return ReverseDiff.__array_ufunc__(self, ufunc, method, *inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        if func.__name__ in _INSPECTION and func.__name__ not in _SHAPE_ONLY:
            return _guard(f"np.{func.__name__}", func, *args, **kwargs)
        return ReverseDiff.__array_function__(self, func, types, args, kwargs)


_SHAPE_ONLY = {"shape", "ndim", "size", "zeros_like", "ones_like", "empty_like",
               "iscomplexobj", "isrealobj", "result_type"}


def _guard(op: str, fn: Callable, *operands: Any, **kwargs: Any) -> Any:
    """Compare primal values as the engine does, and remember the outcome on the tape."""
    for value in list(operands) + list(kwargs.values()):
        if isinstance(value, list | tuple | dict) and _holds_traced(value):
            raise TapeError(f"tape: {op} on a container of traced values cannot be replayed; "
                            "compare the values one by one")
    result = fn(*(primal_value(v) for v in operands), **kwargs)
    if _recordings:
        _recordings[-1].guards.append((op, fn, operands, kwargs, result))
    return result


def _escape(kind: str, node: ReverseDiff) -> Any:
    raise TapeError(
        f"tape: {kind}() of a traced value of shape {np.shape(node.value)} turns it into a "
        "plain number, which a tape cannot replay on new inputs. Keep the computation in "
        "course_ad operations, or call it outside the taped function."
    )


def _holds_traced(value: Any) -> bool:
    items = value.values() if isinstance(value, dict) else value
    return any(isinstance(v, Traced) or (isinstance(v, list | tuple | dict) and _holds_traced(v))
               for v in items)


class _IndexInput(np.ndarray):
    """An integer argument while recording: usable as an index of traced values, nothing else
    (any other use would bake its recorded values into the tape)."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        raise TapeError(_INDEX_ONLY.format(what=f"numpy.{ufunc.__name__}"))

    def __array_function__(self, func, types, args, kwargs):
        if func.__name__ in ("shape", "ndim", "size"):
            return func(*(np.asarray(a) if isinstance(a, _IndexInput) else a for a in args))
        raise TapeError(_INDEX_ONLY.format(what=f"numpy.{func.__name__}"))


_INDEX_ONLY = ("tape: {what} on an integer argument would be baked into the tape with the "
               "recorded values. Integer arguments may only index traced values, as in "
               "logp[np.arange(n), y]; compute anything else outside the taped function, or "
               "pass the argument as a float array.")


# --------------------------------------------------------------------------------------
# The tape
# --------------------------------------------------------------------------------------


@dataclass
class _InputSpec:
    kind: str  # "array", "scalar" or "index"
    shape: tuple[int, ...]
    dtype: np.dtype
    name: str


class Tape:
    """A recorded evaluation trace that replays its forward and reverse sweeps.

    ``t(*args)`` gives f's value, ``t.value_and_grad(*args, argnums=0)`` the value and the
    gradient with respect to the arguments in ``argnums`` (an int gives one gradient, a
    tuple a tuple), ``t.grad`` only the gradient. ``t.memory_plan(argnums)`` shows the
    buffers; ``print(t)`` shows the trace. A replay reuses the tape's buffers, so a tape is
    not safe to call from several threads at once; returned arrays are always fresh."""

    def __init__(self, f: Callable[..., Any], example_args: Sequence[Any]) -> None:
        self.function = f
        self.inputs = _input_specs(f, example_args)
        self.statements: list[Statement] = []
        self.guards: list[Guard] = []
        self.output: _Ref | Any = None
        self._programs: dict[tuple[int, ...] | None, Program] = {}
        self._by_argnums: dict[Any, tuple[Callable[..., Any], bool]] = {}  # replay, many
        self._record(example_args)

    # -- recording ------------------------------------------------------------------------

    def _record(self, example_args: Sequence[Any]) -> None:
        level = new_level()
        recording = _Recording()
        leaves: list[Any] = []
        for spec, value in zip(self.inputs, example_args):
            if spec.kind == "index":
                leaves.append(np.asarray(value).view(_IndexInput))
            else:
                leaves.append(_TapeNode(_plain_input(value, spec), name=spec.name, level=level))
        _recordings.append(recording)
        try:
            out = self.function(*leaves)
        finally:
            _recordings.pop()
        self._build(leaves, recording, out, example_args)

    def _build(self, leaves: list, recording: _Recording, out: Any, example_args) -> None:
        slot_of = {id(leaf): i for i, leaf in enumerate(leaves)}
        nodes = recording.nodes
        for node in nodes:
            slot_of[id(node)] = len(slot_of)
        guards = [g for g in recording.guards]
        if isinstance(out, Traced) and id(out) not in slot_of:
            raise TapeError("tape: the function returned a traced value that was not made "
                            "from its arguments (a value from another transformation?)")
        # keep only what the output or a guard needs: dead statements are never replayed
        needed = set()
        stack = [out] if id(out) in slot_of else []
        for _, _, operands, _, _ in guards:
            stack += [v for v in operands if isinstance(v, Traced)]
        while stack:
            node = stack.pop()
            if id(node) not in slot_of:
                raise TapeError("tape: a guard or statement reads a traced value that was not "
                                "made from the function's arguments")
            if id(node) in needed:
                continue
            needed.add(id(node))
            stack += list(node.parents)
        kept = list(leaves) + [n for n in nodes if id(n) in needed]
        slot_of = {id(obj): i for i, obj in enumerate(kept)}
        m = len(leaves)
        for i, spec in enumerate(self.inputs):
            self.statements.append(Statement(i, spec.name, None, (), {},
                                             primal_value(leaves[i]) if spec.kind != "index"
                                             else np.asarray(leaves[i])))
        for node in kept[m:]:
            slot = slot_of[id(node)]
            args: list[Any] = list(node._args)
            for parent, position in zip(node.parents, node._argnums):
                args[position] = _Ref(slot_of[id(parent)])
            for value in args:
                if isinstance(value, Traced):
                    raise TapeError(
                        f"tape: {node.op} mixes the tape with another transformation (grad, "
                        "jvp, ... inside the taped function); record the outer function "
                        "without nesting, or do not tape it")
                if not isinstance(value, _Ref):
                    _check_constant(value, node.op, example_args, self.inputs)
            dynamic = _dynamic_params(node, leaves, example_args, self.inputs)
            shapes = tuple(np.shape(self.statements[a.slot].value) if isinstance(a, _Ref)
                           else np.shape(a) for a in args)
            self.statements.append(Statement(slot, subscript(slot - m + 1), node._rule,
                                             tuple(args), dict(node._params), node.value,
                                             dynamic, shapes))
        for op, fn, operands, kwargs, expected in guards:
            refs = tuple(_Ref(slot_of[id(v)]) if isinstance(v, Traced) else v for v in operands)
            guard = Guard(op, fn, refs, kwargs, expected)
            guard.text = self._guard_text(guard)
            self.guards.append(guard)
        self.output = _Ref(slot_of[id(out)]) if isinstance(out, Traced) else out

    # -- replay ---------------------------------------------------------------------------

    def __call__(self, *args: Any) -> Any:
        """f(*args) by the forward sweep of the tape."""
        return self._program(None).run(self._bind(args), gradient=False)[0]

    def value_and_grad(self, *args: Any, argnums: Argnums = 0) -> tuple[Any, Any]:
        """(f(*args), ∇f) by one forward and one reverse sweep; f must return a scalar."""
        key = argnums if type(argnums) is int or type(argnums) is tuple else tuple(argnums)
        found = self._by_argnums.get(key)
        if found is None:  # the first call with these argnums plans its program
            wrt, many = self._argnums(argnums)
            found = self._by_argnums[key] = (self._program(wrt).replay, many)
        replay, many = found
        value, grads = replay(*self._bind(args))
        return value, grads if many else grads[0]

    def grad(self, *args: Any, argnums: Argnums = 0) -> Any:
        """∇f at args (a tuple of gradients when ``argnums`` is a tuple)."""
        return self.value_and_grad(*args, argnums=argnums)[1]

    def source(self, argnums: Argnums | None = None) -> str:
        """The replay as the Python function it is compiled to: the forward statements, then
        (with ``argnums``) the adjoint statements, each commented with its trace line."""
        return self._program(None if argnums is None else self._argnums(argnums)[0]).source

    def memory_plan(self, argnums: Argnums | None = None) -> MemoryPlan:
        """The buffers of a value-only replay (``argnums=None``) or of value_and_grad."""
        return self._program(None if argnums is None else self._argnums(argnums)[0]).plan

    def _program(self, wrt: tuple[int, ...] | None) -> Program:
        program = self._programs.get(wrt)
        if program is None:
            program = self._programs[wrt] = Program(self, wrt)
        return program

    def _argnums(self, argnums: Argnums) -> tuple[tuple[int, ...], bool]:
        many = not isinstance(argnums, numbers.Integral)
        positions = tuple(argnums) if many else (argnums,)
        m = len(self.inputs)
        wrt = []
        for i in positions:
            if not -m <= i < m:
                raise TapeError(f"tape: argnums {i} is out of range for {m} arguments")
            i = int(i) % m
            if self.inputs[i].kind == "index":
                raise TapeError(f"tape: argument {i} ({self.inputs[i].name}) holds integers; "
                                "there is no gradient with respect to it")
            wrt.append(i)
        return tuple(wrt), many

    def _bind(self, args: Sequence[Any]) -> Sequence[Any]:
        if len(args) != len(self.inputs):
            raise TypeError(f"tape: recorded with {len(self.inputs)} arguments, called with "
                            f"{len(args)}")
        for value, spec in zip(args, self.inputs):  # the usual case: the recorded arrays
            if (type(value) is not np.ndarray or value.shape != spec.shape
                    or value.dtype is not spec.dtype or spec.kind == "scalar"):
                break
        else:
            return args
        bound = []
        for i, (value, spec) in enumerate(zip(args, self.inputs)):
            if (type(value) is np.ndarray and value.shape == spec.shape
                    and (value.dtype is spec.dtype or value.dtype == spec.dtype)
                    and spec.kind != "scalar"):
                bound.append(value)
                continue
            if spec.kind == "scalar":
                if not isinstance(value, numbers.Real) or isinstance(value, Traced):
                    raise TapeError(f"tape: argument {i} ({spec.name}) was recorded as a number, "
                                    f"got {type(value).__name__}")
                bound.append(float(value))
                continue
            if (type(value) is not np.ndarray or value.shape != spec.shape
                    or value.dtype != spec.dtype):
                raise TapeError(
                    f"tape: argument {i} ({spec.name}) was recorded as an array of shape "
                    f"{spec.shape} and dtype {spec.dtype}, got {_describe(value)}; a tape "
                    "replays fixed shapes: record a new tape for these inputs")
            bound.append(value)
        return bound

    # -- showing --------------------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        """The evaluation trace, one dict per statement: name, expression, shape, dtype."""
        rows = []
        for s in self.statements:
            rows.append({"name": s.name, "expression": self.expression(s),
                         "shape": s.shape, "dtype": str(s.dtype),
                         "kernel": "" if s.rule is None else self._kind(s)})
        return rows

    def expression(self, s: Statement) -> str:
        """How a statement computes its value: 'v₋₁ @ v₋₅', 'tanh(v₂)', 'input'."""
        if s.rule is None:
            return f"input {self.inputs[s.slot].kind}"
        operands = [self.statements[a.slot].name if isinstance(a, _Ref) else _short(a)
                    for a in s.args]
        if s.rule.name in INFIX and len(operands) == 2:
            return f"{operands[0]} {INFIX[s.rule.name]} {operands[1]}"
        if s.rule.name == "neg":
            return f"−{operands[0]}"
        if s.rule.name == "getitem":
            index = s.params["index"]
            items = [_short_param(i) for i in (index if isinstance(index, tuple) else (index,))]
            for key, position, slot in s.dynamic:  # an integer argument, replayed anew
                if key == "index":
                    items[position or 0] = self.statements[slot].name
            return f"{operands[0]}[{', '.join(items)}]"
        named = {key: self.statements[slot].name for key, position, slot in s.dynamic
                 if position is None}
        extra = [f"{k}={named.get(k) or _short_param(v)}" for k, v in s.params.items()]
        return f"{s.rule.name}({', '.join(operands + extra)})"

    def _kind(self, s: Statement) -> str:
        program = self._programs.get(None) or self._program(None)
        return program.kinds[s.slot]

    def _guard_text(self, guard: Guard) -> str:
        names = [self.statements[a.slot].name if isinstance(a, _Ref) else _short(a)
                 for a in guard.operands]
        if guard.op in ("<", "<=", ">", ">=", "==", "!=") and len(names) == 2:
            return f"{names[0]} {guard.op} {names[1]}"
        return f"{guard.op}({', '.join(names)})"

    def __repr__(self) -> str:
        name = getattr(self.function, "__name__", "f")
        counts = [(len(self.inputs), "input"),
                  (len(self.statements) - len(self.inputs), "statement"),
                  (len(self.guards), "guard")]
        lines = [f"Tape of {name}: " + ", ".join(f"{n} {word}{'' if n == 1 else 's'}"
                                                 for n, word in counts)]
        rows = self.rows()
        width = max(len(r["name"]) for r in rows)
        expr_width = min(48, max(len(r["expression"]) for r in rows))
        for r in rows:
            lines.append(f"  {r['name']:<{width}} = {r['expression']:<{expr_width}}  "
                         f"{str(r['shape']):<12} {r['dtype']:<8} {r['kernel']}".rstrip())
        for guard in self.guards:
            lines.append(f"  guard: {guard.text} was {_short_param(guard.expected)}")
        out = self.output
        shown = self.statements[out.slot].name if isinstance(out, _Ref) else _short(out)
        lines.append(f"  output: {shown}")
        lines.append(self._program(None).plan.summary() + " (value only)")
        grad_plan = self._default_grad_plan()
        if grad_plan is not None:
            lines.append(grad_plan.summary() + " (value and gradient)")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in ("v", "statement", "shape", "dtype", "replay"))
        body = "".join(
            f"<tr><td>{html.escape(r['name'])}</td><td>{html.escape(r['expression'])}</td>"
            f"<td>{r['shape']}</td><td>{r['dtype']}</td><td>{html.escape(r['kernel'])}</td></tr>"
            for r in self.rows())
        guards = "".join(f"<li>guard: <code>{html.escape(g.text)}</code> was "
                         f"{html.escape(_short_param(g.expected))}</li>" for g in self.guards)
        plans = [self._program(None).plan.summary() + " (value only)"]
        grad_plan = self._default_grad_plan()
        if grad_plan is not None:
            plans.append(grad_plan.summary() + " (value and gradient)")
        return (f"<table class='cad-trace'><tr>{head}</tr>{body}</table>"
                f"<ul>{guards}{''.join(f'<li>{html.escape(p)}</li>' for p in plans)}</ul>")

    def _default_grad_plan(self) -> MemoryPlan | None:
        arrays = tuple(i for i, s in enumerate(self.inputs) if s.kind != "index")
        if not arrays or not isinstance(self.output, _Ref) or self.statements[
                self.output.slot].shape != ():
            return None
        return self._program(arrays).plan


def _input_names(f: Callable, count: int) -> list[str]:
    """The inputs' names in the trace: the parameters' names, and for ``*args`` its name
    numbered from 0 (``xs0``, ``xs1``); ``x0``, ``x1``, ... where the signature says nothing."""
    try:
        parameters = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    names = []
    for p in parameters:
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            names += [f"{p.name}{k}" for k in range(count - len(names))]
            break
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
    return [names[i] if i < len(names) else f"x{i}" for i in range(count)]


def _input_specs(f: Callable, example_args: Sequence[Any]) -> list[_InputSpec]:
    names = _input_names(f, len(example_args))
    specs = []
    for i, value in enumerate(example_args):
        name = names[i]
        if isinstance(value, Traced):
            raise TapeError(f"tape: argument {i} ({name}) is already traced; record a tape on "
                            "plain values (a tape cannot be nested in grad, jvp, ...)")
        if isinstance(value, np.ndarray) and value.dtype.kind in "iub":
            specs.append(_InputSpec("index", value.shape, value.dtype, name))
        elif isinstance(value, np.ndarray) and value.dtype.kind in "fc":
            specs.append(_InputSpec("array", value.shape, value.dtype, name))
        elif isinstance(value, numbers.Real):
            specs.append(_InputSpec("scalar", (), np.dtype(float), name))
        else:
            raise TapeError(f"tape: argument {i} ({name}) must be a float array, a number or "
                            f"an integer array of labels, got {_describe(value)}")
    return specs


def _plain_input(value: Any, spec: _InputSpec) -> Any:
    return float(value) if spec.kind == "scalar" else value


def _check_constant(value: Any, op: str, example_args, specs) -> None:
    """A constant that shares memory with an argument was read from it (``x.value``,
    ``np.asarray(y)``): the tape would replay it with the recorded numbers."""
    if not isinstance(value, np.ndarray):
        return
    if isinstance(value, _IndexInput):
        raise TapeError(_INDEX_ONLY.format(what=f"{op} with it as an operand"))
    for spec, arg in zip(specs, example_args):
        if isinstance(arg, np.ndarray) and np.shares_memory(value, arg):
            raise TapeError(
                f"tape: {op} reads argument {spec.name} as a plain array (through .value, "
                "np.asarray, ...), so its recorded numbers would be baked into the tape; "
                "use the traced argument itself")


def _dynamic_params(node, leaves: list, example_args, specs) -> tuple:
    """Where a parameter (an index, cross-entropy's labels) is an integer argument: replayed
    with the new one. Returns (key, position in a tuple or None, argument slot) triples."""
    found = []
    for key, value in (node._params or {}).items():
        items = value if isinstance(value, tuple) else (value,)
        for position, item in enumerate(items):
            slot = _integer_argument(item, leaves, specs)
            if slot is not None:
                found.append((key, position if isinstance(value, tuple) else None, slot))
            else:
                _check_constant(item, node.op, example_args, specs)
    return tuple(found)


def _integer_argument(item: Any, leaves: list, specs) -> int | None:
    """The slot of the integer argument ``item`` is (itself, or np.asarray of it), if any."""
    if not isinstance(item, np.ndarray):
        return None
    for slot, (leaf, spec) in enumerate(zip(leaves, specs)):
        if spec.kind != "index":
            continue
        if item is leaf:
            return slot
        if (type(item) is np.ndarray and item.shape == leaf.shape and item.dtype == leaf.dtype
                and item.strides == leaf.strides
                and item.__array_interface__["data"][0] == leaf.__array_interface__["data"][0]):
            return slot  # np.asarray(y): the same memory, seen as a plain array
    if isinstance(item, _IndexInput):
        raise TapeError(_INDEX_ONLY.format(what="an array computed from it"))
    return None


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return type(value).__name__
