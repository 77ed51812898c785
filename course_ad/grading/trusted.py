"""Grade one notebook the trusted way: assemble, run sandboxed, judge; the result as data.

``grade_notebook`` is what every path uses: ``make autograde`` (many at once, results cached
by the submission's hash), nbgrader's own autograde through ``TrustedExecute`` (formgrader),
and ``python -m course_ad try`` for an instructor checking one notebook. ``record_references``
runs the reference solution through the same path at release.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .judge import References, Verdict, judge, record
from .runner import GradingCell, UngradableSubmissionError, assemble, read_submission, run_notebook
from .sandbox import Sandbox

__all__ = ["GradedNotebook", "grade_notebook", "record_references", "references_path",
           "source_notebook", "CACHE_VERSION", "UngradableSubmissionError"]

CACHE_VERSION = 1


@dataclass
class GradedNotebook:
    """The outcome for one submission: per cell what to show, per test cell the verdict."""

    cells: list[dict[str, Any]]  # kind, id, points, outputs, error, verdict
    incidents: list[str] = field(default_factory=list)
    sandbox: str = ""
    seconds: float = 0.0
    key: str = ""

    @property
    def score(self) -> float:
        return sum(c["points"] for c in self.cells if c["kind"] == "test"
                   and c["verdict"]["passed"])

    @property
    def max_score(self) -> float:
        return sum(c["points"] for c in self.cells if c["kind"] == "test")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> GradedNotebook:
        return cls(**json.loads(text))

    def summary(self) -> str:
        lines = [f"{self.score:g} / {self.max_score:g} points ({self.seconds:.1f} s; "
                 f"{self.sandbox})"]
        for cell in self.cells:
            if cell["kind"] == "test":
                verdict = cell["verdict"]
                mark = "passed" if verdict["passed"] else "FAILED"
                lines.append(f"  {cell['id']:<16} {cell['points']:>4g} pt  {mark}")
                lines += [f"      {m}" for m in verdict["messages"][:4]]
        lines += [f"  incident: {i}" for i in self.incidents]
        return "\n".join(lines)


def source_notebook(root: Path, assignment: str) -> Path:
    """The instructor's notebook of an assignment (the first .ipynb in source/<assignment>)."""
    found = sorted((Path(root) / "source" / assignment).glob("*.ipynb"))
    if not found:
        raise FileNotFoundError(f"source/{assignment} holds no notebook")
    return found[0]


def references_path(root: Path, assignment: str) -> Path:
    return Path(root) / "references" / f"{assignment}.json"


def grade_notebook(root: Path, assignment: str, submission: Path, sandbox: Sandbox,
                   cache: Path | None = None) -> GradedNotebook:
    """Grade ``submission`` against source/ and the recorded references (cached by hash)."""
    source_path = source_notebook(root, assignment)
    references_file = references_path(root, assignment)
    if not references_file.exists():
        raise FileNotFoundError(f"{references_file.relative_to(root)} is missing: run "
                                "`make release` (it records the reference solution's values)")
    key = _key(submission, source_path, references_file, sandbox)
    if cache is not None and cache.exists():
        try:
            cached = GradedNotebook.from_json(cache.read_text())
            if cached.key == key:
                return cached
        except (ValueError, TypeError, KeyError):
            pass
    started = time.monotonic()
    cells = assemble(read_submission(source_path), read_submission(submission))
    references = References.load(references_file)
    runs = run_notebook(cells, sandbox, seconds=references.seconds)
    verdicts = judge(cells, runs["verdict"], references)
    graded = _result(cells, runs, verdicts, sandbox, time.monotonic() - started, key)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(graded.to_json())
    return graded


def record_references(root: Path, assignment: str, sandbox: Sandbox) -> list[str]:
    """Run the reference solution sandboxed and store its checks; the problems found."""
    source_path = source_notebook(root, assignment)
    notebook = read_submission(source_path)
    problems = [f"{assignment}: code cell {i} has no nbgrader metadata: mark it read-only "
                "(given), an answer or a test" for i, c in enumerate(notebook["cells"])
                if c.get("cell_type") == "code" and not c.get("metadata", {}).get("nbgrader")]
    cells = assemble(notebook, notebook)
    runs = run_notebook(cells, sandbox, passes=("verdict",))
    references, found = record(assignment, cells, runs["verdict"])
    problems += [f"{assignment}: {p}" for p in found + runs["verdict"].incidents]
    if not problems:
        references.save(references_path(root, assignment))
    return problems


def _result(cells: list[GradingCell], runs: dict[str, Any], verdicts: dict[int, Verdict],
            sandbox: Sandbox, seconds: float, key: str) -> GradedNotebook:
    display = runs["display"]
    out: list[dict[str, Any]] = []
    for cell in cells:
        run = display.cells.get(cell.index)
        verdict = verdicts.get(cell.index)
        out.append({"kind": cell.kind, "id": cell.id, "points": cell.points,
                    "outputs": run.outputs if run else [],
                    "error": run.error if run else None,
                    "stopped": run.stopped if run else "",
                    "verdict": asdict(verdict) if verdict else None})
    incidents = list(dict.fromkeys(runs["verdict"].incidents + display.incidents))
    return GradedNotebook(out, incidents, sandbox.describe(), seconds, key)


def _key(submission: Path, source: Path, references: Path, sandbox: Sandbox) -> str:
    digest = hashlib.sha256(f"v{CACHE_VERSION}|{sandbox.sandboxed}|{sandbox.limits}|".encode())
    for path in (submission, source, references):
        digest.update(path.read_bytes())
    digest.update(Path(__file__).with_name("worker.py").read_bytes())
    return digest.hexdigest()

