"""The judge: verdicts made where student code never ran, against recorded references.

At release, the reference solution runs through the same sandbox and every ``check`` it sends
is stored (``references/<assignment>.json``) with how to compare it and how long each cell
took. At grading, a test cell passes when every recorded check arrived from the student's
run and matches under the recorded comparison, and the cell raised nothing. The tolerance,
the comparison and any context (a graph's edges, a bound) come from the record, never from
the student's process. Why: the student's process can say anything; only values that match
the reference solution's count.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .compare import compare, decode
from .runner import CellRun, GradingCell, PassRun

__all__ = ["Verdict", "References", "judge", "record"]


@dataclass
class Verdict:
    """One test cell's outcome: passed or not, and what the student should read."""

    passed: bool
    messages: list[str] = field(default_factory=list)
    checks: int = 0


@dataclass
class References:
    """What the reference solution's run sent, per test cell, and its time per cell."""

    assignment: str
    checks: dict[str, list[dict[str, Any]]]
    seconds: dict[str, float]

    @classmethod
    def load(cls, path: Path) -> References:
        data = json.loads(Path(path).read_text())
        return cls(data["assignment"], data["checks"], data.get("seconds", {}))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"assignment": self.assignment, "checks": self.checks, "seconds": self.seconds}
        path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def judge(cells: Sequence[GradingCell], verdict_run: PassRun,
          references: References) -> dict[int, Verdict]:
    """Every test cell's verdict, from the verdict pass and the recorded references."""
    verdicts: dict[int, Verdict] = {}
    stopped_before = ""
    for cell in cells:
        run = verdict_run.cells.get(cell.index, CellRun())
        if cell.kind in ("answer", "student", "given") and run.stopped:
            stopped_before = run.stopped
        if cell.kind != "test":
            continue
        verdicts[cell.index] = _judge_test(cell, run, references.checks.get(cell.id),
                                           stopped_before)
        stopped_before = ""
    return verdicts


def _judge_test(cell: GradingCell, run: CellRun, recorded: list[dict[str, Any]] | None,
                stopped_before: str) -> Verdict:
    if recorded is None:
        return Verdict(False, [f"no reference was recorded for {cell.id!r}: the instructor "
                               "must run `make release` before grading"])
    messages: list[str] = []
    if stopped_before:
        messages.append(f"Your code for this task did not finish: {stopped_before}.")
    if run.stopped:
        messages.append(f"{run.stopped}; the hidden tests of this task did not run.")
    elif run.hidden_stopped:
        messages.append(f"{run.hidden_stopped[0].upper()}{run.hidden_stopped[1:]}; the rest "
                        "of the hidden tests did not run.")
    for error in (run.error, run.hidden_error):
        if error:
            messages.append(_error_text(error))
    sent = {(c.get("what"), c.get("n")): c for c in run.checks if isinstance(c, dict)}
    failed = 0
    for reference in recorded:
        key = (reference["what"], reference["n"])
        if key not in sent:
            failed += 1
            if not messages:
                messages.append(f"{reference['what']}: this check was not reached")
            continue
        try:
            got = decode(sent[key].get("got"))
        except (TypeError, ValueError, KeyError, AttributeError):
            got = None
        problem = compare(reference["how"], reference["what"], got, decode(reference["got"]),
                          rtol=reference["rtol"], atol=reference["atol"],
                          context=decode(reference["context"]))
        if problem:
            failed += 1
            messages.append(problem)
    passed = failed == 0 and not (run.error or run.hidden_error or run.stopped
                                  or run.hidden_stopped)
    return Verdict(passed, _unique(messages)[:12], len(recorded))


def record(assignment: str, cells: Sequence[GradingCell], verdict_run: PassRun
           ) -> tuple[References, list[str]]:
    """References from the reference solution's verdict pass, and what is wrong with it."""
    checks: dict[str, list[dict[str, Any]]] = {}
    seconds: dict[str, float] = {}
    problems: list[str] = []
    for cell in cells:
        run = verdict_run.cells.get(cell.index, CellRun())
        if cell.id and cell.kind != "markdown":
            seconds[cell.id] = round(run.seconds, 3)
            if cell.kind == "test":
                seconds[f"{cell.id}:hidden"] = round(run.hidden_seconds, 3)
        if cell.kind != "test":
            if run.error and cell.kind in ("given", "answer"):
                problems.append(f"{cell.id or cell.index}: {_error_text(run.error)}")
            continue
        for error in (run.error, run.hidden_error):
            if error:
                problems.append(f"{cell.id}: {_error_text(error)}")
        if run.stopped or run.hidden_stopped:
            problems.append(f"{cell.id}: {run.stopped or run.hidden_stopped}")
        kept, hidden = [], 0
        for sent in run.checks:
            entry = {k: sent.get(k) for k in ("what", "n", "how", "got", "rtol", "atol",
                                              "context")}
            if sent.get("part") == "hidden":
                hidden += 1
                if sent.get("has_expected") and entry["how"] in ("close", "equal"):
                    problems.append(f"{cell.id}: hidden check {entry['what']!r} passes "
                                    "expected=: leave it out (the judge compares with the "
                                    "reference solution's value; an expected value sent into "
                                    "the sandbox could be copied by a forger)")
            if sent.get("has_expected"):
                problem = compare(entry["how"], entry["what"], decode(entry["got"]),
                                  decode(sent.get("expected")), rtol=entry["rtol"],
                                  atol=entry["atol"], context=decode(entry["context"]))
                if problem:
                    problems.append(f"{cell.id}: the reference solution fails its own "
                                    f"check: {problem}")
            kept.append(entry)
        if not hidden:
            problems.append(f"{cell.id}: a test cell needs at least one hidden check() "
                            "without expected= (visible checks show their answer, and assert "
                            "alone can only fail a student, never pass one)")
        checks[cell.id] = kept
    return References(assignment, checks, seconds), problems


def _error_text(error: dict[str, Any]) -> str:
    name, value = str(error.get("ename", "Error")), str(error.get("evalue", ""))
    if name == "MemoryError":
        return "MemoryError: the code ran into the memory limit"
    return f"{name}: {value}"[:600] if value else name


def _unique(items: list[str]) -> list[str]:
    seen: set[str] = set()
    return [m for m in items if not (m in seen or seen.add(m))]
