"""Issue 11, item 22: every task is named with its points and its expected time, and every time
comes from one method, computed by course_ad.workload from the notebook itself."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from course_ad import workload
from course_ad.cli import main

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = sorted(path.name for path in (ROOT / "source").iterdir() if path.is_dir())
HEADING = re.compile(r"### Task (\d+): (.+) \((\d+) points?, about (\d+) minutes\)")
REFRESH = "refresh it with `python -m course_ad workload {} --write`"


def markdown(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def code(text: str, **nbgrader) -> dict:
    return {"cell_type": "code", "metadata": {"nbgrader": nbgrader} if nbgrader else {},
            "source": text}


TINY = {"cells": [
    markdown("# Tiny\n\nRead these five words.\n\n**Points:** 3 · **Expected time:** about 99 "
             "minutes, with many words that are not counted at all."),
    code("import numpy as np", grade_id="setup"),
    markdown("## 1. First\n\nSix words of a section text."),
    markdown("### Task 1: one (1 point, about 5 minutes)\n\nWrite f | --- |"),
    code("def f(x):\n    ### BEGIN SOLUTION\n    # a comment\n\n    y = x\n    return y\n"
         "    ### END SOLUTION", grade_id="task1", solution=True),
    code("check('f', f(1), 1)", grade_id="test_task1", grade=True, points=1),
    markdown("A given remark of six words.\n\n## 2. Second\n\nThree more words."),
    markdown("### Task 2: two (2 points, about 5 minutes)"),
    code("### BEGIN SOLUTION\n" + "z = 1\n" * 30 + "### END SOLUTION\n"
         "### BEGIN SOLUTION\nw = 2\n### END SOLUTION", grade_id="task2", solution=True),
    code("check('z', z, 1)", grade_id="test_task2", grade=True, points=2),
    markdown("Closing: four words here."),
]}


def test_counting_on_a_tiny_notebook():
    measured = workload.measure(TINY, "tiny")
    first, second = measured.tasks
    # task 1: its section "1. First Six words of a section text." (8; "##" is not a word) and
    # its heading cell "Task 1: one (1 point, about 5 minutes) Write f" (10; "|", "---" neither)
    assert (first.name, first.points, first.words, first.answer_lines) == ("Task 1: one", 1, 18, 2)
    # task 2: from its section heading on (the remark before it is outside), 31 answer lines
    assert (second.name, second.points, second.words, second.answer_lines) == (
        "Task 2: two", 2, 5 + 8, 31)
    # outside: "Tiny Read these five words." (the Points paragraph left out), the remark
    # before section 2, the closing
    assert (measured.other.points, measured.other.words, measured.other.answer_lines) == (
        0, 5 + 6 + 4, 0)
    # 3 x (18/200 + 2/3) = 2.3 -> 5; 3 x (13/200 + 31/3) = 31.2 -> 35; 3 x 15/200 = 0.2 -> 5
    assert [task.minutes for task in measured.tasks] == [5, 35]
    assert measured.other.minutes == 5 and measured.total_minutes == 45


def test_refresh_writes_the_headings_and_header_and_is_stable(tmp_path):
    path = tmp_path / "tiny.ipynb"
    path.write_text(json.dumps(TINY))
    first = workload.refresh(path)
    text = path.read_text()
    assert "### Task 2: two (2 points, about 35 minutes)" in text
    assert "**Expected time:** about 45 minutes" in text and "99 minutes" not in text
    assert workload.refresh(path) == first and path.read_text() == text


def test_a_task_without_a_graded_test_is_refused():
    broken = {"cells": [markdown("### Task 1: alone (1 point, about 5 minutes)"),
                        markdown("### Task 2: next (1 point, about 5 minutes)"),
                        code("check(1)", grade=True, points=1)]}
    with pytest.raises(ValueError, match="'### Task 1: alone .*' has no graded test cell"):
        workload.measure(broken, "broken")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_heading_and_header_states_the_measured_workload(assignment):
    path = ROOT / "source" / assignment / f"{assignment}.ipynb"
    measured = workload.measure(path)
    cells = json.loads(path.read_text())["cells"]
    texts = ["".join(cell["source"]) for cell in cells]
    headings = [HEADING.match(text) for cell, text in zip(cells, texts)
                if cell["cell_type"] == "markdown" and "### Task" in text]
    assert all(headings), [text.splitlines()[0] for text in texts if "### Task" in text]
    graded = [int(cell["metadata"]["nbgrader"]["points"]) for cell in cells
              if cell["metadata"].get("nbgrader", {}).get("grade")]
    assert [int(h[1]) for h in headings] == list(range(1, len(headings) + 1))
    assert [int(h[3]) for h in headings] == graded and sum(graded) == 20
    assert [(int(h[3]), int(h[4])) for h in headings] == [
        (task.points, task.minutes) for task in measured.tasks], REFRESH.format(assignment)
    header = " ".join(texts[0].split())
    total = re.search(r"\*\*Points:\*\* 20 · \*\*Expected time:\*\* about (\d+) minutes", header)
    assert total and int(total[1]) == measured.total_minutes, REFRESH.format(assignment)
    assert total[1] == str(sum(task.minutes for task in measured.tasks) + measured.other.minutes)
    words, lines = re.search(r"about ([\d,]+) words to read and (\d+) lines of answer code",
                             header).groups()
    assert abs(int(words.replace(",", "")) - measured.words) <= 50, REFRESH.format(assignment)
    assert abs(int(lines) - measured.answer_lines) <= 5, REFRESH.format(assignment)
    assert "at 200 words and 3 lines a minute, times 3 for a first-time student" in header
    assert "the two rates and the factor 3 are assumptions, not measured on students" in header
    assert "with every visible test passing" in header
    for wording in ("estimate", "automated assistant", "60 times", "K = 60"):
        assert wording not in header


def test_the_command_prints_the_table_and_the_header(capsys):
    assert main(["workload", "07_how_ad_is_built", "--root", str(ROOT)]) == 0
    printed = capsys.readouterr().out
    measured = workload.measure(ROOT / "source" / "07_how_ad_is_built" / "07_how_ad_is_built.ipynb")
    assert f"| total | 20 | {measured.words:,} | {measured.answer_lines} | " \
           f"{measured.total_minutes} |" in printed
    assert workload.header_paragraph(measured) in printed
    assert main(["workload", "no_such_assignment", "--root", str(ROOT)]) == 2
    assert "name an assignment folder of source/" in capsys.readouterr().err
