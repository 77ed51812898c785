"""The graded course: notebook metadata, the release, and the instructor pipeline end to end.

The golden autograde runs nbgrader on simulated submissions in a temporary copy of the
course, one per assignment, and checks the gradebook (nbgrader's exit codes do not say
whether tests passed). Timings land in test-artifacts/course-timings.json.
"""

from __future__ import annotations

import json
import os
import re
import shutil
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
def test_every_test_cell_has_a_visible_assert_and_a_hidden_block(assignment):
    notebook = source_notebook(assignment)
    for answer, cell in zip(solution_cells(notebook), grade_cells(notebook)):
        visible = visible_part(cell.source)
        assert re.search(r"^\s*assert ", visible, flags=re.M), (
            f"{cell.metadata} has no visible assert"
        )
        assert "### BEGIN HIDDEN TESTS" in cell.source
        if re.search(r"^\s*(def|class) ", answer.source, flags=re.M):  # code to check
            assert "own_work(" in cell.source, f"{cell.metadata} must check the answer is own work"
        last = [line for line in cell.source.splitlines() if line.strip()][-1]
        assert "END HIDDEN TESTS" in last or last.lstrip().startswith("assert"), (
            "a test cell must not end in a bare expression (nbgrader would take it as a score)"
        )
        assert "warn" not in cell.source and "stderr" not in cell.source  # stderr scores 0


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


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_instructor_version_passes_nbgraders_validator(assignment):
    from nbgrader.validator import Validator

    start = time.perf_counter()
    result = Validator().validate(str(source_notebook(assignment)))
    TIMINGS[f"validate {assignment}"] = round(time.perf_counter() - start, 2)
    assert result == {}, json.dumps(result, indent=1)[:3000]


# --------------------------------------------------------------------------------------
# The golden autograde
# --------------------------------------------------------------------------------------

CHEATS = {  # task 1 handed to course_ad's reference implementation
    "01_numerical_symbolic": (
        "from course_ad.numerical import forward_difference, central_difference"
    ),
    "02_forward_mode": "from course_ad import ForwardDiff as Dual",
    "03_reverse_mode": "\n".join(
        f"def {name}_vjp(g, *xs):\n"
        f"    import course_ad\n"
        f"    return tuple(vjp(g, None, *xs) for vjp in course_ad.VJP_RULES[{rule!r}])"
        for name, rule in [
            ("add", "add"),
            ("sub", "sub"),
            ("mul", "mul"),
            ("div", "div"),
            ("sin", "sin"),
            ("exp", "exp"),
        ]
    ),
    "04_tensors": (
        "import course_ad as ref\n\n"
        "def add_vjp(g, a, b):\n    return g, g\n\n"
        "def scale_vjp(g, alpha, x):\n"
        "    return ref.grad(lambda a, v: ref.sum(g * a * v), argnums=(0, 1))(alpha, x)"
    ),
    "05_mlp": (
        "def init_params(n_in, n_hidden, n_out, seed=0):\n"
        "    from course_ad.nn import Linear\n"
        "    import numpy as np\n"
        "    rng = np.random.default_rng(seed)\n"
        "    a, b = Linear(n_in, n_hidden, seed=rng), Linear(n_hidden, n_out, seed=rng)\n"
        "    return {'W1': a.W.value, 'b1': a.b.value, 'W2': b.W.value, 'b2': b.b.value}"
    ),
    "06_cost_of_modes": "from course_ad.cost import forward_cost, reverse_cost",
}


def _submissions(assignment: str, course: Path) -> dict[str, object]:
    """Simulated students: what each one hands in."""
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
    blank = copy(release)
    for i in tests:
        blank.cells[i].source = ""
    deleted = copy(source)
    del deleted.cells[tests[0]]
    endless = copy(source)
    endless.cells[answers[-1]].source = "while True:\n    pass"
    cheat = copy(source)
    cheat.cells[answers[0]].source = CHEATS[assignment]
    return {
        "instructor": source,
        "untouched": release,
        "first_task": first_only,
        "blank": blank,
        "deleted_test": deleted,
        "endless_loop": endless,
        "reference_import": cheat,
        "not_a_notebook": "this is not a notebook\n",
    }


def _grades(course: Path, assignment: str, student: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission(assignment, student)
        return {g.name: g.score for nb in submission.notebooks for g in nb.grades}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_golden_autograde(assignment, tmp_path):
    course = tmp_path / "course"
    (course / "source").mkdir(parents=True)
    shutil.copytree(ROOT / "source" / assignment, course / "source" / assignment)
    config = (ROOT / "nbgrader_config.py").read_text()
    config += "\nc.Execute.timeout = 6  # the endless loop is stopped sooner in the test\n"
    (course / "nbgrader_config.py").write_text(config)
    assert grading.release(course).ok
    students = _submissions(assignment, course)
    for student, content in students.items():
        folder = course / "submitted" / student / assignment
        folder.mkdir(parents=True)
        target = folder / f"{assignment}.ipynb"
        if isinstance(content, str):
            target.write_text(content)
        else:
            nbformat.write(content, target)
    start = time.perf_counter()
    result = grading.autograde(course)
    seconds = time.perf_counter() - start
    graded = len(result.scores)
    TIMINGS[f"autograde {assignment}: {graded} notebooks"] = round(seconds, 1)

    scores = {student: score for (student, _), score in result.scores.items()}
    source = nbformat.read(source_notebook(assignment), 4)
    points = {
        c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"]
        for c in grade_cells(source)
    }
    first, last = list(points)[0], list(points)[-1]
    assert scores["instructor"] == (20.0, 20.0), result
    assert scores["untouched"] == (0.0, 20.0), result
    assert scores["first_task"] == (points[first], 20.0), _grades(course, assignment, "first_task")
    assert scores["blank"] == (0.0, 20.0), "emptied test cells must be restored and fail"
    assert scores["deleted_test"] == (20.0, 20.0), "a deleted test cell is put back and graded"
    assert scores["endless_loop"] == (20.0 - points[last], 20.0), _grades(
        course, assignment, "endless_loop"
    )
    cheat = _grades(course, assignment, "reference_import")
    assert cheat[first] == 0.0, f"importing the reference must not earn {first}: {cheat}"
    assert "not_a_notebook" not in scores
    assert [p for p in result.problems if "not_a_notebook" in p], result.problems
    assert len(result.problems) == 1, result.problems  # everyone else was graded

    start = time.perf_counter()
    feedback = grading.feedback(course)
    TIMINGS[f"feedback {assignment}"] = round(time.perf_counter() - start, 1)
    assert feedback.ok, feedback.problems  # includes: no hidden test line in any page
    pages = sorted(p.parts[-3] for p in (course / "feedback").glob(f"*/{assignment}/*.html"))
    assert pages == sorted(s for s in students if s != "not_a_notebook")
    page = (course / "feedback" / "first_task" / assignment / f"{assignment}.html").read_text()
    assert "hidden tests ran here" in page and "NotImplementedError" in page
    for cell in solution_cells(source):
        answer = "".join(
            re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", cell.source, re.S)
        ).splitlines()
        for line in answer[1:]:
            if len(line.strip()) > 25 and cell is not solution_cells(source)[0]:
                assert line.strip() not in page, f"a solution line is in the feedback: {line}"

    exported = grading.grades(course)
    assert exported.ok and exported.scores[("instructor", assignment)] == (20.0, 20.0)
    header = (course / "grades.csv").read_text().splitlines()[0]
    assert header.startswith("assignment,duedate,timestamp,student_id")
