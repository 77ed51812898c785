"""Grading support: what hidden tests use, and the instructor's pipeline around nbgrader.

In notebooks: ``close`` and ``report`` make assertions whose message shows expected against
got; ``own_work`` fails an answer that hands the task to course_ad's reference
implementation. For instructors: ``release``, ``autograde``, ``feedback`` and ``grades`` run
nbgrader for every assignment and student, check the gradebook (nbgrader's exit codes do
not report failed tests or broken submissions), and keep going when one student fails.
``HideHiddenTests`` strips hidden tests from feedback (nbgrader would show them, #917).
"""

from __future__ import annotations

import csv
import dis
import html
import json
import os
import re
import subprocess
import sys
import types
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .dispatch import primal_value

__all__ = ["close", "report", "own_work", "is_topological_order", "HideHiddenTests", "release",
           "autograde", "feedback", "grades", "CourseResult", "assignments"]

HIDDEN_BEGIN, HIDDEN_END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"


# --------------------------------------------------------------------------------------
# In test cells
# --------------------------------------------------------------------------------------


def close(got: Any, expected: Any, rtol: float = 1e-6, atol: float = 1e-9) -> bool:
    """True when got matches expected in shape and, entry by entry, to the tolerances."""
    got = primal_value(got)  # a course_ad value compares by its numbers
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


# --------------------------------------------------------------------------------------
# Feedback without hidden tests
# --------------------------------------------------------------------------------------


try:  # nbconvert comes with nbgrader; the class is only needed when feedback is generated
    from nbconvert.preprocessors import Preprocessor
    from traitlets import Bool
except ImportError:  # pragma: no cover
    Preprocessor, Bool = object, None  # type: ignore[assignment,misc]


class HideHiddenTests(Preprocessor):  # type: ignore[misc,valid-type]
    """Feedback keeps which tests failed and their messages, never the hidden tests' code.

    In each test cell the lines between the hidden-test delimiters are replaced by one
    comment, and error tracebacks (which quote the failing line) are cut to
    ``ErrorName: message``."""

    enabled = Bool(True).tag(config=True) if Bool else True  # nbconvert skips disabled ones

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or not cell.metadata.get("nbgrader", {}).get("grade"):
            return cell, resources
        kept, hidden = [], False
        for line in cell.source.splitlines():
            if HIDDEN_BEGIN in line:
                hidden = True
                indent = line[: len(line) - len(line.lstrip())]
                kept.append(f"{indent}# (hidden tests ran here; a failure shows its message "
                            "below)")
            elif HIDDEN_END in line:
                hidden = False
            elif not hidden:
                kept.append(line)
        cell.source = "\n".join(kept)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                message = _strip_ansi(f"{output.get('ename', 'Error')}: {output.get('evalue', '')}")
                output["traceback"] = [message]
        return cell, resources


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


# --------------------------------------------------------------------------------------
# The instructor's pipeline
# --------------------------------------------------------------------------------------


@dataclass
class CourseResult:
    """What a pipeline step did: per (student, assignment) scores and any problems."""

    scores: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    log: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        lines = [f"  {student:<20} {assignment:<28} {score:6.1f} / {top:.1f}"
                 for (student, assignment), (score, top) in sorted(self.scores.items())]
        lines += [f"  {item}" for item in self.done]
        lines += [f"  problem: {p}" for p in self.problems]
        return "\n".join(lines) or "  nothing to do"


def assignments(root: str | Path = ".") -> list[str]:
    """The assignment ids: the folders of ``source/`` that hold a notebook."""
    source = Path(root) / "source"
    return sorted(p.name for p in source.iterdir()
                  if p.is_dir() and any(p.glob("*.ipynb"))) if source.is_dir() else []


def _nbgrader(root: Path, *args: str) -> subprocess.CompletedProcess:
    """Run nbgrader in the course root (where nbgrader_config.py is read from)."""
    # nbgrader runs the `alembic` program of its environment: put that environment first
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ, JUPYTER_PLATFORM_DIRS="1", PYTHONWARNINGS="ignore",
               PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, env=env,
                          capture_output=True, text=True)


def release(root: str | Path = ".", only: Iterable[str] | None = None) -> CourseResult:
    """``nbgrader generate_assignment --force`` for each assignment: source/ → release/."""
    root = Path(root)
    result = CourseResult()
    for assignment in only or assignments(root):
        run = _nbgrader(root, "generate_assignment", assignment, "--force")
        result.log += run.stdout + run.stderr
        if run.returncode != 0 or not (root / "release" / assignment).is_dir():
            result.problems.append(f"{assignment}: generate_assignment failed: "
                                   f"{_last_error(run.stdout + run.stderr)}")
        else:
            result.done.append(f"released {assignment}")
    return result


def autograde(root: str | Path = ".", only: Iterable[str] | None = None) -> CourseResult:
    """Autograde every submission in submitted/ and read the scores back from the gradebook.

    A student whose submission cannot be graded (not a notebook, a kernel that died) is
    reported; everyone else is graded all the same."""
    root = Path(root)
    result = CourseResult()
    submitted = root / "submitted"
    todo = sorted({p.name for p in submitted.glob("*/*") if p.is_dir()})
    todo = [a for a in todo if only is None or a in set(only)]
    known = set(assignments(root))
    # the gradebook must hold each assignment's cells (hidden tests included) before grading
    result.problems += release(root, only=[a for a in todo if a in known]).problems
    for assignment in todo:
        if assignment not in known:
            result.problems.append(f"{assignment}: submitted, but there is no such assignment "
                                   "in source/")
            continue
        run = _nbgrader(root, "autograde", assignment, "--force")
        result.log += run.stdout + run.stderr
        _collect(root, assignment, result, run.stdout + run.stderr)
    return result


def _collect(root: Path, assignment: str, result: CourseResult, log: str) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    students = sorted(p.name for p in (root / "submitted").iterdir()
                      if (p / assignment).is_dir())
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        for student in students:
            try:
                submission = gradebook.find_submission(assignment, student)
            except MissingEntry:
                submission = None
            graded = (root / "autograded" / student / assignment)
            if submission is None or not any(graded.glob("*.ipynb")):
                reason = _student_error(log, student) or "no notebook could be graded"
                result.problems.append(f"{student}/{assignment}: not graded: {reason}")
                continue
            result.scores[(student, assignment)] = (float(submission.score),
                                                    float(submission.max_score))
            if submission.needs_manual_grade:
                result.problems.append(f"{student}/{assignment}: needs manual grading")


def feedback(root: str | Path = ".", only: Iterable[str] | None = None) -> CourseResult:
    """HTML feedback for every autograded submission, without the hidden tests' code."""
    root = Path(root)
    result = CourseResult()
    for assignment in sorted({p.name for p in (root / "autograded").glob("*/*")
                              if p.is_dir()}):
        if only is not None and assignment not in set(only):
            continue
        run = _nbgrader(root, "generate_feedback", assignment, "--force")
        result.log += run.stdout + run.stderr
        leaks = leaked_hidden_tests(root, assignment)
        result.problems += [f"{assignment}: feedback shows hidden test code: {leak}"
                            for leak in leaks]
        if run.returncode != 0:
            result.problems.append(f"{assignment}: generate_feedback failed: "
                                   f"{_last_error(run.stdout + run.stderr)}")
        else:
            pages = len(list((root / "feedback").glob(f"*/{assignment}/*.html")))
            result.done.append(f"{assignment}: {pages} feedback page(s)")
    return result


def grades(root: str | Path = ".", to: str = "grades.csv") -> CourseResult:
    """The gradebook as CSV (one row per student and assignment)."""
    root = Path(root)
    result = CourseResult()
    run = _nbgrader(root, "export", "--to", to)
    result.log = run.stdout + run.stderr
    path = root / to
    if run.returncode != 0 or not path.exists():
        result.problems.append(f"export failed: {_last_error(result.log)}")
        return result
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            result.scores[(row["student_id"], row["assignment"])] = (
                float(row["score"] or 0), float(row["max_score"] or 0))
    return result


def hidden_test_lines(notebook: str | Path) -> list[str]:
    """The code lines of a source notebook's hidden tests (to check nothing shows them)."""
    cells = json.loads(Path(notebook).read_text())["cells"]
    lines, visible = [], set()
    for cell in cells:
        hidden = False
        for line in "".join(cell["source"]).splitlines():
            if HIDDEN_BEGIN in line:
                hidden = True
            elif HIDDEN_END in line:
                hidden = False
            elif hidden:
                lines.append(line.strip())
            else:
                visible.add(line.strip())
    return [line for line in lines if len(line) > 12 and line not in visible]


def leaked_hidden_tests(root: Path, assignment: str) -> list[str]:
    """Hidden-test lines (or delimiters) that appear in any feedback file of the assignment."""
    sources = list((root / "source" / assignment).glob("*.ipynb"))
    secret = [line for nb in sources for line in hidden_test_lines(nb)]
    leaks = []
    for page in (root / "feedback").glob(f"*/{assignment}/*.html"):
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
        for marker in ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", *secret):
            if marker in text:
                leaks.append(f"{page.relative_to(root)}: {marker[:60]}")
    return leaks


def _last_error(log: str) -> str:
    lines = [line for line in log.splitlines() if "ERROR" in line or "Error" in line]
    return (lines[-1] if lines else log.strip().splitlines()[-1] if log.strip() else "")[-300:]


def _student_error(log: str, student: str) -> str:
    """The first error nbgrader logged while working on this student's submission."""
    relevant, current = [], False
    for line in log.splitlines():
        if f"{student}/" in line or f"student '{student}'" in line:
            current = True
        if current and ("ERROR" in line or "Error" in line):
            relevant.append(line.split("] ", 1)[-1].strip())
        if current and relevant:
            break
    return relevant[0][:300] if relevant else ""
