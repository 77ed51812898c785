"""The instructor's pipeline around nbgrader: release, autograde, feedback, grades.

Each step runs nbgrader for every assignment and student, checks the gradebook (nbgrader's
exit codes do not report failed tests or broken submissions), and keeps going when one
student fails.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .hidden import leaked_hidden_tests
from .offline import missing_local_scripts, remote_resources

__all__ = ["release", "autograde", "feedback", "grades", "CourseResult", "assignments"]

MANIFEST = "backup/release-manifest.json"  # sha256 of every file the last release wrote


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
    """``nbgrader generate_assignment --force`` for each assignment: source/ → release/.

    A release file that someone edited (it is neither what the last release wrote nor what
    this one writes) is copied to ``backup/release-<time>/`` first, and the result says so:
    nbgrader's ``--force`` would otherwise delete the edit without a word."""
    root = Path(root)
    result = CourseResult()
    manifest = _read_manifest(root)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for assignment in only or assignments(root):
        before = {path: path.read_bytes() for path in _release_files(root, assignment)}
        run = _nbgrader(root, "generate_assignment", assignment, "--force")
        result.log += run.stdout + run.stderr
        if run.returncode != 0 or not (root / "release" / assignment).is_dir():
            result.problems.append(f"{assignment}: generate_assignment failed: "
                                   f"{_last_error(run.stdout + run.stderr)}")
            _restore(before)  # a failed release leaves release/ as it found it
            continue
        for path, content in before.items():
            name = path.relative_to(root).as_posix()
            fresh = path.read_bytes() if path.is_file() else None
            if content == fresh or _digest(content) == manifest.get(name):
                continue  # unchanged, or exactly what the last release wrote
            backup = root / "backup" / f"release-{stamp}" / path.relative_to(root / "release")
            backup.parent.mkdir(parents=True, exist_ok=True)
            backup.write_bytes(content)
            why = ("had been edited since the last release" if name in manifest else
                   "differed from this release and no earlier one is recorded")
            result.done.append(f"{name} {why}: that version is kept in "
                               f"{backup.relative_to(root).as_posix()}")
        for path in _release_files(root, assignment):
            manifest[path.relative_to(root).as_posix()] = _digest(path.read_bytes())
        result.done.append(f"released {assignment}")
    _write_manifest(root, manifest)
    return result


def _release_files(root: Path, assignment: str) -> list[Path]:
    folder = root / "release" / assignment
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _read_manifest(root: Path) -> dict[str, str]:
    path = root / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}


def _write_manifest(root: Path, manifest: dict[str, str]) -> None:
    path = root / MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(sorted(manifest.items())), indent=1) + "\n")


def _restore(files: dict[Path, bytes]) -> None:
    for path, content in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


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
        for page in sorted((root / "feedback").glob(f"*/{assignment}/*.html")):
            name = page.relative_to(root).as_posix()
            result.problems += [f"{name} loads {url} from the network (offline it shows raw "
                                "LaTeX): check HTMLExporter.extra_template_basedirs in "
                                "nbgrader_config.py" for url in remote_resources(page)]
            result.problems += [f"{name} refers to {url}, which is missing next to it"
                                for url in missing_local_scripts(page)]
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
