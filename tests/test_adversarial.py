"""The adversarial class: every submission of tests/adversarial.py gets exactly its fair score.

One `make autograde -j 2` over a course holding the class for assignments 03 and 05: honest
work full marks, a cheat at most its honest score, a broken notebook reported ungraded by
name, and nothing a submission does reaches the gradebook, the instructor's files or another
student. Figures land in test-artifacts/adversarial.json.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import nbformat
import pytest
from adversarial import GENERIC, Case, Notebooks
from adversarial_specific import SPECIFIC

from course_ad import grading
from course_ad.grading import sandbox as sandbox_module

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CLASS = {
    "03_reverse_mode": GENERIC + SPECIFIC.get("03_reverse_mode", []),
    "05_mlp": [c for c in GENERIC if c.name in (
        "honest_solution", "honest_stderr_warning", "honest_tqdm", "honest_pasted_answer_cell",
        "reference_plain_import", "reference_autograd", "process_sigint_ignoring_loop",
        "hook_input_transformer", "helpers_forge_channel", "broken_invalid_json")]
    + SPECIFIC.get("05_mlp", []),
}

pytestmark = pytest.mark.skipif(bool(sandbox_module.unavailable_reason()),
                                reason=sandbox_module.unavailable_reason() or "")


def _notebooks(assignment: str) -> Notebooks:
    return Notebooks(assignment,
                     nbformat.read(ROOT / "source" / assignment / f"{assignment}.ipynb", 4),
                     nbformat.read(ROOT / "release" / assignment / f"{assignment}.ipynb", 4))


def _write(course: Path, assignment: str, case: Case, notebooks: Notebooks) -> None:
    folder = course / "submitted" / case.name / assignment
    folder.mkdir(parents=True)
    content = case.build(notebooks)
    target = folder / f"{assignment}.ipynb"
    if isinstance(content, str):
        target.write_text(content)
    else:
        nbformat.write(content, target)


def _per_test(course: Path, assignment: str, student: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(grading.pipeline.gradebook_url(course)) as gradebook:
        try:
            submission = gradebook.find_submission(assignment, student)
        except Exception:  # noqa: BLE001 - only for the failure message
            return {}
        return {g.name: g.score for nb in submission.notebooks for g in nb.grades}


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


def test_every_submission_of_the_adversarial_class_gets_its_fair_score(tmp_path):
    course = tmp_path / "course"
    for folder in ("source", "release", "references"):
        shutil.copytree(ROOT / folder, course / folder)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    instructor = _digest(course / "source") + _digest(course / "references")
    deserved: dict[tuple[str, str], float | str] = {}
    totals: dict[str, float] = {}
    for assignment, cases in CLASS.items():
        notebooks = _notebooks(assignment)
        totals[assignment] = notebooks.total
        for case in cases:
            _write(course, assignment, case, notebooks)
            deserved[(case.name, assignment)] = case.deserves(notebooks)
    assert len(deserved) >= 40

    start = time.perf_counter()
    result = grading.autograde(course, options=grading.GradingOptions(jobs=2,
                                                                      cell_seconds=10.0))
    seconds = time.perf_counter() - start

    wrong = []
    for (student, assignment), fair in sorted(deserved.items()):
        got = result.scores.get((student, assignment))
        if fair == "ungraded":
            named = [p for p in result.problems if p.startswith(f"{student}/{assignment}: "
                                                                f"ungraded")]
            if got is not None or not named:
                wrong.append(f"{student}/{assignment}: should be reported ungraded, got {got}")
        elif got != (fair, totals[assignment]):
            wrong.append(f"{student}/{assignment}: deserves {fair}, got {got} "
                         f"{_per_test(course, assignment, student)}")
    assert not wrong, "\n".join(wrong)
    broken = sum(1 for fair in deserved.values() if fair == "ungraded")
    assert len([p for p in result.problems if ": ungraded" in p]) == broken, result.problems

    # nothing reached the instructor's material, and no process outlived its notebook
    assert _digest(course / "source") + _digest(course / "references") == instructor
    if os.geteuid() == 0:
        time.sleep(1)
        leftovers = [pid for slot in range(64)
                     for pid in sandbox_module.processes_of(sandbox_module.FIRST_UID + slot)]
        assert not leftovers, f"sandbox processes outlived grading: {leftovers}"

    exported = grading.grades(course)
    rows = {(r["student_id"], r["assignment"]): r
            for r in csv.DictReader((course / "grades.csv").open())}
    for (student, assignment), fair in deserved.items():
        row = rows[(student, assignment)]
        if fair == "ungraded":
            assert row["score"] == "ungraded" and row["status"] == "ungraded" and row["notes"]
        else:
            assert float(row["score"]) == fair and row["status"] == "graded"
    assert exported.ok

    feedback = grading.feedback(course)
    assert feedback.ok, feedback.problems  # no hidden test line in any page, the looter's too
    loot = (course / "feedback" / "files_read_instructor_material" / "03_reverse_mode" /
            "03_reverse_mode.html").read_text()
    assert "nothing found" in loot

    graded = [s for s in deserved.values() if s != "ungraded"]
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "adversarial.json").write_text(json.dumps({
        "submissions": len(deserved), "graded": len(graded), "ungraded": broken,
        "seconds": round(seconds, 1), "seconds_per_submission": round(seconds / len(deserved),
                                                                     2), "jobs": 2}, indent=1))
