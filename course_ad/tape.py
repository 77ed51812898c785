"""The tape: record the evaluation trace once, replay its forward and reverse sweeps many times.

This is the "taping for adjoint recursion" of the lecture notes. ``tape(f, *example_args)``
runs ``f`` once with the reverse engine and keeps the Wengert list it produced: every
statement vᵢ = φᵢ(vⱼ)ⱼ₍ᵢ₎ with its rule from the rule table. Replaying needs no graph and no
dispatch: the statements run in order on new inputs of the same shapes and dtypes, then
the adjoint statements v̄ⱼ += v̄ᵢ ∂φᵢ/∂vⱼ run backwards.

Because shapes are fixed, memory is planned once (``course_ad.plan``): each stored value
gets a preallocated buffer, numpy writes into it with ``out=``, and buffers are reused as
soon as no later statement, forward or reverse, still reads their value. The planned sweeps
are then written out as one straight-line Python function (``Tape.source`` shows it): the
adjoint program, as a source-transformation tool would write it.

A trace is one path through ``f``. Every comparison made on a traced value while recording
(``x > 0``, ``if x:``, ``np.sign(x)``, ...) is kept as a *guard*; a replay checks each guard
and raises ``TapeGuardError`` when a branch would go the other way, instead of replaying a
path that no longer is ``f``.

    t = tape(loss, W1, b1, W2, b2, X, y)       # records once
    value = t(W1, b1, W2, b2, X, y)              # forward sweep
    value, grads = t.value_and_grad(W1, b1, W2, b2, X, y, argnums=(0, 1, 2, 3))
"""

from __future__ import annotations

import functools
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
from .kernels import IDENTITY, NEGATE, Kernel, kernel_for
from .ops import _INSPECTION, _NOT_DIFFERENTIABLE_UFUNCS, unbroadcast
from .plan import Lifetime, MemoryPlan, assign, check
from .reverse import ReverseDiff
from .rules import Rule

__all__ = ["tape", "Tape", "TapeError", "TapeGuardError"]

Argnums = int | Sequence[int]


class TapeError(ValueError):
    """A function or an argument the tape cannot record or replay faithfully."""


class TapeGuardError(TapeError):
    """A replay whose inputs would take another branch than the recorded one."""


def tape(f: Callable[..., Any], *example_args: Any) -> Tape:
    """Record the evaluation trace of ``f`` at ``example_args``; replay it with the result.

    Arguments may be float arrays (differentiable, replayed with new values of the same shape
    and dtype), Python floats, or integer arrays (e.g. class labels), which may only be used
    as indices of traced values (``logp[rows, y]``). ``f`` returns one value."""
    return Tape(f, example_args)


# --------------------------------------------------------------------------------------
# Recording
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ref:
    """An argument that is the value of statement ``slot`` (not a constant)."""

    slot: int


@dataclass
class Statement:
    """vᵢ = φᵢ(args): one line of the Wengert list (inputs have no rule)."""

    slot: int
    name: str
    rule: Rule | None
    args: tuple  # per argument: a _Ref or a constant
    params: dict
    value: Any  # the value recorded (for shapes, dtypes and the table)
    dynamic: tuple = ()  # parameters that are integer arguments: (key, tuple position, slot)
    arg_shapes: tuple = ()

    @property
    def shape(self) -> tuple[int, ...]:
        return np.shape(self.value)

    @property
    def dtype(self) -> np.dtype:
        return np.result_type(self.value)

    @property
    def is_array(self) -> bool:
        return type(self.value) is np.ndarray

    def refs(self) -> list[int]:
        return [a.slot for a in self.args if isinstance(a, _Ref)]


@dataclass
class Guard:
    """A comparison made on traced values while recording, and its recorded outcome."""

    op: str
    fn: Callable[..., Any]
    operands: tuple  # _Ref or constants
    kwargs: dict
    expected: Any
    text: str = ""

    @property
    def after(self) -> int:
        """The statement after which every operand is known: where a replay checks it."""
        return max((a.slot for a in self.operands if isinstance(a, _Ref)), default=-1)


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
        self._programs: dict[tuple[int, ...] | None, _Program] = {}
        self._by_argnums: dict[Any, tuple[_Program, bool]] = {}
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
        key = argnums if isinstance(argnums, int | tuple) else tuple(argnums)
        found = self._by_argnums.get(key)
        if found is None:  # the first call with these argnums plans its program
            wrt, many = self._argnums(argnums)
            found = self._by_argnums[key] = (self._program(wrt), many)
        program, many = found
        value, grads = program.run(self._bind(args), gradient=True)
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

    def _program(self, wrt: tuple[int, ...] | None) -> _Program:
        program = self._programs.get(wrt)
        if program is None:
            program = self._programs[wrt] = _Program(self, wrt)
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

    def _bind(self, args: Sequence[Any]) -> list[Any]:
        if len(args) != len(self.inputs):
            raise TypeError(f"tape: recorded with {len(self.inputs)} arguments, called with "
                            f"{len(args)}")
        bound = []
        for i, (value, spec) in enumerate(zip(args, self.inputs)):
            if (type(value) is np.ndarray and value.shape == spec.shape
                    and value.dtype == spec.dtype and spec.kind != "scalar"):
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
        lines = [f"Tape of {name}: {len(self.inputs)} inputs, "
                 f"{len(self.statements) - len(self.inputs)} statements, "
                 f"{len(self.guards)} guards"]
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


def _input_specs(f: Callable, example_args: Sequence[Any]) -> list[_InputSpec]:
    try:
        names = list(inspect.signature(f).parameters)
    except (TypeError, ValueError):
        names = []
    specs = []
    for i, value in enumerate(example_args):
        name = names[i] if i < len(names) and not names[i].startswith("*") else f"x{i}"
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


def _short_param(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_short_param(v) for v in value) + ")"
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, slice):
        parts = [value.start, value.stop] + ([value.step] if value.step is not None else [])
        return ":".join("" if p is None else str(p) for p in parts)
    return _short(value)


# --------------------------------------------------------------------------------------
# Programs: the sweeps compiled against a memory plan
# --------------------------------------------------------------------------------------


class _Program:
    """The forward sweep (and, for a gradient, the reverse sweep) of a tape, planned against
    buffers and compiled to one Python function. ``wrt`` is None for a value-only replay."""

    def __init__(self, tape: Tape, wrt: tuple[int, ...] | None) -> None:
        self.tape = tape
        self.wrt = wrt
        statements = tape.statements
        n = len(statements)
        self.n = n
        self.m = len(tape.inputs)
        self.vals: list[Any] = [None] * n
        self.adjs: list[Any] = [None] * n
        self.kinds: list[str] = ["input"] * n
        self.kernels: list[Kernel | None] = [None] * n  # for the reverse sweep
        self.forward_kernels: list[Kernel | None] = [None] * n
        for s in statements[self.m:]:
            self.kernels[s.slot] = kernel = _choose_kernel(s, statements)
            if kernel is not None and s.is_array:  # a scalar result is not worth a buffer
                self.forward_kernels[s.slot] = kernel
        out = tape.output
        self.out_slot = out.slot if isinstance(out, _Ref) else None
        if wrt is not None and self.out_slot is not None and statements[self.out_slot].shape:
            raise TapeError(f"tape: value_and_grad needs a scalar output, but the function "
                            f"returns shape {statements[self.out_slot].shape}")
        self._analyse()
        self.plan = self._plan_memory()
        self._compile()

    # which adjoints exist, and what reads what when

    def _analyse(self) -> None:
        statements, n, m = self.tape.statements, self.n, self.m
        self.has_adjoint = [False] * n
        self.contributions: list[list[tuple[int, int, int]]] = [[] for _ in range(n)]
        if self.wrt is None or self.out_slot is None:
            return
        active = [False] * n
        for i in self.wrt:
            active[i] = True
        for s in statements[m:]:
            active[s.slot] = any(active[j] for j in s.refs())
        if not active[self.out_slot]:
            return
        self.has_adjoint[self.out_slot] = True
        for s in reversed(statements[m:]):
            if not self.has_adjoint[s.slot]:
                continue
            for position, a in enumerate(s.args):
                if isinstance(a, _Ref) and active[a.slot] and _differentiable(s, position):
                    self.has_adjoint[a.slot] = True
                    # (child, argument position, parent), in the order the reverse sweep adds
                    self.contributions[a.slot].append((s.slot, position, a.slot))

    # The clock of a replay: statement k runs at 2k, a guard after it at 2k + 1, the seed at
    # 2n, and k's adjoint statement at 2(2n - k). Guards get odd times so that a statement
    # that overwrites a dying argument in place never overwrites what a guard still reads.

    def _reverse_time(self, slot: int) -> int:
        return 2 * (2 * self.n - slot)

    def _plan_memory(self) -> MemoryPlan:
        statements, n, m = self.tape.statements, self.n, self.m
        end_of_time = 4 * n + 4
        roots: list[frozenset] = [frozenset()] * n  # the pooled storages a value may live in
        lifetimes: list[Lifetime] = []
        notes = []
        fallback_ops = set()

        def new_storage(name, shape, dtype, start, in_place=False):
            lifetimes.append(Lifetime(name, tuple(shape), np.dtype(dtype), start, start,
                                      in_place))
            return len(lifetimes) - 1

        def read(slot_roots, time):
            for r in slot_roots:
                lifetimes[r].end = max(lifetimes[r].end, time)

        self.primal_storage: list[int | None] = [None] * n
        for s in statements[m:]:
            kernel = self.forward_kernels[s.slot]
            if kernel is not None and kernel.view:
                base = s.args[0]
                roots[s.slot] = roots[base.slot] if isinstance(base, _Ref) else frozenset()
                self.kinds[s.slot] = "gather" if kernel.copies else "view"
            elif kernel is not None:
                storage = new_storage(s.name, s.shape, s.dtype, 2 * s.slot, kernel.elementwise)
                self.primal_storage[s.slot] = storage
                roots[s.slot] = frozenset({storage})
                self.kinds[s.slot] = "kernel"
            else:  # the rule's primal: a fresh value, perhaps a view of its arguments
                roots[s.slot] = frozenset().union(*(roots[j] for j in s.refs()))
                self.kinds[s.slot] = "rule"
                fallback_ops.add(s.rule.name)
            for j in s.refs():
                read(roots[j], 2 * s.slot)
        for guard in self.tape.guards:
            for a in guard.operands:
                if isinstance(a, _Ref):
                    read(roots[a.slot], 2 * guard.after + 1)
        if self.out_slot is not None:
            read(roots[self.out_slot], end_of_time)
        self.roots = roots
        self.adjoint_storage: list[int | None] = [None] * n
        self.handover: set[tuple[int, int]] = set()
        if self.wrt is not None:
            self._plan_adjoints(new_storage, read)
        plan = assign(lifetimes)
        check(plan)
        self._allocate(plan)
        exported = [self.tape.inputs[i] for i in (self.wrt or ())
                    if self.tape.inputs[i].kind == "array"]
        if exported:
            size = sum(int(np.prod(s.shape)) * s.dtype.itemsize for s in exported)
            notes.append(f"returned gradients: {len(exported)} fresh arrays per call "
                         f"({size / 1024:.1f} KiB), never reused")
        if fallback_ops:
            notes.append("replayed by their rules (numpy allocates their results): "
                         + ", ".join(sorted(fallback_ops)))
        plan.notes = notes
        return plan

    def _plan_adjoints(self, new_storage, read) -> None:
        statements = self.tape.statements
        wrt = set(self.wrt)
        for s in reversed(statements[self.m:]):
            k = s.slot
            if not self.has_adjoint[k]:
                continue
            t = self._reverse_time(k)
            kernel = self.kernels[k]
            # the primal values this reverse statement reads
            for position, a in enumerate(s.args):
                if not (isinstance(a, _Ref) and self.has_adjoint[a.slot]
                        and _differentiable(s, position)):
                    continue
                reads = (kernel.reads[position] if kernel is not None
                         else {"out"} | set(range(len(s.args))))
                for r in reads:
                    if r == "out":
                        read(self.roots[k], t)
                    elif isinstance(s.args[r], _Ref):
                        read(self.roots[s.args[r].slot], t)
            g_storage = self.adjoint_storage[k]
            if g_storage is not None:
                read({g_storage}, t)
            handed = False
            parents = s.refs()
            for position, a in enumerate(s.args):
                if not (isinstance(a, _Ref) and self.has_adjoint[a.slot]
                        and _differentiable(s, position)):
                    continue
                p = a.slot
                target = statements[p]
                first = self.contributions[p][0][:2] == (k, position)
                if p in wrt or not target.is_array:
                    continue  # fresh per call, or a scalar: not pooled
                if not first:
                    read({self.adjoint_storage[p]}, t)
                    continue
                if (not handed and kernel is not None and kernel.vjp[position] is IDENTITY
                        and g_storage is not None and parents.count(p) == 1
                        and _contribution_shape(s, position) == target.shape
                        and target.dtype == statements[k].dtype):
                    self.adjoint_storage[p] = g_storage
                    self.handover.add((k, position))
                    handed = True
                else:
                    self.adjoint_storage[p] = new_storage("v̄" + target.name[1:], target.shape,
                                                          target.dtype, t)
            for p in set(parents):
                if self.has_adjoint[p] and self.adjoint_storage[p] is not None:
                    read({self.adjoint_storage[p]}, self._reverse_time(p))

    def _allocate(self, plan: MemoryPlan) -> None:
        buffers = [np.empty(size, dtype=dtype) for size, dtype in plan.buffers]
        self.buffers = buffers

        def view(storage):
            lt = plan.lifetimes[storage]
            return buffers[plan.buffer_of[storage]].reshape(lt.shape)

        for slot, storage in enumerate(self.primal_storage):
            if storage is not None:
                self.vals[slot] = view(storage)
        for slot, storage in enumerate(self.adjoint_storage):
            if storage is not None:
                self.adjs[slot] = view(storage)

    # the sweeps, written out as one straight-line Python function

    def _compile(self) -> None:
        """Write the replay as Python source, one line per statement, and compile it once.

        This is the tape turned into a program (the lecture's source transformation): a
        replay then runs no interpreter loop of its own, only the statements. ``source``
        keeps the text, which ``Tape.source`` shows."""
        statements = self.tape.statements
        self.names = _Namespace()
        self.primal_names = [self._primal_name(s) for s in statements]
        self.adjoint_names = [self._adjoint_name(s) for s in statements]
        lines = []
        for guard in self.tape.guards:  # guards on the arguments alone come first
            if guard.after < self.m:
                lines.append(self._guard_line(guard))
        for s in statements[self.m:]:
            lines.append(self._forward_line(s))
            lines += [self._guard_line(guard) for guard in self._guards_after(s.slot)]
        lines.append(f"value = {self._value_expression()}")
        if self.wrt is not None:
            lines += self._reverse_lines()
            grads = "".join(f"{self.adjoint_names[i]}, " for i in self.wrt)
            lines.append(f"return value, ({grads})")
        else:
            lines.append("return value")
        arguments = ", ".join(self.primal_names[: self.m])
        name = getattr(self.tape.function, "__name__", "f")
        kind = "value and gradient" if self.wrt is not None else "value"
        self.source = "\n".join([f"def replay({arguments}):",
                                 f'    """{name}: {kind}, replayed from its tape"""']
                                + ["    " + line for line in lines])
        namespace = self.names.values
        exec(compile(self.source, f"<tape of {name}>", "exec"), namespace)  # noqa: S102
        self.replay = namespace["replay"]

    def _guards_after(self, slot: int) -> list[Guard]:
        return [g for g in self.tape.guards if g.after == slot]

    def _primal_name(self, s: Statement) -> str:
        if s.rule is None:
            name = s.name if s.name.isidentifier() and not _reserved(s.name) else f"x{s.slot}"
            return name
        name = "v" + str(s.slot - self.m + 1)
        if self.primal_storage[s.slot] is not None:  # a planned buffer: a global name
            self.names.values[name] = self.vals[s.slot]
        return name

    def _adjoint_name(self, s: Statement) -> str:
        name = self._primal_name_plain(s) + "_bar"
        if self.adjoint_storage[s.slot] is not None:
            self.names.values[name] = self.adjs[s.slot]
        return name

    def _primal_name_plain(self, s: Statement) -> str:
        if s.rule is None:
            return s.name if s.name.isidentifier() and not _reserved(s.name) else f"x{s.slot}"
        return "v" + str(s.slot - self.m + 1)

    def _arguments(self, s: Statement) -> list[str]:
        """Each argument as an expression: a value's name or a constant."""
        return [self.primal_names[a.slot] if isinstance(a, _Ref) else self.names.constant(a)
                for a in s.args]

    def _keywords(self, s: Statement) -> str:
        """The statement's parameters as keyword arguments (integer arguments by name)."""
        parts = []
        for key, value in s.params.items():
            dynamic = [(position, slot) for k, position, slot in s.dynamic if k == key]
            if not dynamic:
                parts.append(f"{key}={self.names.constant(value)}")
                continue
            if not isinstance(value, tuple):
                parts.append(f"{key}={self.primal_names[dynamic[0][1]]}")
                continue
            items = [self.names.constant(item) for item in value]
            for position, slot in dynamic:
                items[position] = self.primal_names[slot]
            parts.append(f"{key}=(" + "".join(f"{item}, " for item in items) + ")")
        return ", ".join(parts)

    def _call(self, function: Callable, s: Statement, *lead: str, extra: str = "",
              name: str = "") -> str:
        parts = list(lead) + self._arguments(s)
        keywords = self._keywords(s)
        parts += [p for p in (keywords, extra) if p]
        return f"{self.names.function(function, name)}({', '.join(parts)})"

    def _forward_line(self, s: Statement) -> str:
        name, kernel = self.primal_names[s.slot], self.forward_kernels[s.slot]
        comment = f"  # {s.name} = {self.tape.expression(s)}"
        scalar_kernel = self.kernels[s.slot]
        if kernel is None and scalar_kernel is not None and not scalar_kernel.view and any(
                isinstance(a, _Ref) and self.tape.statements[a.slot].is_array for a in s.args):
            # a scalar from arrays (a full sum or mean): the kernel, returning a new number
            return f"{name} = {self._call(scalar_kernel.forward, s, 'None')}{comment}"
        if kernel is None:  # the rule's own primal function
            primal_name = f"{s.rule.name}_primal"
            return f"{name} = {self._call(s.rule.primal, s, name=primal_name)}{comment}"
        if kernel.view:
            return f"{name} = {self._call(kernel.forward, s, 'None')}{comment}"
        return f"{self._call(kernel.forward, s, name)}{comment}"

    def _guard_line(self, guard: Guard) -> str:
        check = self.names.bind("_guard", _guard_check(guard))
        operands = [self.primal_names[a.slot] if isinstance(a, _Ref) else self.names.constant(a)
                    for a in guard.operands]
        return f"{check}({', '.join(operands)})  # guard: {guard.text}"

    def _value_expression(self) -> str:
        if self.out_slot is None:
            return self.names.constant(self.tape.output)
        name = self.primal_names[self.out_slot]
        if self.tape.statements[self.out_slot].is_array or self.kinds[self.out_slot] != "rule":
            return f"{self.names.function(_export)}({name})"
        return name

    def _reverse_lines(self) -> list[str]:
        statements = self.tape.statements
        lines = []
        for i in self.wrt:  # the returned gradients: new arrays each call
            spec = self.tape.inputs[i]
            if not self.has_adjoint[i]:
                make = (functools.partial(np.zeros, spec.shape, spec.dtype)
                        if spec.kind == "array" else float)
            elif spec.kind == "array" and i != self.out_slot:
                make = functools.partial(np.empty, spec.shape, spec.dtype)
            else:
                continue
            lines.append(f"{self.adjoint_names[i]} = {self.names.bind('_fresh', make)}()")
        if self.out_slot is None or not self.has_adjoint[self.out_slot]:
            return lines
        out = statements[self.out_slot]
        one = np.ones((), out.dtype)[()]
        seed = (functools.partial(np.full, out.shape, one)
                if self.out_slot < self.m and out.shape else one)
        seed_name = self.names.bind("_seed", seed)
        lines.append(f"{self.adjoint_names[self.out_slot]} = {seed_name}"
                     + ("()" if callable(seed) else "")
                     + f"  # {self.adjoint_names[self.out_slot]} = 1, the seed")
        for s in reversed(statements[self.m:]):
            if not self.has_adjoint[s.slot]:
                continue
            for position, a in enumerate(s.args):
                if (isinstance(a, _Ref) and self.has_adjoint[a.slot]
                        and _differentiable(s, position)):
                    lines += self._adjoint_lines(s, position, a.slot)
        return lines

    def _adjoint_lines(self, s: Statement, position: int, p: int) -> list[str]:
        """v̄ₚ += v̄ₖ ∂vₖ/∂vₚ for one argument of statement k, into v̄ₚ's buffer."""
        k = s.slot
        g, out = self.adjoint_names[k], self.primal_names[k]
        target_name = self.adjoint_names[p]
        target = self.tape.statements[p]
        comment = f"  # {target_name} += {g} ∂{out}/∂{self.primal_names[p]}"
        if (k, position) in self.handover:
            return [f"# {target_name} += {g} ∂{out}/∂{self.primal_names[p]}: {target_name} "
                    f"is {g}'s buffer, nothing to add"]
        first = self.contributions[p][0][:2] == (k, position)
        pooled = target.is_array
        kernel = self.kernels[k]
        if kernel is None or not (pooled or s.is_array):  # scalars: the rule's arithmetic
            if s.rule.variadic:
                contribution = self._call(s.rule.vjp[0], s, g, out, extra=f"argnum={position}")
            else:
                contribution = self._call(s.rule.vjp[position], s, g, out)
            shape = None
        else:
            vjp = kernel.vjp[position]
            contribution = self._call(vjp, s, g, out)
            shape = _contribution_shape(s, position)
        if not pooled:
            total = f"{self.names.function(_scalar)}({contribution})"
            return [f"{target_name} = {total}" + ("" if first else f" + {target_name}")
                    + comment]
        pshape = target.shape
        if shape == pshape:
            if first:
                return [self._call(kernel.vjp[position], s, g, out, extra=f"dst={target_name}")
                        + comment]
            add_into = kernel.add_into[position] if kernel.add_into else None
            if add_into is not None:
                return [self._call(add_into, s, g, out, extra=f"target={target_name}")
                        + comment]
            return [f"np.add({target_name}, {contribution}, out={target_name})" + comment]
        if shape is None:
            fix = self.names.function(unbroadcast)
            summed = f"{fix}({contribution}, {pshape!r})"
            if first:
                return [f"np.copyto({target_name}, {summed})" + comment]
            return [f"np.add({target_name}, {summed}, out={target_name})" + comment]
        axes, kept = _reduction(shape, pshape)
        view = target_name if kept == pshape else f"{target_name}.reshape({kept!r})"
        if kernel.vjp[position] in (IDENTITY, NEGATE):  # ±v̄ summed back: sum, then negate
            negate = kernel.vjp[position] is NEGATE
            if first:
                lines = [f"np.add.reduce({g}, axis={axes!r}, out={view})" + comment]
                if negate:
                    lines.append(f"np.negative({target_name}, out={target_name})")
                return lines
            ufunc = "np.subtract" if negate else "np.add"
            return [f"{ufunc}({view}, np.add.reduce({g}, axis={axes!r}), out={view})" + comment]
        if first:
            return [f"np.add.reduce({contribution}, axis={axes!r}, out={view})" + comment]
        return [f"np.add({view}, np.add.reduce({contribution}, axis={axes!r}), out={view})"
                + comment]

    # one replay

    def run(self, inputs: list[Any], gradient: bool) -> tuple[Any, Any]:
        result = self.replay(*inputs)
        return result if gradient else (result, None)


class _Namespace:
    """The global names of a compiled replay: buffers, kernels, rules and constants."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {"np": np}
        self._ids: dict[int, str] = {}

    def bind(self, prefix: str, value: Any) -> str:
        key = id(value)
        if key in self._ids and self.values.get(self._ids[key]) is value:
            return self._ids[key]
        name = prefix if prefix not in self.values else None
        count = 1
        while name is None:
            candidate = f"{prefix}_{count}"
            name = candidate if candidate not in self.values else None
            count += 1
        self.values[name] = value
        self._ids[key] = name
        return name

    def function(self, function: Callable, name: str = "") -> str:
        key = id(function)
        if key not in self._ids:
            name = name or getattr(function, "__name__", "").lstrip("_")
            self._ids[key] = self.bind("_" + (name if name.isidentifier() else "fn"), function)
        return self._ids[key]

    def constant(self, value: Any) -> str:
        """A literal for small numbers and tuples of them; a bound name otherwise."""
        if _literal(value):
            return repr(value)
        return self.bind("_const", value)


def _literal(value: Any) -> bool:
    if value is None or type(value) in (bool, int):
        return True
    if type(value) is float:
        return np.isfinite(value)
    if type(value) is tuple:
        return all(_literal(v) for v in value)
    return False


def _reserved(name: str) -> bool:
    return (name in ("np", "value", "replay") or name.endswith("_bar")
            or name.startswith("_") or (name[:1] == "v" and name[1:].isdigit())
            or (name[:1] == "x" and name[1:].isdigit()))


def _export(value: Any) -> Any:
    """The returned value, never a buffer of the tape (a 0-d array becomes a number)."""
    if isinstance(value, np.ndarray):
        return value[()] if value.ndim == 0 else np.array(value)
    return value


def _scalar(value: Any) -> Any:
    if type(value) is float or isinstance(value, np.generic):
        return value
    if np.shape(value) != ():
        value = np.add.reduce(value, axis=None)
    return value[()] if isinstance(value, np.ndarray) else value


def _guard_check(guard: Guard) -> Callable[..., None]:
    fn, kwargs, expected = guard.fn, guard.kwargs, guard.expected

    def check_guard(*operands):
        result = fn(*operands, **kwargs)
        if not _same(result, expected):
            raise TapeGuardError(
                f"tape: the branch at {guard.text} went the other way on these inputs "
                f"(recorded {_short_param(expected)}, now {_short_param(result)}); the tape "
                "holds one path through the function: record a new tape for these inputs")
    return check_guard


def _choose_kernel(s: Statement, statements: list[Statement]) -> Kernel | None:
    """A kernel when the shapes suit it and its result is an array (else: the rule)."""
    kernel = kernel_for(s.rule.name, list(s.arg_shapes), s.params)
    if kernel is None:
        return None
    if kernel.view and not (isinstance(s.args[0], _Ref) and statements[s.args[0].slot].is_array):
        return None
    return kernel


def _differentiable(s: Statement, position: int) -> bool:
    rule = s.rule
    return rule.variadic or rule.vjp[position] is not None


def _contribution_shape(s: Statement, position: int) -> tuple[int, ...]:
    """The shape of a kernel's cotangent before it is summed back to its input's shape."""
    if s.rule.elementwise or s.rule.name == "broadcast_to":
        return s.shape
    return s.arg_shapes[position]


def _reduction(have: tuple[int, ...], want: tuple[int, ...]) -> tuple[tuple, tuple]:
    """The axes that sum a broadcast cotangent back, and the target's shape over them."""
    lead = len(have) - len(want)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(want)
                                      if n == 1 and have[lead + i] != 1)
    kept = tuple(n for i, n in enumerate(have) if i not in axes)
    return axes, kept


def _same(result: Any, expected: Any) -> bool:
    if isinstance(result, np.ndarray) or isinstance(expected, np.ndarray):
        return (np.shape(result) == np.shape(expected)
                and bool(np.array_equal(result, expected)))
    return bool(result == expected)

