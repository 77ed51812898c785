"""The instructor's pipeline around nbgrader: release, autograde, feedback, grades.

Each step runs nbgrader for every assignment and student, checks the gradebook (nbgrader's
exit codes do not report failed tests or broken submissions), and keeps going when one
student fails.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import queue
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .hidden import leaked_hidden_tests
from .offline import missing_local_scripts, remote_resources
from .runner import UngradableSubmissionError
from .sandbox import GIB, Limits, Sandbox, SandboxUnavailableError
from .steps import cache_path
from .trusted import grade_notebook, record_references, references_path, source_notebook

__all__ = ["release", "autograde", "feedback", "grades", "CourseResult", "assignments",
           "GradingOptions", "record", "gradebook_url"]

MANIFEST = "backup/release-manifest.json"  # sha256 of every file the last release wrote
DB_URL = "COURSE_AD_DB_URL"  # the gradebook's URL, when not the one in nbgrader_config.py


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
    result.problems += record(root, only, GradingOptions()).problems
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


def record(root: str | Path = ".", only: Iterable[str] | None = None,
           options: GradingOptions | None = None) -> CourseResult:
    """Run each reference solution sandboxed and store its checks in references/."""
    root, options = Path(root), options or GradingOptions()
    result = CourseResult()
    sandbox = options.sandbox(result)
    if sandbox is None:
        return result
    for assignment in only or assignments(root):
        problems = record_references(root, assignment, sandbox)
        result.problems += problems
        if not problems:
            result.done.append(f"recorded the reference values of {assignment}")
    return result


@dataclass
class GradingOptions:
    """How ``autograde`` runs student code: workers, limits, and the sandbox switch."""

    jobs: int = 0  # 0: one per core
    cell_seconds: float = 30.0
    factor: float = 10.0
    memory_gib: float = 2.0
    allow_unsandboxed: bool = False
    db_url: str = ""  # the gradebook; "" = nbgrader_config.py's (else gradebook.db)

    def limits(self) -> Limits:
        return Limits(memory_bytes=int(self.memory_gib * GIB), cell_seconds=self.cell_seconds,
                      factor=self.factor)

    def sandbox(self, result: CourseResult, slot: int = 0) -> Sandbox | None:
        """The sandbox these options ask for, or None with the reason in ``result``."""
        try:
            return Sandbox(self.limits(), slot=slot, allow_unsandboxed=self.allow_unsandboxed)
        except SandboxUnavailableError as error:
            result.problems.append(str(error))
            return None

    def nbgrader_flags(self) -> list[str]:
        return [f"--TrustedExecute.cell_seconds={self.cell_seconds}",
                f"--TrustedExecute.factor={self.factor}",
                f"--TrustedExecute.memory_gib={self.memory_gib}",
                f"--TrustedExecute.allow_unsandboxed={self.allow_unsandboxed}"]


def autograde(root: str | Path = ".", only: Iterable[str] | None = None,
              options: GradingOptions | None = None) -> CourseResult:
    """Grade every submission in submitted/: sandboxed, in parallel, into the gradebook.

    Each submission is graded on its own (``trusted.grade_notebook``) by ``options.jobs``
    workers; then one nbgrader autograde per assignment writes the verdicts into the
    gradebook (one writer, so the gradebook stays consistent). A submission that cannot be
    graded is reported by name with the reason and marked ungraded; the others are graded."""
    root, options = Path(root), options or GradingOptions()
    with _gradebook(options.db_url):
        return _autograde(root, only, options)


@contextlib.contextmanager
def _gradebook(url: str):
    """Every nbgrader run and gradebook read of the block use ``url`` (when given).

    Passed as COURSE_AD_DB_URL, which nbgrader_config.py reads: never on a command line,
    where every user of the machine could read its password."""
    before = os.environ.get(DB_URL)
    if url:
        os.environ[DB_URL] = url
    try:
        yield
    finally:
        if url and before is None:
            os.environ.pop(DB_URL, None)
        elif url:
            os.environ[DB_URL] = before


def _autograde(root: Path, only: Iterable[str] | None, options: GradingOptions) -> CourseResult:
    result = CourseResult()
    problem = _unreachable(gradebook_url(root))
    if problem:
        result.problems.append(problem)
        return result
    sandbox = options.sandbox(result)
    if sandbox is None:
        return result
    result.done.append(f"student code ran in: {sandbox.describe()}")
    submitted = root / "submitted"
    todo = sorted({p.name for p in submitted.glob("*/*") if p.is_dir()})
    todo = [a for a in todo if only is None or a in set(only)]
    known = set(assignments(root))
    for assignment in todo:
        if assignment not in known:
            result.problems.append(f"{assignment}: submitted, but there is no such assignment "
                                   "in source/")
            continue
        if not references_path(root, assignment).exists():
            result.problems.append(f"{assignment}: no recorded references: run `make release`")
            continue
        problem = _register(root, assignment)
        if problem:
            result.problems.append(problem)
            continue
        students = sorted(p.name for p in submitted.iterdir() if (p / assignment).is_dir())
        statuses = _grade_all(root, assignment, students, options)
        run = _nbgrader(root, "autograde", assignment, "--force", *options.nbgrader_flags())
        result.log += run.stdout + run.stderr
        _collect(root, assignment, statuses, result, run.stdout + run.stderr)
    return result


def _register(root: Path, assignment: str) -> str:
    """Put the assignment's cells in the gradebook without touching release/."""
    scratch = root / ".grading" / "release"
    run = _nbgrader(root, "generate_assignment", assignment, "--force",
                    f"--CourseDirectory.release_directory={scratch.relative_to(root)}")
    shutil.rmtree(scratch, ignore_errors=True)
    if run.returncode != 0:
        error = _last_error(run.stdout + run.stderr)
        return f"{assignment}: cannot enter it in the gradebook: {error}"
    return ""


def _grade_all(root: Path, assignment: str, students: list[str],
               options: GradingOptions) -> dict[str, dict]:
    """Grade every student's submission, ``options.jobs`` at a time; a status per student."""
    jobs = options.jobs or os.cpu_count() or 1
    slots: queue.Queue[int] = queue.Queue()
    for slot in range(jobs):
        slots.put(slot)
    notebook = source_notebook(root, assignment).name

    def one(student: str) -> tuple[str, dict]:
        slot = slots.get()
        try:
            return student, _grade_one(root, assignment, student, notebook, slot, options)
        finally:
            slots.put(slot)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return dict(pool.map(one, students))


def _grade_one(root: Path, assignment: str, student: str, notebook: str, slot: int,
               options: GradingOptions) -> dict:
    status_file = cache_path(root, assignment, student).with_suffix(".status.json")
    status_file.parent.mkdir(parents=True, exist_ok=True)
    submission = root / "submitted" / student / assignment / notebook
    started = time.monotonic()
    try:
        if not submission.exists():
            raise UngradableSubmissionError(f"the submission has no {notebook}")
        sandbox = Sandbox(options.limits(), slot=slot,
                          allow_unsandboxed=options.allow_unsandboxed)
        graded = grade_notebook(root, assignment, submission, sandbox,
                                cache=cache_path(root, assignment, student))
        status = {"status": "graded", "score": graded.score, "max_score": graded.max_score,
                  "incidents": graded.incidents, "sandbox": graded.sandbox,
                  "seconds": round(graded.seconds, 2)}
    except UngradableSubmissionError as error:
        status = {"status": "ungraded", "reason": str(error)}
    except Exception as error:  # noqa: BLE001 - one submission must not stop the others
        status = {"status": "ungraded", "reason": f"the grader failed: {type(error).__name__}: "
                                                  f"{error}"[:500]}
    status["wall_seconds"] = round(time.monotonic() - started, 2)
    status_file.write_text(json.dumps(status, indent=1))
    return status


def _collect(root: Path, assignment: str, statuses: dict[str, dict], result: CourseResult,
             log: str) -> None:
    """Scores from the gradebook, checked against the trusted results; problems by name."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(gradebook_url(root)) as gradebook:
        for student, status in sorted(statuses.items()):
            if status["status"] != "graded":
                result.problems.append(f"{student}/{assignment}: ungraded: {status['reason']}")
                continue
            try:
                submission = gradebook.find_submission(assignment, student)
                score = float(submission.score)
            except MissingEntry:
                reason = _student_error(log, student) or "nbgrader did not record it"
                result.problems.append(f"{student}/{assignment}: ungraded: {reason}")
                status.update(status="ungraded", reason=reason)
                _save_status(root, assignment, student, status)
                continue
            if abs(score - status["score"]) > 1e-9:
                result.problems.append(f"{student}/{assignment}: the gradebook says {score:g}, "
                                       f"the trusted grader {status['score']:g}")
            result.scores[(student, assignment)] = (score, float(submission.max_score))
            late = _lateness(submission)
            if late:
                result.done.append(f"{student}/{assignment}: {late}")
            for incident in status.get("incidents", []):
                result.done.append(f"{student}/{assignment}: {incident}")


def _lateness(submission) -> str:  # noqa: ANN001 - nbgrader's SubmittedAssignment
    """'' when on time, else how late and against which deadline."""
    seconds = float(submission.total_seconds_late or 0)
    if seconds <= 0:
        return ""
    return (f"submitted {seconds:.0f} s after the deadline ({submission.duedate} UTC); "
            "a penalty only if LateSubmissionPlugin.penalty_method says so")


def _unreachable(url: str) -> str:
    """Why a PostgreSQL gradebook cannot be used now ('' when it answers, or for SQLite)."""
    if not url.startswith("postgresql"):
        return ""
    from ..hub.postgres import reachable

    return reachable(url)


def _save_status(root: Path, assignment: str, student: str, status: dict) -> None:
    path = cache_path(root, assignment, student).with_suffix(".status.json")
    path.write_text(json.dumps(status, indent=1))


def gradebook_url(root: Path) -> str:
    """The gradebook's database URL: COURSE_AD_DB_URL, else nbgrader_config.py's
    CourseDirectory.db_url, else SQLite in the course."""
    from traitlets.config.loader import PyFileConfigLoader

    if os.environ.get(DB_URL):
        return os.environ[DB_URL]
    config_file = Path(root) / "nbgrader_config.py"
    if config_file.exists():
        loader = PyFileConfigLoader(config_file.name, path=str(config_file.parent))
        with contextlib.suppress(Exception):
            url = loader.load_config().CourseDirectory.get("db_url")
            if url:
                return str(url)
    return f"sqlite:///{(Path(root) / 'gradebook.db').resolve()}"


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
    """grades.csv: a row per submission; one that could not be graded says *ungraded*.

    Never 0.0 for a submission nobody could grade: the reason is in its row instead."""
    from nbgrader.api import Gradebook, MissingEntry

    root = Path(root)
    result = CourseResult()
    rows = []
    with Gradebook(gradebook_url(root)) as gradebook:
        for assignment in assignments(root):
            students = sorted(p.parent.name for p in
                              (root / "submitted").glob(f"*/{assignment}") if p.is_dir())
            for student in students:
                status = _load_status(root, assignment, student)
                try:
                    submission = gradebook.find_submission(assignment, student)
                except MissingEntry:
                    submission = None
                if submission is None or status.get("status") == "ungraded":
                    reason = status.get("reason", "not graded yet: run make autograde")
                    rows.append([assignment, student, "ungraded", "", "ungraded", reason])
                    continue
                score, top = float(submission.score), float(submission.max_score)
                result.scores[(student, assignment)] = (score, top)
                notes = [_lateness(submission), *status.get("incidents", [])]
                rows.append([assignment, student, f"{score:g}", f"{top:g}", "graded",
                             "; ".join(note for note in notes if note)])
    with open(root / to, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["assignment", "student_id", "score", "max_score", "status", "notes"])
        writer.writerows(rows)
    result.done.append(f"{len(rows)} row(s)")
    return result


def _load_status(root: Path, assignment: str, student: str) -> dict:
    path = cache_path(root, assignment, student).with_suffix(".status.json")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


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
