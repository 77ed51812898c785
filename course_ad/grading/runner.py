"""The trusted runner: rebuild a submission from source/, run it sandboxed, keep what it did.

``assemble`` takes given and test cells from the instructor's source notebook and only answer
cells (and code cells the student added) from the submission, so edited tests, tampered
metadata and pasted duplicates change nothing. ``run_notebook`` runs the result twice in the
sandbox: a *display* pass without hidden tests, whose outputs the student may see in
feedback, and a *verdict* pass whose checks go to the judge and whose outputs nobody sees.
A cell that hangs, kills its process or exits is stopped, named, and skipped on a fresh
start, so one bad cell costs its own task, never the notebook.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .hidden import HIDDEN_BEGIN, HIDDEN_END
from .sandbox import SCRATCH, Limits, Sandbox

__all__ = ["GradingCell", "CellRun", "PassRun", "UngradableSubmissionError", "assemble",
           "read_submission", "run_notebook", "run_pass"]

MAX_EVENT_BYTES = 64 * 1024 * 1024  # what one pass may send before it is stopped
GRACE_SECONDS = 10.0  # the runner waits this long past a cell's limit before it kills


class UngradableSubmissionError(Exception):
    """The submission cannot be graded at all (not a notebook, nothing to run)."""


@dataclass
class GradingCell:
    """One cell of the notebook that is graded: where it came from and what it runs."""

    index: int
    kind: str  # "given", "answer", "student", "test", "markdown"
    id: str
    source: str
    hidden: str = ""
    points: float = 0.0


@dataclass
class CellRun:
    """What one cell did in one pass."""

    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    hidden_error: dict[str, Any] | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    hidden_seconds: float = 0.0
    stopped: str = ""  # why the visible part was stopped or skipped
    hidden_stopped: str = ""
    finished: bool = False
    hidden_finished: bool = False


@dataclass
class PassRun:
    """One pass over the notebook: per cell what happened, and the incidents to report."""

    cells: dict[int, CellRun] = field(default_factory=dict)
    incidents: list[str] = field(default_factory=list)
    starts: int = 0
    seconds: float = 0.0


def read_submission(path: Path) -> dict[str, Any]:
    """The submitted notebook as JSON, or UngradableSubmissionError saying what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UngradableSubmissionError(f"cannot read {path.name}: {error}") from error
    try:
        notebook = json.loads(text)
    except json.JSONDecodeError as error:
        raise UngradableSubmissionError(f"{path.name} is not a notebook (invalid JSON: "
                                   f"{error.msg} at line {error.lineno})") from error
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise UngradableSubmissionError(f"{path.name} is not a notebook (no list of cells)")
    return notebook


def assemble(source: dict[str, Any], submission: dict[str, Any]) -> list[GradingCell]:
    """The notebook to grade: the instructor's cells with the student's answers in place.

    Answer cells are matched by nbgrader's grade_id (pasted duplicates run in order); code
    cells the student added stay after the cell they followed; given cells, tests and any
    cell whose metadata claims to be one come from source."""
    answers: dict[str, list[str]] = {}
    added: dict[str, list[str]] = {}
    known = {_grade_id(c): c for c in source["cells"] if _grade_id(c)}
    anchor = ""
    for cell in submission["cells"]:
        if not isinstance(cell, dict):
            continue
        grade_id, text = _grade_id(cell), _text(cell.get("source", ""))
        if grade_id in known:
            anchor = grade_id
            if _meta(known[grade_id]).get("solution"):
                answers.setdefault(grade_id, []).append(text)
        elif cell.get("cell_type") == "code" and text.strip():
            added.setdefault(anchor, []).append(text)
    cells: list[GradingCell] = []

    def add(kind: str, grade_id: str, text: str, hidden: str = "", points: float = 0.0):
        cells.append(GradingCell(len(cells), kind, grade_id, text, hidden, points))

    for text in added.get("", []):
        add("student", "", text)
    for cell in source["cells"]:
        grade_id, meta, text = _grade_id(cell), _meta(cell), _text(cell.get("source", ""))
        if cell.get("cell_type") != "code":
            student = answers.get(grade_id, [text]) if meta.get("solution") else [text]
            add("markdown", grade_id, "\n\n".join(student))
        elif meta.get("solution"):  # pasted copies of an answer cell run as one cell
            add("answer", grade_id, "\n\n".join(answers.get(grade_id, [""])))
        elif meta.get("grade"):
            visible, hidden = split_hidden(text)
            add("test", grade_id, visible, hidden, float(meta.get("points", 0) or 0))
        else:
            add("given", grade_id, text)
        for extra in added.get(grade_id, []):
            add("student", "", extra)
    return cells


def split_hidden(text: str) -> tuple[str, str]:
    """A test's visible lines, and its hidden lines (dedented to the visible indentation)."""
    visible, hidden, inside = [], [], False
    for line in text.splitlines():
        if HIDDEN_BEGIN in line:
            inside = True
        elif HIDDEN_END in line:
            inside = False
        else:
            (hidden if inside else visible).append(line)
    return "\n".join(visible), "\n".join(hidden)


def run_notebook(cells: Sequence[GradingCell], sandbox: Sandbox, *,
                 seconds: dict[str, float] | None = None,
                 passes: Sequence[str] = ("verdict", "display")) -> dict[str, PassRun]:
    """The passes over the assembled cells; ``seconds`` are the reference's, per cell id.

    A cell the verdict pass had to stop is skipped by the display pass with the same reason,
    so a loop costs its time limit once, not twice."""
    runs: dict[str, PassRun] = {}
    for mode in passes:
        known = {i: c.stopped for i, c in runs["verdict"].cells.items() if c.stopped} \
            if "verdict" in runs else {}
        runs[mode] = run_pass(cells, sandbox, mode, seconds or {}, known)
    return runs


def run_pass(cells: Sequence[GradingCell], sandbox: Sandbox, mode: str,
             seconds: dict[str, float], skip: dict[int, str] | None = None) -> PassRun:
    """Run the cells in one sandbox; start afresh past any cell that kills or hangs it."""
    limits = sandbox.limits
    run = PassRun(cells={c.index: CellRun() for c in cells})
    skip = dict(skip or {})
    started = time.monotonic()
    while True:
        run.starts += 1
        budget = limits.submission_seconds - (time.monotonic() - started)
        culprit, reason = _one_start(cells, sandbox, mode, seconds, skip, run, budget)
        if culprit is None:
            break
        if culprit < 0 or culprit in skip or budget <= 0:
            run.incidents.append(reason)
            for cell in cells:
                if not run.cells[cell.index].finished and not run.cells[cell.index].stopped:
                    run.cells[cell.index].stopped = reason
            break
        skip[culprit] = reason
        run.incidents.append(reason)
        run.cells = {c.index: CellRun() for c in cells}  # a fresh start reruns them all
    run.seconds = time.monotonic() - started
    for index, reason in skip.items():
        run.cells[index].stopped = reason
    return run


def limit_for(cell: GradingCell, limits: Limits, seconds: dict[str, float],
              part: str = "visible") -> float:
    """max(the floor, factor x the reference's time for this cell)."""
    reference = seconds.get(cell.id if part == "visible" else f"{cell.id}:hidden", 0.0)
    return max(limits.cell_seconds, limits.factor * reference)


# --------------------------------------------------------------------------------------


def _one_start(cells: Sequence[GradingCell], sandbox: Sandbox, mode: str,
               seconds: dict[str, float], skip: dict[int, str], run: PassRun,
               budget: float) -> tuple[int | None, str]:
    """Run until the worker finishes (None) or a cell stops it (its index and why)."""
    plan = {"mode": mode, "cells": []}
    for cell in cells:
        if cell.kind == "markdown":
            continue
        entry = {"index": cell.index, "id": cell.id, "source": cell.source,
                 "skip": skip.get(cell.index, ""),
                 "limit": limit_for(cell, sandbox.limits, seconds, "hidden")}
        if mode == "verdict" and cell.kind == "test":
            entry["hidden"] = cell.hidden
        plan["cells"].append(entry)
    by_index = {cell.index: cell for cell in cells}
    with tempfile.TemporaryDirectory(prefix="course_ad-grading-") as scratch_name:
        scratch = Path(scratch_name)
        inbox = scratch / "in"
        inbox.mkdir()
        (inbox / "plan.json").write_text(json.dumps(plan))
        for path in (scratch, inbox, inbox / "plan.json"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        read_end, write_end = os.pipe()
        plan_path = f"{SCRATCH}/.grading/plan.json" if sandbox.sandboxed else str(
            inbox / "plan.json")
        command = sandbox.command(scratch, ["-m", "course_ad.grading.worker", str(write_end),
                                            plan_path])
        with open(scratch / "stderr", "wb") as stderr:
            try:
                process = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=stderr, pass_fds=(write_end,), preexec_fn=sandbox.preexec(),
                    cwd=scratch if not sandbox.sandboxed else None)
            finally:
                os.close(write_end)
            try:
                return _follow(process, read_end, by_index, sandbox, seconds, run, budget,
                               scratch / "stderr")
            finally:
                _kill(process)
                os.close(read_end)


def _follow(process: subprocess.Popen, read_end: int, by_index: dict[int, GradingCell],
            sandbox: Sandbox, seconds: dict[str, float], run: PassRun, budget: float,
            stderr_path: Path) -> tuple[int | None, str]:
    """Read the worker's events, enforcing each cell's deadline."""
    selector = selectors.DefaultSelector()
    selector.register(read_end, selectors.EVENT_READ)
    buffer, received = b"", 0
    current: tuple[int, str] | None = None
    deadline = time.monotonic() + budget
    finished = False
    while True:
        timeout = max(0.0, deadline - time.monotonic())
        ready = selector.select(timeout)
        if not ready:
            if current is None:
                return -1, (f"the notebook was stopped: it took more than "
                            f"{sandbox.limits.submission_seconds:g} s in all")
            index, part = current
            cell = by_index[index]
            limit = limit_for(cell, sandbox.limits, seconds, part)
            where = _where(cell)
            return index, f"{where} was stopped after {limit:g} s (the time limit)"
        chunk = os.read(read_end, 1 << 16)
        if not chunk:
            break
        received += len(chunk)
        if received > MAX_EVENT_BYTES:
            index = current[0] if current else -1
            where = _where(by_index[index]) if index >= 0 else "the notebook"
            return index, (f"{where} was stopped: it printed more than "
                           f"{MAX_EVENT_BYTES >> 20} MiB")
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            event = _parse(line)
            if event is None:
                continue
            kind = event.get("event")
            if kind == "finished":
                finished = True
                continue
            index = event.get("index") if kind != "check" else current and current[0]
            if not isinstance(index, int) or index not in run.cells:
                continue
            cell_run, part = run.cells[index], event.get("part", "visible")
            if kind == "start":
                current = (index, part)
                limit = limit_for(by_index[index], sandbox.limits, seconds, part)
                deadline = time.monotonic() + limit + (GRACE_SECONDS if part == "hidden"
                                                       else 0.0)
            elif kind == "done":
                _record_done(cell_run, part, event)
                current = None
                deadline = time.monotonic() + budget
            elif kind == "check":
                cell_run.checks.append(event)
            elif kind == "stopped":
                cell_run.hidden_stopped = _stopped_text(by_index[index], event)
                current = None
            elif kind == "skipped":
                cell_run.stopped = str(event.get("reason", "skipped"))[:300]
    code = process.wait()
    if finished:
        return None, ""
    index = current[0] if current else -1
    where = _where(by_index[index]) if index >= 0 else "the notebook"
    return index, f"{where} ended its own process ({_exit_reason(code, stderr_path)})"


def _record_done(cell_run: CellRun, part: str, event: dict[str, Any]) -> None:
    error = event.get("error") if isinstance(event.get("error"), dict) else None
    seconds = float(event.get("seconds", 0.0) or 0.0)
    if part == "hidden":
        cell_run.hidden_error, cell_run.hidden_seconds = error, seconds
        cell_run.hidden_finished = True
    else:
        outputs = event.get("outputs")
        cell_run.outputs = outputs if isinstance(outputs, list) else []
        cell_run.error, cell_run.seconds, cell_run.finished = error, seconds, True


def _stopped_text(cell: GradingCell, event: dict[str, Any]) -> str:
    reason = str(event.get("reason", "stopped"))[:300]
    return f"the hidden tests of {_where(cell)} {reason}" if reason.startswith("stopped") else (
        f"in the hidden tests of {_where(cell)}, {reason}")


def _where(cell: GradingCell) -> str:
    """A cell as the instructor and the student know it: its task, else its number."""
    if cell.id:
        return f"cell {cell.id!r}"
    return f"cell {cell.index + 1} (a cell you added)"


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    return event if isinstance(event, dict) else None


def _exit_reason(code: int, stderr_path: Path) -> str:
    number = -code if code < 0 else code - 128 if code > 128 else 0  # bwrap reports 128 + n
    if number in signal.Signals._value2member_map_:
        return f"killed by {signal.Signals(number).name}"
    if code == 0:
        return "exit code 0, as os._exit(0) does"
    detail = ""
    with contextlib.suppress(OSError):
        lines = stderr_path.read_bytes()[-2000:].decode(errors="replace").strip().splitlines()
        detail = next((f": {line.strip()[:200]}" for line in reversed(lines)
                       if "Error" in line or "error" in line), "")
    if "MemoryError" in detail or "Cannot allocate memory" in detail:
        return f"killed at the memory limit{detail}"
    return f"exit code {code}{detail}"


def _kill(process: subprocess.Popen) -> None:
    """End the sandbox and everything in it (its pid namespace dies with it)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            process.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)


def _grade_id(cell: dict[str, Any]) -> str:
    value = _meta(cell).get("grade_id", "")
    return value if isinstance(value, str) else ""


def _meta(cell: dict[str, Any]) -> dict[str, Any]:
    metadata = cell.get("metadata") if isinstance(cell, dict) else None
    nbgrader = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    return nbgrader if isinstance(nbgrader, dict) else {}


def _text(source: Any) -> str:
    if isinstance(source, list):
        return "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""
