"""The graded course: notebook metadata, the release, and the instructor pipeline end to end.

The golden autograde runs nbgrader on simulated submissions in a temporary copy of the
course, one per assignment, and checks the gradebook (nbgrader's exit codes do not say
whether tests passed). Timings land in test-artifacts/course-timings.json.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from course_ad import grading

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = grading.assignments(ROOT)
ARTIFACTS = ROOT / "test-artifacts"
TIMINGS: dict[str, float] = {}


def source_notebook(assignment: str) -> Path:
    return ROOT / "source" / assignment / f"{assignment}.ipynb"


def cells_of(notebook) -> list:
    return notebook.cells if hasattr(notebook, "cells") else nbformat.read(notebook, 4).cells


def grade_cells(notebook) -> list:
    return [c for c in cells_of(notebook) if c.metadata.get("nbgrader", {}).get("grade")]


def solution_cells(notebook) -> list:
    return [c for c in cells_of(notebook) if c.metadata.get("nbgrader", {}).get("solution")]


def visible_part(source: str) -> str:
    return re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", "", source, flags=re.S)


@pytest.fixture(scope="session", autouse=True)
def isolated_jupyter(tmp_path_factory):
    """nbgrader reads every nbgrader_config.py on Jupyter's paths: keep a developer's out."""
    home = tmp_path_factory.mktemp("jupyter")
    saved = {k: os.environ.get(k) for k in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR")}
    os.environ["JUPYTER_CONFIG_DIR"] = str(home / "config")
    os.environ["JUPYTER_RUNTIME_DIR"] = str(home / "runtime")
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if TIMINGS:
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "course-timings.json").write_text(json.dumps(TIMINGS, indent=2))


def test_there_are_six_assignments_of_20_points():
    assert ASSIGNMENTS == [
        "01_numerical_symbolic",
        "02_forward_mode",
        "03_reverse_mode",
        "04_tensors",
        "05_mlp",
        "06_cost_of_modes",
    ]
    for assignment in ASSIGNMENTS:
        points = sum(
            c.metadata["nbgrader"]["points"] for c in grade_cells(source_notebook(assignment))
        )
        assert points == 20, f"{assignment} has {points} points"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_metadata_is_valid(assignment):
    from nbgrader.nbgraderformat import MetadataValidator

    notebook = nbformat.read(source_notebook(assignment), 4)
    MetadataValidator().validate_nb(notebook)  # raises on a bad or duplicate grade id
    assert notebook.metadata.kernelspec.name == "python3"
    ids = [c.metadata["nbgrader"]["grade_id"] for c in notebook.cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids)), f"duplicate grade ids in {assignment}"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "clear the outputs"
    tests, solutions = grade_cells(notebook), solution_cells(notebook)
    assert 4 <= len(tests) <= 8 and len(tests) == len(solutions), (len(tests), len(solutions))
    header = notebook.cells[0].source
    assert "**Points:** 20" in header and "Expected time" in header and "Goals" in header


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_test_cell_checks_visibly_and_hides_more(assignment):
    notebook = nbformat.read(source_notebook(assignment), 4)
    for cell in grade_cells(notebook):
        assert re.search(r"\bcheck\(", visible_part(cell.source)), (
            f"{cell.metadata} has no visible check(): the student would not see what is right"
        )
        assert "### BEGIN HIDDEN TESTS" in cell.source
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.metadata.get("nbgrader"), (
                f"an unmarked code cell in {assignment}: the grader would take it for the "
                f"student's own code:\n{cell.source[:200]}")


ENGINE = re.compile(r"(from course_ad(\.\w+)? import|import course_ad)")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_given_cells_use_only_what_exists_while_grading(assignment):
    notebook = nbformat.read(source_notebook(assignment), 4)
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or meta.get("solution"):
            continue
        for line in cell.source.splitlines():
            if ENGINE.search(line):
                assert re.search(r"course_ad(\.grading| import (data|viz|grading))", line), (
                    f"{assignment} {meta.get('grade_id')}: {line.strip()} cannot be imported "
                    "while grading (only course_ad.grading, course_ad.data, course_ad.viz)")


def test_release_has_no_solution_hidden_test_or_marker():
    files = [p for p in (ROOT / "release").rglob("*") if p.is_file()]
    assert sorted(p.suffix for p in files) == [".ipynb"] * len(ASSIGNMENTS)
    for path in files:
        text = path.read_text()
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "MARK SCHEME"):
            assert marker not in text, f"{path.relative_to(ROOT)} contains {marker}"
        assignment = path.parent.name
        secret = grading.hidden_test_lines(source_notebook(assignment))
        released = "\n".join(c.source for c in cells_of(path))
        for line in secret:
            assert line not in released, f"hidden test line in {path.name}: {line}"
        source = nbformat.read(source_notebook(assignment), 4)
        given = "\n".join(
            re.sub(r"### BEGIN SOLUTION.*?### END SOLUTION", "", c.source, flags=re.S)
            for c in source.cells
        )  # code we hand out may repeat a line
        for cell in solution_cells(source):
            answer = re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", cell.source, re.S)
            for line in "".join(answer).splitlines():
                if len(line.strip()) > 20 and line.strip() not in given:
                    assert line.strip() not in released, f"solution line in {path.name}: {line}"


def test_release_is_exactly_what_nbgrader_generates(tmp_path):
    shutil.copytree(ROOT / "source", tmp_path / "source")
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    result = grading.release(tmp_path)
    assert result.ok, result.problems
    fresh = sorted(
        p.relative_to(tmp_path / "release") for p in (tmp_path / "release").rglob("*.ipynb")
    )
    committed = sorted(p.relative_to(ROOT / "release") for p in (ROOT / "release").rglob("*.ipynb"))
    assert fresh == committed
    for relative in committed:
        assert (tmp_path / "release" / relative).read_bytes() == (
            ROOT / "release" / relative
        ).read_bytes(), f"release/{relative} is stale: run `make release` and commit it"


def test_recorded_references_are_what_the_reference_solutions_compute(tmp_path):
    """references/ is regenerated by `make release`; a stale file would misgrade everyone."""
    from course_ad.grading.compare import compare, decode
    from course_ad.grading.judge import References

    shutil.copytree(ROOT / "source", tmp_path / "source")
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    result = grading.record(tmp_path)
    assert result.ok, result.problems
    for assignment in ASSIGNMENTS:
        fresh = References.load(tmp_path / "references" / f"{assignment}.json").checks
        committed = References.load(ROOT / "references" / f"{assignment}.json").checks
        assert fresh.keys() == committed.keys(), f"{assignment}: run `make release`"
        for cell, checks in fresh.items():
            assert [(c["what"], c["n"]) for c in checks] == [
                (c["what"], c["n"]) for c in committed[cell]], f"{assignment} {cell}: stale"
            for new, old in zip(checks, committed[cell]):
                assert not compare(old["how"], old["what"], decode(new["got"]),
                                   decode(old["got"]), rtol=1e-9, atol=1e-12,
                                   context=decode(old["context"])), (assignment, cell, new)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_instructor_version_passes_nbgraders_validator(assignment):
    from nbgrader.validator import Validator

    start = time.perf_counter()
    result = Validator().validate(str(source_notebook(assignment)))
    TIMINGS[f"validate {assignment}"] = round(time.perf_counter() - start, 2)
    assert result == {}, json.dumps(result, indent=1)[:3000]


# --------------------------------------------------------------------------------------
# The golden autograde, with both cores busy
# --------------------------------------------------------------------------------------


@pytest.fixture
def busy_cores():
    """Both cores kept busy while the class is graded: correct work must still pass."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
               for _ in range(os.cpu_count() or 2)]
    yield len(burners)
    for burner in burners:
        burner.kill()
        burner.wait()


def _submissions(assignment: str, course: Path) -> dict[str, object]:
    """Simulated students: what each one hands in (the adversarial class has many more)."""
    source = nbformat.read(source_notebook(assignment), 4)
    release = nbformat.read(course / "release" / assignment / f"{assignment}.ipynb", 4)
    tests = [i for i, c in enumerate(release.cells) if c.metadata.get("nbgrader", {}).get("grade")]
    answers = [
        i for i, c in enumerate(release.cells) if c.metadata.get("nbgrader", {}).get("solution")
    ]

    def copy(notebook):
        return nbformat.from_dict(json.loads(json.dumps(notebook)))

    first_only = copy(release)
    first_only.cells[answers[0]].source = source.cells[answers[0]].source
    tampered = copy(release)  # blank answers, and the tests edited to pass
    for i in tests:
        tampered.cells[i].source = "print('all tests passed')"
    endless = copy(source)
    endless.cells[answers[-1]].source = "while True:\n    pass"
    return {
        "instructor": source,
        "untouched": release,
        "first_task": first_only,
        "blank_tampered_tests": tampered,
        "endless_loop": endless,
        "not_a_notebook": "this is not a notebook\n",
    }


def test_golden_autograde(tmp_path, busy_cores):
    course = tmp_path / "course"
    shutil.copytree(ROOT / "source", course / "source")
    shutil.copytree(ROOT / "release", course / "release")
    shutil.copytree(ROOT / "references", course / "references")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    students: dict[str, dict[str, object]] = {}
    for assignment in ASSIGNMENTS:
        for student, content in _submissions(assignment, course).items():
            students.setdefault(student, {})[assignment] = content
            folder = course / "submitted" / student / assignment
            folder.mkdir(parents=True)
            target = folder / f"{assignment}.ipynb"
            if isinstance(content, str):
                target.write_text(content)
            else:
                nbformat.write(content, target)
    start = time.perf_counter()
    options = grading.GradingOptions(jobs=2, cell_seconds=5.0)  # the loop is stopped sooner
    result = grading.autograde(course, options=options)
    seconds = time.perf_counter() - start
    TIMINGS[f"autograde {len(result.scores)} notebooks, -j 2, {busy_cores} cores busy"] = round(
        seconds, 1)

    for assignment in ASSIGNMENTS:
        scores = {s: score for (s, a), score in result.scores.items() if a == assignment}
        source = nbformat.read(source_notebook(assignment), 4)
        points = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"]
                  for c in grade_cells(source)}
        first, last = list(points)[0], list(points)[-1]
        total = sum(points.values())
        assert scores["instructor"] == (total, total), (assignment, result)
        assert scores["untouched"] == (0.0, total), (assignment, result)
        assert scores["first_task"] == (points[first], total), (assignment, result)
        assert scores["blank_tampered_tests"] == (0.0, total), "edited tests come from source/"
        assert scores["endless_loop"] == (total - points[last], total), (assignment, result)
        assert "not_a_notebook" not in scores
        assert [p for p in result.problems if p.startswith(f"not_a_notebook/{assignment}")]
    assert len(result.problems) == len(ASSIGNMENTS), result.problems  # all others graded

    start = time.perf_counter()
    feedback = grading.feedback(course)
    TIMINGS["feedback"] = round(time.perf_counter() - start, 1)
    assert feedback.ok, feedback.problems  # includes: no hidden test line in any page
    for assignment in ASSIGNMENTS:
        page = (course / "feedback" / "endless_loop" / assignment / f"{assignment}.html")
        text = page.read_text()
        assert "hidden tests ran here" in text
        assert "was stopped after" in text and "(the time limit)" in text

    exported = grading.grades(course)
    assert exported.ok
    rows = list(csv.DictReader((course / "grades.csv").open()))
    assert {r["status"] for r in rows if r["student_id"] == "not_a_notebook"} == {"ungraded"}
    assert all(r["score"] == "ungraded" for r in rows if r["student_id"] == "not_a_notebook")
    assert all(r["score"] not in ("", "0.0") for r in rows if r["student_id"] == "instructor")
