"""The trusted path on a two-task assignment made here: assembly, recording, judging, limits.

Small and fast; the real course and the adversarial class are graded in test_course.py and
test_adversarial.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_ad.grading import sandbox as sandbox_module
from course_ad.grading.compare import decode, encode, show
from course_ad.grading.runner import assemble, split_hidden
from course_ad.grading.sandbox import Limits, Sandbox
from course_ad.grading.trusted import grade_notebook, record_references

needs_sandbox = pytest.mark.skipif(bool(sandbox_module.unavailable_reason()),
                                   reason=sandbox_module.unavailable_reason() or "")

SQUARE = "def square(x):\n    return x * x"
DSIN = "def dsin(x):\n    return np.cos(x)"
TEST1 = ('check("square(3)", square(3.0), 9.0)\n### BEGIN HIDDEN TESTS\n'
         'check("square(-2)", square(-2.0))\ncheck("square of an array", square(np.arange(3.0)))'
         '\n### END HIDDEN TESTS')
TEST2 = ('check("dsin(1)", dsin(1.0), np.cos(1.0))\n### BEGIN HIDDEN TESTS\n'
         'check("dsin(0.3), exactly", dsin(0.3), rtol=1e-13, atol=0)\n### END HIDDEN TESTS')


def meta(kind: str, grade_id: str, points: float = 0) -> dict:
    data = {"grade": kind == "test", "grade_id": grade_id, "locked": kind in ("given", "test"),
            "schema_version": 3, "solution": kind == "answer"}
    if kind == "test":
        data["points"] = points
    return {"nbgrader": data}


def notebook(answer1: str = SQUARE, answer2: str = DSIN, test1: str = TEST1,
             test2: str = TEST2):
    cells = [
        new_code_cell("import numpy as np\nfrom course_ad.grading import check",
                      metadata=meta("given", "setup")),
        new_markdown_cell("### Task 1 (2 points)"),
        new_code_cell(answer1, metadata=meta("answer", "task1")),
        new_code_cell(test1, metadata=meta("test", "test_task1", 2)),
        new_code_cell(answer2, metadata=meta("answer", "task2")),
        new_code_cell(test2, metadata=meta("test", "test_task2", 3)),
    ]
    return new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})


@pytest.fixture
def course(tmp_path):
    (tmp_path / "source" / "mini").mkdir(parents=True)
    nbformat.write(notebook(), tmp_path / "source" / "mini" / "mini.ipynb")
    return tmp_path


def submit(course: Path, name: str, content) -> Path:
    path = course / f"{name}.ipynb"
    if isinstance(content, str):
        path.write_text(content)
    else:
        nbformat.write(content, path)
    return path


def as_dict(nb) -> dict:
    return json.loads(nbformat.writes(nb))


def test_assembly_takes_tests_from_source_and_answers_from_the_submission():
    source = as_dict(notebook())
    student = notebook(answer1="def square(x):\n    return 4.0", test1="pass  # edited")
    student.cells.insert(3, new_code_cell("helper = 1"))  # a cell of the student's own
    student.cells.insert(3, nbformat.from_dict(json.loads(json.dumps(student.cells[2]))))
    student.cells[7].metadata["nbgrader"]["points"] = 100  # tampered metadata, ignored
    del student.cells[5]  # the test cell of task 1
    cells = assemble(source, as_dict(student))
    kinds = [(c.kind, c.id) for c in cells]
    assert kinds == [("given", "setup"), ("markdown", ""), ("answer", "task1"),
                     ("student", ""), ("test", "test_task1"), ("answer", "task2"),
                     ("test", "test_task2")]
    assert cells[2].source == "def square(x):\n    return 4.0\n\ndef square(x):\n    return 4.0"
    assert "BEGIN HIDDEN" not in cells[4].source and 'check("square(-2)"' in cells[4].hidden
    assert cells[4].points == 2.0 and cells[6].points == 3.0


def test_split_hidden_keeps_the_visible_lines():
    visible, hidden = split_hidden(TEST1)
    assert visible == 'check("square(3)", square(3.0), 9.0)'
    assert hidden.splitlines()[0] == 'check("square(-2)", square(-2.0))'


def test_values_travel_out_of_the_sandbox_and_back():
    import numpy as np

    value = (1, np.array([[1.0, np.nan]]), [np.float64(2.5), {"k": True}], None, float("inf"))
    back = decode(json.loads(json.dumps(encode(value))))
    assert back[0] == 1 and back[2][1] == {"k": True} and back[4] == float("inf")
    assert np.isnan(back[1][0, 1]) and back[1].shape == (1, 2)

    class Opaque:
        pass

    assert show(decode(encode(Opaque()))) == "an object of type Opaque"
    assert show(np.float64(0.14112000805986721)) == "0.14112"


@needs_sandbox
def test_record_refuses_tests_that_could_be_forged(course):
    leaky = TEST1.replace('check("square(-2)", square(-2.0))',
                          'check("square(-2)", square(-2.0), 4.0)')
    no_hidden = 'check("square(3)", square(3.0), 9.0)\n### BEGIN HIDDEN TESTS\n' \
                'assert square(1.0) == 1.0\n### END HIDDEN TESTS'
    nb = notebook(test1=leaky, test2=no_hidden)
    nb.cells.append(new_code_cell("x = 1"))  # unmarked: would be taken for student code
    nbformat.write(nb, course / "source" / "mini" / "mini.ipynb")
    problems = record_references(course, "mini", Sandbox(Limits(cell_seconds=20)))
    text = "\n".join(problems)
    assert "hidden check 'square(-2)' passes expected=" in text
    assert "test_task2: a test cell needs at least one hidden check()" in text
    assert "code cell 6 has no nbgrader metadata" in text
    assert not (course / "references" / "mini.json").exists()


@needs_sandbox
def test_honest_wrong_forged_and_slow_answers(course):
    box = Sandbox(Limits(cell_seconds=4))
    assert record_references(course, "mini", box) == []
    stored = json.loads((course / "references" / "mini.json").read_text())
    assert [c["what"] for c in stored["checks"]["test_task1"]] == [
        "square(3)", "square(-2)", "square of an array"]

    def grade(name, content):
        return grade_notebook(course, "mini", submit(course, name, content), box)

    honest = grade("honest", notebook())
    assert (honest.score, honest.max_score) == (5.0, 5.0)
    wrong = grade("wrong", notebook(answer1="def square(x):\n    return 2 * x"))
    assert wrong.score == 3.0
    messages = wrong.cells[3]["verdict"]["messages"]
    assert messages == ["square(3): expected 9, got 6", "square(-2): expected 4, got -4",
                        "square of an array: 1 of 3 entries differ; at index (1,) expected 1,"
                        " got 2"]
    difference = "def dsin(x, h=1e-6):\n    return (np.sin(x + h) - np.sin(x - h)) / (2 * h)"
    assert grade("difference", notebook(answer2=difference)).score == 2.0
    forged = ("import course_ad.grading.checks as c\nreal = c._SINK.emit\n"
              "c._SINK.emit = lambda w, h, g, e, r, a, x: real(w, h, e, e, r, a, x)\n")
    assert grade("forged", notebook(answer1=forged, answer2=forged)).score == 0.0
    slow = grade("slow", notebook(answer2=DSIN + "\nwhile True:\n    pass"))
    assert slow.score == 2.0
    assert slow.cells[4]["stopped"] == "cell 'task2' was stopped after 4 s (the time limit)"
    assert "did not finish" in slow.cells[5]["verdict"]["messages"][0]


def test_unsandboxed_only_when_asked(course, monkeypatch):
    monkeypatch.setattr(sandbox_module, "unavailable_reason", lambda: "bwrap is missing")
    box = Sandbox(Limits(cell_seconds=20), allow_unsandboxed=True)
    assert record_references(course, "mini", box) == []
    graded = grade_notebook(course, "mini", submit(course, "honest", notebook()), box)
    assert graded.score == 5.0 and graded.sandbox.startswith("UNSANDBOXED (bwrap is missing)")
