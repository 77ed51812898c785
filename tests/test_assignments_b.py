"""Assignments 04-06 under trusted grading: the reference scores full marks, the untouched
release scores zero, correct alternative answers score full, answers that dodge the task
(difference quotients, the complex step, a library) lose it, and the course-v2 fixes hold.

The notebooks are run in this process the way the judge sees them: every test cell's checks
are recorded (``checks.Recorder``) and compared with the reference solution's recorded values
by the same ``compare`` the judge uses. A task scores its points when its test cell raised
nothing and every check the reference recorded arrived and matched.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest

from course_ad.grading import checks
from course_ad.grading.compare import compare, decode

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parent.parent
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"


def load(assignment: str, folder: str = "source") -> list[dict[str, Any]]:
    return json.loads((ROOT / folder / assignment / f"{assignment}.ipynb").read_text())["cells"]


def grade_id(cell: dict[str, Any]) -> str:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")


def source(cell: dict[str, Any]) -> str:
    return "".join(cell["source"])


def released(text: str) -> str:
    """An answer cell as nbgrader releases it: each solution block becomes the stub."""
    return re.sub(r"( *)### BEGIN SOLUTION\n.*?### END SOLUTION",
                  lambda m: "\n".join(m.group(1) + line for line in STUB.splitlines()),
                  text, flags=re.S)


def run(assignment: str, answers: dict[str, str] | None = None, *,
        release: bool = False) -> dict[str, Any]:
    """Execute the notebook (answers replaced by grade id, or all released) and record checks.

    Returns {test grade id: (list of check events, error name or '')} and the namespace."""
    answers = answers or {}
    namespace: dict[str, Any] = {"__name__": "__main__"}
    results: dict[str, Any] = {}
    events: list[dict[str, Any]] = []
    recorder = checks.Recorder(events.append)
    saved = checks._SINK
    checks._SINK = recorder
    try:
        for cell in load(assignment):
            if cell["cell_type"] != "code":
                continue
            meta = cell["metadata"]["nbgrader"]
            code = source(cell)
            if meta.get("solution"):
                code = answers.get(meta["grade_id"], released(code) if release else code)
            code = "\n".join(line for line in code.splitlines()
                             if not line.lstrip().startswith("%"))
            events.clear()
            recorder.begin(meta["grade_id"])
            error = ""
            try:
                with contextlib.redirect_stdout(io.StringIO()) as out:
                    exec(compile(code, meta["grade_id"], "exec"), namespace)
            except Exception as exc:  # noqa: BLE001 - a failing cell is a result
                error = f"{type(exc).__name__}: {exc}"
            if meta.get("grade"):
                results[meta["grade_id"]] = (list(events), error)
            results.setdefault("_printed", {})[meta["grade_id"]] = out.getvalue() if not error \
                else ""
    finally:
        checks._SINK = saved
        matplotlib.pyplot.close("all")
    results["_namespace"] = namespace
    return results


_REFERENCES: dict[str, dict[str, Any]] = {}


def reference(assignment: str) -> dict[str, Any]:
    if assignment not in _REFERENCES:
        _REFERENCES[assignment] = run(assignment)
    return _REFERENCES[assignment]


def verdicts(assignment: str, result: dict[str, Any]) -> dict[str, str]:
    """'' for each test cell that passes against the reference, else why it fails."""
    ref = reference(assignment)
    out = {}
    for test, outcome in ref.items():
        if test.startswith("_"):
            continue
        want_events, want_error = outcome
        assert not want_error, f"the reference fails {test}: {want_error}"
        got_events, error = result[test]
        if error:
            out[test] = error
            continue
        got = {(e["what"], e["n"]): e for e in got_events}
        problem = ""
        for want in want_events:
            key = (want["what"], want["n"])
            if key not in got:
                problem = f"missing check {key}"
                break
            context = decode(want["context"])
            problem = compare(want["how"], want["what"], decode(got[key]["got"]),
                              decode(want["got"]), rtol=want["rtol"], atol=want["atol"],
                              context=context)
            if problem:
                break
        out[test] = problem
    return out


def points(assignment: str) -> dict[str, int]:
    return {grade_id(c): c["metadata"]["nbgrader"]["points"] for c in load(assignment)
            if c.get("metadata", {}).get("nbgrader", {}).get("grade")}


def score(assignment: str, result: dict[str, Any]) -> int:
    top = points(assignment)
    return sum(top[t] for t, problem in verdicts(assignment, result).items() if not problem)


ASSIGNMENTS = ["04_tensors", "05_mlp", "06_cost_of_modes"]


# ----------------------------------------------------------------- the notebooks' shape


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_code_cell_is_answer_test_or_given_and_imports_no_engine(assignment):
    for cell in load(assignment):
        if cell["cell_type"] != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader")
        assert meta and meta.get("grade_id"), f"unmarked code cell: {source(cell)[:60]}"
        kinds = (meta.get("solution"), meta.get("grade"), meta.get("locked"))
        assert kinds in [(True, False, False), (False, True, False), (False, False, True)], meta
        for line in source(cell).splitlines():
            if "import" in line and "course_ad" in line:
                assert re.search(r"course_ad\.(grading|data|viz)\b|from course_ad import "
                                 r"(data|viz)\b", line), line
        assert not cell.get("outputs"), f"outputs left in {grade_id(cell)}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_twenty_points_and_release_matches_source(assignment):
    assert sum(points(assignment).values()) == 20
    release = load(assignment, "release")
    assert [grade_id(c) for c in release] == [grade_id(c) for c in load(assignment)]
    text = json.dumps(release)
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    assert not re.search(r"seed ?0\d\d|seed notebook|seed00", text, flags=re.I)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_reference_scores_full_and_release_scores_zero(assignment):
    assert score(assignment, reference(assignment)) == 20
    empty = run(assignment, release=True)
    assert verdicts(assignment, empty) and all(verdicts(assignment, empty).values())
    assert score(assignment, empty) == 0
