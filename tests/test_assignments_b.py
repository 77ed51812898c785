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


def test_every_task_is_named_with_its_points_and_time():
    for assignment in ASSIGNMENTS:
        cells = load(assignment)
        headings = [source(c) for c in cells if c["cell_type"] == "markdown"
                    and source(c).startswith("### Task")]
        top = points(assignment)
        assert len(headings) == len(top)
        for number, heading in enumerate(headings, start=1):
            found = re.match(r"### Task (\d+): .+ \((\d+) points?, about (\d+) minutes\)", heading)
            assert found, heading.splitlines()[0]
            assert int(found[1]) == number and int(found[2]) == top[f"test_task{number}"]
        assert re.search(r"\*\*Expected time:\*\* about \d+ minutes", source(cells[0]))


# ----------------------------------------------------------------- 04: reverse mode on tensors

ALTERNATIVE_04 = {
    "task1": '''
def add_vjp(g, a, b):
    return np.array(g, copy=True), np.array(g, copy=True)


def scale_vjp(g, alpha, x):
    return np.vdot(x, g), g * alpha
''',
    "task2": '''
def quadratic_vjp(g, A, x):
    return g * x[:, None] * x[None, :], g * (A @ x + A.T @ x)


def matvec_vjp(g, A, x):
    return np.einsum("i,j->ij", g, x), np.einsum("ij,i->j", A, g)
''',
    "task3": '''
def matmul_vjp(g, X, W):
    return np.einsum("mp,np->mn", g, W), np.einsum("mn,mp->np", X, g)
''',
    "task4": '''
def sum_vjp(g, shape, axis=None):
    out = np.zeros(shape)
    if axis is None:
        return out + g
    return out + np.expand_dims(g, axis)


def mean_vjp(g, shape, axis=None):
    n = np.prod(shape) if axis is None else shape[axis]
    return sum_vjp(np.asarray(g) / n, shape, axis)
''',
    "task5": '''
def unbroadcast(g, shape):
    g = np.asarray(g, dtype=float)
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1)
    return g.sum(axis=axes).reshape(shape)
''',
    "task6": '''
def relu_vjp(g, z):
    return np.where(z > 0, g, 0.0)


def softmax_cross_entropy(logits, labels):
    top = logits.max(axis=1, keepdims=True)
    log_total = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    rows = np.arange(len(labels))
    probabilities = np.exp(logits - log_total[:, None])
    onehot = np.zeros_like(logits)
    onehot[rows, labels] = 1.0
    return np.mean(log_total - logits[rows, labels]), (probabilities - onehot) / len(labels)
''',
    "task7": '''
def mlp_gradients(X, y, W1, b1, W2, b2):
    layers = [("first", X @ W1 + b1)]
    active = np.maximum(layers[0][1], 0)
    loss, dZ = softmax_cross_entropy(active @ W2 + b2, y)
    grads = {"b2": unbroadcast(dZ, b2.shape)}
    d_active, grads["W2"] = matmul_vjp(dZ, active, W2)
    d_pre = relu_vjp(d_active, layers[0][1])
    grads["b1"] = unbroadcast(d_pre, b1.shape)
    grads["W1"] = matmul_vjp(d_pre, X, W1)[1]
    return loss, grads
''',
}


def test_04_correct_alternative_answers_score_full():
    result = run("04_tensors", ALTERNATIVE_04)
    assert {t: p for t, p in verdicts("04_tensors", result).items() if p} == {}


CENTRAL_04 = '''
def mlp_gradients(X, y, W1, b1, W2, b2):
    params = [W1, b1, W2, b2]

    def loss(ps):
        logits = np.maximum(X @ ps[0] + ps[1], 0) @ ps[2] + ps[3]
        shifted = logits - logits.max(axis=1, keepdims=True)
        return np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(y)), y])

    grads = []
    for k, p in enumerate(params):
        g = np.zeros_like(p)
        for index in np.ndindex(p.shape):
            step = np.zeros_like(p)
            step[index] = {h}
            plus = [q + step if j == k else q for j, q in enumerate(params)]
            minus = [q - step if j == k else q for j, q in enumerate(params)]
            g[index] = (loss(plus) - loss(minus)) / (2 * {h})
        grads.append(g)
    return float(loss(params)), dict(zip(["W1", "b1", "W2", "b2"], grads))
'''

COMPLEX_STEP_04 = '''
def mlp_gradients(X, y, W1, b1, W2, b2):
    params = [W1, b1, W2, b2]

    def loss(ps):
        logits = np.maximum(X @ ps[0] + ps[1], 0) @ ps[2] + ps[3]
        shifted = logits - logits.max(axis=1, keepdims=True)
        return np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(y)), y])

    grads = []
    for k, p in enumerate(params):
        g = np.zeros(p.shape)
        for index in np.ndindex(p.shape):
            step = np.zeros(p.shape, dtype=complex)
            step[index] = 1e-30j
            g[index] = loss([q + step if j == k else q for j, q in enumerate(params)]).imag / 1e-30
        grads.append(g)
    return float(loss(params).real), dict(zip(["W1", "b1", "W2", "b2"], grads))
'''


@pytest.mark.parametrize("answer", [CENTRAL_04.replace("{h}", "1e-6"),
                                    CENTRAL_04.replace("{h}", "1e-4"), COMPLEX_STEP_04],
                         ids=["central 1e-6", "central 1e-4", "complex step"])
def test_04_difference_quotients_lose_task_7_only(answer):
    result = run("04_tensors", {"task7": answer})
    problems = verdicts("04_tensors", result)
    assert problems["test_task7"], "a gradient by differences must not pass task 7"
    assert not any(p for t, p in problems.items() if t != "test_task7")


def test_04_task7_is_graded_with_reference_vjps_and_names_the_culprit():
    wrong_relu = 'def relu_vjp(g, z):\n    return g * (z >= 0)\n\n\n' + \
        source(load("04_tensors")[[grade_id(c) for c in load("04_tensors")].index("task6")]) \
        .split("def softmax_cross_entropy", 1)[1].join(["def softmax_cross_entropy", ""])
    result = run("04_tensors", {"task6": wrong_relu})
    problems = verdicts("04_tensors", result)
    assert problems["test_task6"] and "kink" in problems["test_task6"]
    # the hidden part of task 7 runs on the reference VJPs; the visible part names the culprits
    cells = {grade_id(c): source(c) for c in load("04_tensors")}
    assert "tasks 3, 5 and 6" in "".join(source(c) for c in load("04_tensors")
                                          if c["cell_type"] == "markdown")
    assert "_reference_relu_vjp" in cells["test_task7"]


def test_04_visible_failure_is_a_readable_message():
    namespace: dict[str, Any] = {}
    cells = [c for c in load("04_tensors") if c["cell_type"] == "code"]
    exec(source(cells[0]).replace("%matplotlib inline", ""), namespace)
    exec("def matmul_vjp(g, X, W):\n    return -(g @ W.T), X.T @ g", namespace)
    visible = source(next(c for c in cells if grade_id(c) == "test_task3")).split(
        "### BEGIN HIDDEN")[0]
    with pytest.raises(Exception) as error:
        exec(visible, namespace)
    assert str(error.value) == "X̄ for Z = XW: 4 of 6 entries differ; at index (0, 0) expected 2, got -2"
    assert "np.float64" not in str(error.value)


def test_04_random_directions_are_random_and_agree():
    printed = reference("04_tensors")["_printed"]["random_directions"]
    rows = re.findall(r"⟨X̄, V⟩ = ([-+.\d]+), central difference ([-+.\d]+)", printed)
    assert len(rows) == 3
    assert all(abs(float(a) - float(b)) < 1e-7 * max(1, abs(float(a))) for a, b in rows)
    assert "random" in source(next(c for c in load("04_tensors") if grade_id(c) == "random_directions"))
