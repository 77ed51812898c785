"""Replaying a tape: the recorded statements planned against buffers and compiled.

A ``Program`` takes the Wengert list of a tape (``course_ad.tape``) and the inputs to
differentiate, and decides three things once: which adjoints the reverse sweep needs (the
values that depend on those inputs and reach the output), which buffer each stored value
lives in (``course_ad.plan``, by liveness over the forward and the reverse sweep), and how
each statement runs (a kernel from ``course_ad.kernels`` writing into its buffer, or the
rule's own functions). It then writes both sweeps out as one straight-line Python function
and compiles it: the adjoint program a source-transformation tool would write.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .fusion import fuse_tape
from .graph import _short
from .kernels import IDENTITY, NEGATE, Kernel, _matmul_b, kernel_for
from .ops import unbroadcast
from .plan import Lifetime, MemoryPlan, assign, check
from .rules import Rule

__all__ = ["Program", "Statement", "Guard", "TapeError", "TapeGuardError"]


class TapeError(ValueError):
    """A function or an argument the tape cannot record or replay faithfully."""


class TapeGuardError(TapeError):
    """A replay whose inputs would take another branch than the recorded one."""


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


class Program:
    """The forward sweep (and, for a gradient, the reverse sweep) of a tape, planned against
    buffers and compiled to one Python function. ``wrt`` is None for a value-only replay."""

    def __init__(self, tape: Any, wrt: tuple[int, ...] | None) -> None:
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
        # The reverse sweep's view of the Wengert list: the same statements, except that a
        # log-softmax or log-sum-exp written from primitives is one statement with one adjoint.
        self.backward_statements = list(statements)
        for fused, kernel in fuse_tape(tape):
            self.backward_statements[fused.slot] = fused
            self.kernels[fused.slot] = kernel
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
        statements, n, m = self.backward_statements, self.n, self.m
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
        statements = self.backward_statements
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
                by_rule = kernel is None or not (statements[a.slot].is_array or s.is_array)
                reads = ({"out"} | set(range(len(s.args))) if by_rule  # as _adjoint_lines does
                         else kernel.reads[position])
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

    def _written(self, template: str, s: Statement, **names: str) -> str:
        """A kernel's numpy call written out from its template, for statement s."""
        params = {key: self.names.constant(value) for key, value in s.params.items()}
        return template.format(*self._arguments(s), **params, **names)

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
        if kernel.code is not None and not s.dynamic:  # the numpy call written out
            return self._written(kernel.code, s, out=name) + comment
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
        statements = self.backward_statements
        lines = []
        for i in self.wrt:  # the returned gradients: new arrays each call
            spec = self.tape.inputs[i]
            if not self.has_adjoint[i]:
                make = (functools.partial(np.zeros, spec.shape, spec.dtype)
                        if spec.kind == "array" else float)
            elif spec.kind == "array" and i != self.out_slot:
                make = functools.partial(np.empty, spec.shape, spec.dtype,
                                         order=self._layout(i))
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

    def _layout(self, slot: int) -> str:
        """"F" for a matrix whose whole adjoint is one matmul's B̄ (a weight gradient): the
        kernel writes that product fastest column-major; "C" for every other buffer."""
        contributions = self.contributions[slot]
        if len(contributions) != 1 or len(self.tape.inputs[slot].shape) != 2:
            return "C"
        k, position, _ = contributions[0]
        kernel = self.kernels[k]
        return "F" if kernel is not None and kernel.vjp[position] is _matmul_b else "C"

    def _adjoint_lines(self, s: Statement, position: int, p: int) -> list[str]:
        """v̄ₚ += v̄ₖ ∂vₖ/∂vₚ for one argument of statement k, into v̄ₚ's buffer."""
        k = s.slot
        g, out = self.adjoint_names[k], self.primal_names[k]
        target_name = self.adjoint_names[p]
        target = self.backward_statements[p]
        comment = f"  # {target_name} += {g} ∂{out}/∂{self.primal_names[p]}"
        if (k, position) in self.handover:
            return [f"# {target_name} += {g} ∂{out}/∂{self.primal_names[p]}: {target_name} "
                    f"is {g}'s buffer, nothing to add"]
        first = self.contributions[p][0][:2] == (k, position)
        pooled = target.is_array
        kernel = self.kernels[k]
        if not pooled and kernel is not None and kernel.vjp[position] in (IDENTITY, NEGATE):
            contribution = g if kernel.vjp[position] is IDENTITY else f"-{g}"  # ±v̄, inline
            shape = None
        elif kernel is None or not (pooled or s.is_array):  # scalars: the rule's arithmetic
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
                code = kernel.vjp_code[position] if kernel.vjp_code else None
                if code is not None and not s.dynamic:
                    return [self._written(code, s, g=g, v=out, dst=target_name) + comment]
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
        if kept == pshape:
            view = target_name
        elif self.adjoint_storage[p] is not None:  # a planned buffer: its view made once
            view = self.names.bind(f"{target_name}_as{len(kept)}d",
                                   self.adjs[p].reshape(kept))
        else:
            view = f"{target_name}.reshape({kept!r})"
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
