"""Assignments 1-3 (numerical and symbolic, forward mode, reverse mode) as students meet them.

Each notebook runs here cell by cell in one namespace, the way the grading sandbox runs it
(a test's visible and hidden parts apart, every ``check`` recorded as it would be sent out),
with some answers replaced, and is judged as the trusted judge does: against the values the
reference solution sent. Correct alternatives must earn full marks, answers that approximate
where the task asks for exact derivatives (difference quotients, the complex step) must fail,
and a slip in one task must not fail the tasks built on it. (The sandbox itself is tested in
tests/test_sandbox.py and tests/test_trusted.py; `python -m course_ad try` runs these
notebooks through it.)
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import re
from pathlib import Path

import matplotlib
import nbformat
import numpy as np
import pytest

from course_ad.grading import checks
from course_ad.grading import sandbox as sandbox_module
from course_ad.grading.compare import compare, decode

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parent.parent
MINE = ["01_numerical_symbolic", "02_forward_mode", "03_reverse_mode"]
ALLOWED_IMPORTS = ("course_ad.grading", "course_ad.data", "course_ad.viz")
HIDDEN = "### BEGIN HIDDEN TESTS"


def notebook(assignment: str, where: str = "source") -> nbformat.NotebookNode:
    return nbformat.read(ROOT / where / assignment / f"{assignment}.ipynb", 4)


def grade_id(cell) -> str:
    return cell.metadata.get("nbgrader", {}).get("grade_id", "")


def run(assignment: str, where: str = "source", replace: dict[str, str] | None = None,
        edits: dict[str, list[tuple[str, str]]] | None = None) -> dict[str, Outcome]:
    """Run every code cell in order, each test's visible and hidden part apart, recording
    every check the way the grading sandbox sends it out.

    ``replace`` swaps whole cells by grade id, ``edits`` replaces text inside them (each
    edit must apply, so a test cannot silently run the reference instead)."""
    namespace: dict = {"__name__": "__main__"}
    events: list[dict] = []
    recorder = checks.Recorder(events.append)
    outcomes: dict[str, Outcome] = {}
    saved, checks._SINK = checks._SINK, recorder
    try:
        for cell in notebook(assignment, where).cells:
            if cell.cell_type != "code":
                continue
            name = grade_id(cell)
            source = (replace or {}).get(name, cell.source)
            for old, new in (edits or {}).get(name, []):
                assert old in source, f"the edit does not apply to {name}: {old!r}"
                source = source.replace(old, new)
            is_test = cell.metadata.get("nbgrader", {}).get("grade")
            parts = source.split(HIDDEN) if is_test and HIDDEN in source else [source]
            errors = []
            for part, code in zip(("visible", "hidden"), parts):
                recorder.begin(name, part)
                events.clear()
                try:
                    exec(compile(code, name, "exec"), namespace)  # noqa: S102 - the cells
                except Exception as error:  # noqa: BLE001 - a failing cell is what we look at
                    errors.append(f"{type(error).__name__}: {error}")
                if is_test:
                    outcomes.setdefault(name, Outcome()).checks += list(events)
            if is_test:
                outcomes[name].errors = errors
    finally:
        checks._SINK = saved
    return outcomes


class Outcome:
    """A test cell's run: the errors it raised and the checks it sent."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.checks: list[dict] = []


def judged(assignment: str, outcomes: dict[str, Outcome]) -> dict[str, str]:
    """Each test cell's verdict as the judge makes it: '' when it passed, else its messages.

    Every check the reference solution sent must arrive and match the reference's value
    under the recorded comparison, and the cell must raise nothing."""
    if assignment not in REFERENCE_RUNS:
        REFERENCE_RUNS[assignment] = run(assignment)
    reference = REFERENCE_RUNS[assignment]
    verdicts = {}
    for name, outcome in outcomes.items():
        sent = {(c["what"], c["n"]): c for c in outcome.checks}
        messages = list(outcome.errors)
        for want in reference[name].checks:
            got = sent.get((want["what"], want["n"]))
            if got is None:
                messages.append(f"{want['what']}: this check was not reached")
                continue
            problem = compare(want["how"], want["what"], decode(got["got"]),
                              decode(want["got"]), rtol=want["rtol"], atol=want["atol"],
                              context=decode(want["context"]))
            if problem:
                messages.append(problem)
        verdicts[name] = "\n".join(messages)
    return verdicts


def grade(assignment: str, where: str = "source", **changes) -> dict[str, str]:
    return judged(assignment, run(assignment, where, **changes))


def failed(results: dict[str, str]) -> list[str]:
    return sorted(name for name, outcome in results.items() if outcome)


REFERENCE_RUNS: dict[str, dict[str, Outcome]] = {}


@pytest.fixture(scope="module")
def reference_runs() -> dict[str, dict[str, str]]:
    return {assignment: grade(assignment) for assignment in MINE}


# --------------------------------------------------------------------------------------
# The rules of trusted grading (docs/authoring.md)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("assignment", MINE)
def test_instructor_version_passes_every_test(assignment, reference_runs):
    results = reference_runs[assignment]
    assert len(results) == 6
    assert failed(results) == [], results


@pytest.mark.parametrize("assignment", MINE)
def test_untouched_release_fails_every_test(assignment):
    results = grade(assignment, where="release")
    assert len(results) == 6
    assert failed(results) == sorted(results), results


@pytest.mark.parametrize("assignment", MINE)
def test_every_code_cell_is_an_answer_a_test_or_a_locked_given_cell(assignment):
    for cell in notebook(assignment).cells:
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader")
        assert meta and meta.get("grade_id"), f"a code cell without metadata:\n{cell.source}"
        kinds = (meta.get("solution"), meta.get("grade"), meta.get("locked"))
        assert kinds in [(True, False, False), (False, True, False), (False, False, True)], meta
        assert "%" not in "".join(line[:1] for line in cell.source.splitlines()), "no magics"


@pytest.mark.parametrize("assignment", MINE)
def test_cells_import_nothing_from_the_engine(assignment):
    for cell in notebook(assignment).cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [f"{node.module}.{a.name}" for a in node.names]
                     if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if name.startswith("course_ad"):
                    assert name.startswith(ALLOWED_IMPORTS), f"{grade_id(cell)} imports {name}"
                assert name.split(".")[0] not in ("autograd", "torch", "jax", "sympy"), name


@pytest.mark.parametrize("assignment", MINE)
def test_tests_state_facts_with_check_not_assert(assignment):
    for cell in notebook(assignment).cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            visible = re.sub(r"### BEGIN HIDDEN TESTS.*", "", cell.source, flags=re.S)
            assert "check(" in visible, f"{grade_id(cell)} has no visible check"
            assert not re.search(r"^\s*assert\b", cell.source, flags=re.M), grade_id(cell)
            assert "course_ad" not in cell.source
            hidden = cell.source.split(HIDDEN)[1]
            for call in ast.walk(ast.parse(hidden)):
                if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "check":
                    keywords = {k.arg: k for k in call.keywords}
                    compares = not ({"at_most", "at_least"} & set(keywords)) and not (
                        "how" in keywords and keywords["how"].value.value == "order")
                    assert not compares or (len(call.args) == 2 and "expected" not in keywords), (
                        f"{grade_id(cell)}: a hidden check shows its expected value")


@pytest.mark.parametrize("assignment", MINE)
def test_students_see_no_internal_jargon(assignment):
    """Issue 11, item 11: students have lecture notes, not seeds."""
    text = (ROOT / "release" / assignment / f"{assignment}.ipynb").read_text()
    assert not re.search(r"seed", text, flags=re.I)


# --------------------------------------------------------------------------------------
# Assignment 1
# --------------------------------------------------------------------------------------


def test_01_numerical_gradient_is_tested_on_vectors_so_indexing_x_i_is_right():
    """Issue 11, item 12: a scalar function of a vector, tested with vectors."""
    alternative = """
def numerical_gradient(f, x, h=1e-6):
    x = np.asarray(x, dtype=float)
    base = f(x)
    return np.array([(f(x + h * np.eye(len(x))[i]) - base) / h for i in range(len(x))])
"""
    results = grade("01_numerical_symbolic", replace={"task3": alternative})
    assert failed(results) == []


def test_01_a_gradient_from_central_differences_costs_too_many_calls():
    central = """
def numerical_gradient(f, x, h=1e-6):
    x = np.asarray(x, dtype=float)
    return np.array([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(len(x))])
"""
    results = grade("01_numerical_symbolic", replace={"task3": central})
    assert failed(results) == ["test_task3"]
    assert "evaluations of f for a gradient in 5 variables: expected 6, got 10" in results[
        "test_task3"]


def test_01_task_1_asks_to_derive_the_central_difference_not_to_copy_it():
    """Issue 11, item 22: no task transcribes a formula shown just above it."""
    cells = notebook("01_numerical_symbolic").cells
    above = "\n".join(c.source for c in cells[:5] if c.cell_type == "markdown")
    assert "{2h}" not in above and "\\log_{10}" not in above
    assert "derive it on paper" in above
    visible = next(c.source for c in cells if grade_id(c) == "test_task1").split(HIDDEN)[0]
    assert "np.sin(0.999)" not in visible and "np.cos(1.0)" in visible


def test_01_quotients_over_the_step_actually_taken_earn_full_marks():
    """(x + h) - x is the step a computer really takes; dividing by it is a correct (and
    sometimes better) quotient, so the tests must not tell it from dividing by h."""
    alternative = """
def forward_difference(f, x, h=1e-6):
    return (f(x + h) - f(x)) / ((x + h) - x)


def central_difference(f, x, h=1e-6):
    return (f(x + h) - f(x - h)) / ((x + h) - (x - h))


def observed_order(quotient, f, dfdx, x, h):
    errors = [abs(quotient(f, x, step) - dfdx(x)) for step in (h, h / 10)]
    return np.log(errors[0] / errors[1]) / np.log(10)
"""
    assert failed(grade("01_numerical_symbolic", replace={"task1": alternative})) == []


def test_01_total_cancellation_is_taught_with_the_notes_example():
    """Issue 11, item 2: the quotient is 0.0 at h = √ε, not a wrong sign; 3.3, not 33.3."""
    text = "\n".join(c.source for c in notebook("01_numerical_symbolic").cells)
    assert "gets the sign wrong" not in text and "not even have the right sign" not in text
    assert "**0.0**" in text and "total cancellation" in text and "3.3" in text
    namespace: dict = {"__name__": "__main__"}
    for cell in notebook("01_numerical_symbolic").cells:
        if cell.cell_type == "code" and grade_id(cell) in ("setup", "given_notes_example",
                                                           "task4"):
            exec(cell.source, namespace)  # noqa: S102
    assert namespace["estimates"][0] == 0.0
    assert namespace["estimates"][1] == pytest.approx(1.79, abs=0.01)
    assert namespace["estimates"][2] == pytest.approx(2.0003, abs=1e-4)
    assert namespace["gap"] == 2.0**-24


def test_01_best_step_is_not_charged_for_a_slip_in_task_1():
    """Issue 11, item 13: best_step runs with reference quotients in its hidden test."""
    wrong = [("return (f(x + h) - f(x - h)) / (2 * h)", "return (f(x + h) - f(x - h)) / h")]
    results = grade("01_numerical_symbolic", edits={"task1": wrong})
    assert failed(results) == ["test_task1"]


# --------------------------------------------------------------------------------------
# Assignment 2
# --------------------------------------------------------------------------------------


def test_02_trace_table_follows_the_task_order_with_exact_numbers():
    """Issue 11, items 7 and 8: v2 = sin, v3 = exp as in task 4; 2.0166, and why not 2.0167."""
    cells = notebook("02_forward_mode").cells
    table = next(c.source for c in cells if "| $i$ | $v_i$ |" in c.source)
    rows = re.findall(r"^\| (\d) \| (.*?) \| (-?[\d.]+) \| (−?[\d.]+) \|$", table, flags=re.M)
    assert [r[0] for r in rows] == list("123456")
    assert "sin" in rows[1][1] and "exp" in rows[2][1]
    q, e = 3.0, np.exp(0.5)
    values = [q, np.sin(q), e, q - e, np.sin(q) + q - e, (np.sin(q) + q - e) * (q - e)]
    tangents = [2.0, 2 * np.cos(q), 0.0, 2.0, 2 * np.cos(q) + 2, 0.0]
    tangents[5] = tangents[4] * values[3] + values[4] * tangents[3]
    assert [float(r[2]) for r in rows] == [round(v, 4) for v in values]
    assert [float(r[3].replace("−", "-")) for r in rows] == [round(t, 4) + 0.0 for t in tangents]
    assert "2.016647" in table and "rounded" in table
    test4 = next(c.source for c in cells if grade_id(c) == "test_task4")
    assert "printed" not in test4 and "2.0167" in test4 and "2.0166" in test4


def test_02_the_notes_rounded_numbers_do_not_pass_as_the_trace():
    notes = """
def lecture_trace(x1, x2, dx1, dx2):
    return [(3.0, 2.0), (0.1411, -1.98), (1.6487, 0.0), (1.3513, 2.0), (1.4924, 0.02),
            (2.0167, 3.0118)]
"""
    results = grade("02_forward_mode", replace={"task4": notes})
    assert failed(results) == ["test_task4"]
    assert "v6 exactly (not the notes' 2.0167" in results["test_task4"]
    assert "expected 2.01665, got 2.0167" in results["test_task4"]


def test_02_a_trace_in_the_old_order_fails_with_a_readable_message():
    swapped = [("(v1, dv1), (v2, dv2), (v3, dv3)", "(v1, dv1), (v3, dv3), (v2, dv2)")]
    results = grade("02_forward_mode", edits={"task4": swapped})
    assert failed(results) == ["test_task4"]
    message = results["test_task4"]
    assert "v1..v6 against the table above" in message and "np.float64" not in message
    assert "at index (1,) expected 0.14112, got 1.64872" in message


def test_02_correct_alternative_dual_earns_full_marks():
    alternative = '''
class Dual:
    def __init__(self, value, tangent=0.0):
        self.value = value
        self.tangent = tangent

    def __repr__(self):
        return f"Dual({self.value}, {self.tangent})"

    def __add__(self, other):
        if not isinstance(other, Dual):
            return Dual(self.value + other, self.tangent)
        return Dual(self.value + other.value, self.tangent + other.tangent)

    def __radd__(self, other):
        return self + other

    def __sub__(self, other):
        if not isinstance(other, Dual):
            return Dual(self.value - other, self.tangent)
        return Dual(self.value - other.value, self.tangent - other.tangent)

    def __rsub__(self, other):
        return Dual(other - self.value, -self.tangent)

    def __mul__(self, other):
        if not isinstance(other, Dual):
            return Dual(self.value * other, self.tangent * other)
        return Dual(self.value * other.value,
                    self.tangent * other.value + self.value * other.tangent)

    def __rmul__(self, other):
        return self * other

    def __neg__(self):
        return -1 * self

    def __truediv__(self, other):
        if not isinstance(other, Dual):
            return Dual(self.value / other, self.tangent / other)
        return Dual(self.value / other.value,
                    (self.tangent * other.value - self.value * other.tangent) / other.value**2)

    def __rtruediv__(self, other):
        return Dual(other) / self
'''
    results = grade("02_forward_mode", replace={"task1": alternative})
    assert failed(results) == []


def test_02_difference_quotients_and_the_complex_step_fail_the_forward_mode_tasks():
    """Issue 8, item 3: where forward mode is asked for, approximations fail."""
    finite = [("v = np.exp(u)\n    return v, v * du",
               "v = np.exp(u)\n    return v, (np.exp(u + 1e-6) - np.exp(u - 1e-6)) / 2e-6 * du")]
    assert failed(grade("02_forward_mode", edits={"task2": finite})) == ["test_task2"]
    forward_differences = """
def gradient_by_forward_passes(f, x):
    base = f(*[Dual(v) for v in x]).value
    gradient = []
    for i in range(len(x)):
        moved = [Dual(v + (1e-7 if j == i else 0.0)) for j, v in enumerate(x)]
        gradient.append((f(*moved).value - base) / 1e-7)
    return gradient
"""
    results = grade("02_forward_mode", replace={"task5": forward_differences})
    assert failed(results) == ["test_task5"]
    complex_step = """
def gradient_by_forward_passes(f, x):
    return [f(*[Dual(v + (1e-20j if j == i else 0.0)) for j, v in enumerate(x)]).value.imag
            / 1e-20 for i in range(len(x))]
"""
    results = grade("02_forward_mode", replace={"task5": complex_step})
    assert failed(results) == ["test_task5"]
    assert "TypeError" in results["test_task5"]  # relu and |x| compare values: not complex


RULES_BY_COMPLEX_STEP = """
def _slope(phi, u):
    return np.imag(phi(u + 1e-20j)) / 1e-20


def exp_rule(u, du):
    return np.exp(u), _slope(np.exp, u) * du


def log_rule(u, du):
    return np.log(u), _slope(np.log, u) * du


def sin_rule(u, du):
    return np.sin(u), _slope(np.sin, u) * du


def recip_rule(u, du):
    return 1 / u, _slope(lambda t: 1 / t, u) * du


def sqrt_rule(u, du):
    return np.sqrt(u), _slope(np.sqrt, u) * du


TANGENT_RULES = {"exp": exp_rule, "log": log_rule, "sin": sin_rule, "recip": recip_rule,
                 "sqrt": sqrt_rule}
"""

# A sixth-order central difference in extended precision: right to 14 digits and more at
# the points of the old tests, which compared with exact derivatives to 12 digits only.
RULES_BY_DIFFERENCES = RULES_BY_COMPLEX_STEP.replace(
    "    return np.imag(phi(u + 1e-20j)) / 1e-20\n",
    "    x = u.astype(np.longdouble) if isinstance(u, np.ndarray) else np.longdouble(u)\n"
    "    h = 1e-3 * abs(x)\n"
    "    weights = [(1, 3 / 4), (2, -3 / 20), (3, 1 / 60)]\n"
    "    slope = sum(w * (phi(x + k * h) - phi(x - k * h)) for k, w in weights) / h\n"
    "    return slope.astype(float) if isinstance(slope, np.ndarray) else float(slope)\n")

POWER_BY_COMPLEX_STEP = """
def pow_rule(u, du, w, dw):
    h = 1e-20
    return u**w, np.imag((u + 1j * h * du) ** (w + 1j * h * dw)) / h
"""

POWER_BY_DIFFERENCES = """
def pow_rule(u, du, w, dw):
    def slope(phi, t, h=1e-2):
        weights = [(1, 3 / 4), (2, -3 / 20), (3, 1 / 60)]
        return sum(c * (phi(t + k * h) - phi(t - k * h)) for k, c in weights) / h

    tangent = slope(lambda b: b**w, u) * du
    if np.any(dw != 0):
        tangent = tangent + slope(lambda e: u**e, w) * dw
    return u**w, tangent
"""


@pytest.mark.parametrize(("task", "answer", "message"), [
    ("task2", RULES_BY_COMPLEX_STEP, "np.add was given complex numbers"),
    ("task2", RULES_BY_DIFFERENCES, "arguments of np.exp other than u"),
    ("task3", POWER_BY_COMPLEX_STEP, "np.multiply was given complex numbers"),
    ("task3", POWER_BY_DIFFERENCES, "bases of ** and arguments of log other than u"),
], ids=["rules-complex-step", "rules-differences", "pow-complex-step", "pow-differences"])
def test_02_the_complex_step_and_differences_earn_nothing_for_the_tangent_rules(
        task, answer, message):
    """Both approximate to 14 digits and more; the rules' tests give them numbers that refuse
    complex arithmetic and note where exp, log, sin, sqrt and ** are evaluated."""
    results = grade("02_forward_mode", replace={task: answer})
    assert failed(results) == [f"test_{task}"]
    assert message in results[f"test_{task}"]


HONEST_RULES = """
def exp_rule(u, du):
    return np.exp(u), np.exp(u) * du


def log_rule(u, du):
    return np.log(u), du * (1 / u)


def sin_rule(u, du):
    return np.sin(u), du * np.cos(u)


def recip_rule(u, du):
    return np.reciprocal(u), -du / u**2


def sqrt_rule(u, du):
    v = u**0.5
    tangent = 0.5 * du
    tangent /= v
    return v, tangent


TANGENT_RULES = {"exp": exp_rule, "log": log_rule, "sin": sin_rule, "recip": recip_rule,
                 "sqrt": sqrt_rule}
"""

HONEST_POWERS = ["""
def pow_rule(u, du, w, dw):
    v = np.power(u, w)
    tangent = du * w * np.power(u, w - 1)
    if dw != 0:
        tangent += np.log(u) * v * dw
    return v, tangent
""", """
import math


def pow_rule(u, du, w, dw):
    v = u**w
    if dw == 0:
        return v, w * u ** (w - 1) * du
    return v, v * (w * du / u + math.log(u) * dw)
"""]


@pytest.mark.parametrize(("task", "answer"), [("task2", HONEST_RULES),
                                              ("task3", HONEST_POWERS[0]),
                                              ("task3", HONEST_POWERS[1])],
                         ids=["rules", "pow-in-place", "pow-through-log"])
def test_02_honest_alternative_rules_earn_full_marks(task, answer):
    """exp twice, np.reciprocal, a power of u, in-place updates, math.log, `if dw != 0` on
    numbers: all forward mode, all full marks."""
    assert failed(grade("02_forward_mode", replace={task: answer})) == []


def test_02_a_slip_in_the_rules_is_named_where_the_trace_uses_them():
    """Issue 11, item 13: the hidden test runs the trace with reference rules; the visible
    test uses the student's and names them as the likely culprit."""
    wrong = [("return np.sin(u), np.cos(u) * du", "return np.sin(u), -np.cos(u) * du")]
    results = grade("02_forward_mode", edits={"task2": wrong})
    assert failed(results) == ["test_task2", "test_task4"]
    assert "your rules from task 2 take part" in results["test_task4"]
    wrong = [("return np.log(u), du / u", "return np.log(u), du * u")]
    results = grade("02_forward_mode", edits={"task2": wrong})
    assert failed(results) == ["test_task2"]  # the trace does not use log


def test_02_a_slip_in_dual_or_no_dual_at_all_costs_task_1_only():
    """Issue 11, item 13: tasks 5 and 6 run with the tests' own dual numbers, task 4 needs
    none; so a wrong or missing Dual (the reference imported, which fails while grading)
    costs task 1 alone."""
    wrong = [("return Dual(v, (self.tangent - v * other.tangent) / other.value)",
              "return Dual(v, (self.tangent + v * other.tangent) / other.value)"),
             ("return Dual(-self.value, -self.tangent)", "return Dual(-self.value, self.tangent)")]
    assert failed(grade("02_forward_mode", edits={"task1": wrong})) == ["test_task1"]
    missing = "raise ImportError('course_ad.ForwardDiff cannot be imported while grading')"
    assert failed(grade("02_forward_mode", replace={"task1": missing})) == ["test_task1"]


# --------------------------------------------------------------------------------------
# Assignment 3
# --------------------------------------------------------------------------------------

VAR_RSUB = ("    def __rsub__(self, other):\n        return Var.lift(other) - self",)


def test_03_rsub_written_as_negation_plus_other_earns_full_marks():
    """Issue 11, item 12: (2.0 - x) as (-self) + other is a correct __rsub__."""
    edits = [(VAR_RSUB[0], "    def __rsub__(self, other):\n        return (-self) + other"),
             ("    def __neg__(self):\n        return Var(0.0) - self",
              "    def __neg__(self):\n        return self * -1.0")]
    assert failed(grade("03_reverse_mode", edits={"task3": edits})) == []


def test_03_division_built_as_a_product_with_a_reciprocal_earns_full_marks():
    """Issue 11, item 12: a / b as a * (1 / b) is a correct Var; the tests check derivatives,
    not that a / b is one node with div_vjp."""
    edits = [("    def __truediv__(self, other):\n"
              "        return self._binary(other, \"div\", div_vjp)",
              "    def __truediv__(self, other):\n        return self * (1.0 / Var.lift(other))"),
             ("    def __rtruediv__(self, other):\n        return Var.lift(other) / self",
              "    def __rtruediv__(self, other):\n        other = Var.lift(other)\n"
              "        return Var(other.value / self.value, (other, self), \"/\", div_vjp)")]
    assert failed(grade("03_reverse_mode", edits={"task3": edits})) == []


def test_03_a_sign_error_in_div_vjp_is_charged_once():
    """Issue 11, item 13: Var is tested with reference VJPs in its hidden test."""
    wrong = [("return g / y, -g * x / (y * y)", "return g / y, g * x / (y * y)")]
    results = grade("03_reverse_mode", edits={"task2": wrong})
    assert "test_task2" in failed(results) and "test_task3" not in failed(results)
    assert "div_vjp at g = 0.7, x = 1.3, y = -2.1" in results["test_task2"]
    assert "np.float64" not in results["test_task2"]


def test_03_a_wrong_order_is_reported_by_node_names():
    """Issue 11, item 14: the topological-order message names nodes."""
    wrong = [("            order.append(node)\n    return order",
              "            order.append(node)\n    return order[::-1]")]
    results = grade("03_reverse_mode", edits={"task4": wrong})
    assert "test_task4" in failed(results)
    assert "b is a parent of d but comes after it" in results["test_task4"]


def test_03_the_hand_sweep_takes_the_notes_numbers_and_rejects_a_sign_slip():
    """Issue 11, item 19: the reverse column 1.3513, 2.8437, -2.8437, 1.5059, 3.0118, -13.7240."""
    notes = """
adjoints = {"v6": 1, "v5": 1.3513, "v4": 2.8437, "v3": -2.8437, "v2": 1.3513,
            "v1": 1.5059, "v0": -13.7240, "v-1": 3.0118}
baydin_gradient = [5.5, 1.7163]
"""
    assert failed(grade("03_reverse_mode", replace={"task1": notes})) == []
    by_hand = notes.replace("-13.7240", "-13.7238")  # hand work with rounded entries
    assert failed(grade("03_reverse_mode", replace={"task1": by_hand})) == []
    slip = notes.replace('"v3": -2.8437', '"v3": 2.8437')
    results = grade("03_reverse_mode", replace={"task1": slip})
    assert failed(results) == ["test_task1"] and "adjoints['v3']" in results["test_task1"]


def test_03_backward_must_build_a_graph_for_second_derivatives():
    """Issue 11, item 16: create_graph; x³'' and e^v(e^v + 1)'' from the notes."""
    ignores_flag = [("output.grad = Var(1.0) if create_graph else 1.0", "output.grad = 1.0"),
                    ("node.vjp(node.grad, create_graph)", "node.vjp(node.grad)")]
    results = grade("03_reverse_mode", edits={"task5": ignores_flag})
    assert failed(results) == ["test_task5"]
    text = "\n".join(c.source for c in notebook("03_reverse_mode").cells)
    assert "d²(x³)/dx²" in text and "d²/dv² e^v (e^v + 1)" in text
    # and the semantics of grad, contrasted with PyTorch's (issue 11, item 10)
    assert "optimizer.zero_grad()" in text and "nothing accumulates across calls" in text


def test_03_backward_is_tested_apart_from_var_and_the_order():
    """Issue 11, item 13: the hidden test of backward builds its own nodes."""
    source = next(c.source for c in notebook("03_reverse_mode").cells
                  if grade_id(c) == "test_task5")
    hidden = source.split("### BEGIN HIDDEN TESTS")[1]
    assert "class Plain" in hidden and "topological_order = reference_order" in hidden


def test_03_chain_gradient_may_return_the_output_node_or_its_value():
    """The task's y3 is a node in the student's code: returning it is as right as its value."""
    edits = [("return y.value, np.array([weight.grad for weight in weights])",
              "return y, np.array([weight.grad for weight in weights])")]
    assert failed(grade("03_reverse_mode", edits={"task6": edits})) == []


def test_03_chain_gradient_by_differences_or_the_complex_step_fails():
    """Issue 8, item 3: the chain's gradient must come from a reverse sweep."""
    finite = """
def sigmoid(t):
    return 1 / (1 + np.exp(-t))


def chain_gradient(w, x, activation=sigmoid):
    def y3(w):
        y = x
        for weight in w:
            y = activation(weight * y)
        return y
    w = np.asarray(w, dtype=float)
    eye = np.eye(3)
    return y3(w), np.array([(y3(w + 1e-6 * e) - y3(w - 1e-6 * e)) / 2e-6 for e in eye])
"""
    results = grade("03_reverse_mode", replace={"task6": finite})
    assert failed(results) == ["test_task6"]
    complex_step = finite.replace(
        "np.array([(y3(w + 1e-6 * e) - y3(w - 1e-6 * e)) / 2e-6 for e in eye])",
        "np.array([np.imag(y3(w + 1e-20j * e)) / 1e-20 for e in eye])")
    results = grade("03_reverse_mode", replace={"task6": complex_step})
    assert failed(results) == ["test_task6"]
    assert "leaky relu" in results["test_task6"] or "Error" in results["test_task6"]


def test_02_a_complex_step_trace_fails_along_a_long_direction():
    """A tangent is linear in the direction: a step of 1e-20 along (1e200, -3e199) is not."""
    complex_step = """
def lecture_trace(x1, x2, dx1, dx2):
    a, b = x1 + 1e-20j * dx1, x2 + 1e-20j * dx2
    v1 = a / b
    v2 = np.sin(v1)
    v3 = np.exp(b)
    v4 = v1 - v3
    v5 = v2 + v4
    v6 = v5 * v4
    return [(v.real, v.imag / 1e-20) for v in (v1, v2, v3, v4, v5, v6)]
"""
    results = grade("02_forward_mode", replace={"task4": complex_step})
    assert failed(results) == ["test_task4"]
    assert "along (1e+200, -3e+199)" in results["test_task4"]


# --------------------------------------------------------------------------------------
# The lecture notes' examples, graded (issue 11, items 10 and 21)
# --------------------------------------------------------------------------------------


def recorded_checks(assignment: str) -> list[str]:
    """The facts the judge compares for an assignment, from references/ (what the release
    recorded in the sandbox)."""
    data = json.loads((ROOT / "references" / f"{assignment}.json").read_text())
    return [c["what"] for checks_ in data["checks"].values() for c in checks_]


@pytest.mark.parametrize(("assignment", "fact"), [
    ("02_forward_mode", "Baydin et al.'s ln x1 + x1 x2 - sin x2"),
    ("02_forward_mode", "forward passes for the gradient of √(x1² + x2²): one per input"),
    ("02_forward_mode", "Jacobian of (x1 x2 + sin x1, x1 x2 + cos x2)"),
    ("03_reverse_mode", "Baydin et al.'s ln x1 + x1 x2 - sin x2 at (2, 5), one backward sweep"),
    ("03_reverse_mode", "√(x1² + x2²) at (3, 4): both partials from one backward sweep"),
    ("03_reverse_mode", "the Jacobian of (x1 x2 + sin x1, x1 x2 + cos x2) at (1, 2)"),
    ("03_reverse_mode", "<Jᵀȳ, ẋ> = <ȳ, J ẋ> (duality)"),
    ("03_reverse_mode", "chain_gradient with sigmoid, random weights 0"),
    ("03_reverse_mode", "chain_gradient with leaky relu, random weights 0"),
    ("03_reverse_mode", "d²(x³)/dx² at 2"),
    ("03_reverse_mode", "d²/dv² e^v (e^v + 1) at 0.7 (the lecture notes' example)"),
    ("03_reverse_mode", "adjoints['v0']"),
    ("03_reverse_mode", "baydin_gradient"),
    ("01_numerical_symbolic", "|estimates[0] - 2| at h = √ε: the digits are gone"),
])
def test_the_notes_examples_are_graded(assignment, fact):
    assert any(fact in what for what in recorded_checks(assignment)), fact


def test_01_shows_that_the_complex_step_rounds_and_breaks_on_abs():
    """Issue 11, item 10: no cancellation, but it still rounds; not for non-analytic f."""
    cells = notebook("01_numerical_symbolic").cells
    text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    assert "still rounds" in text and "no round-off at all" not in text
    assert "\\prod_{i=1}^n x_i" in text  # and the notes' ∏xᵢ in the swell lesson
    namespace: dict = {"__name__": "__main__"}
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        for cell in cells:
            if grade_id(cell) in ("setup", "given_complex_step"):
                exec(cell.source, namespace)  # noqa: S102
    lines = output.getvalue().splitlines()
    differences = [float(line.rsplit(" ", 1)[1]) for line in lines[:3]]
    assert any(d != 0 for d in differences) and all(abs(d) < 1e-15 for d in differences)
    assert lines[3] == "complex step of |x| at x = -1: 0.0 (the truth is -1)"


# --------------------------------------------------------------------------------------
# The same verdicts through the real trusted path (sandbox, split hidden part, judge)
# --------------------------------------------------------------------------------------


def submission(assignment: str, folder: Path, **changes: str) -> Path:
    """The source notebook with answer cells replaced (grade id -> new source)."""
    nb = notebook(assignment)
    for cell in nb.cells:
        if grade_id(cell) in changes:
            cell.source = changes[grade_id(cell)]
    path = folder / f"{assignment}.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.skipif(bool(sandbox_module.unavailable_reason()),
                    reason=sandbox_module.unavailable_reason() or "")
def test_the_trusted_path_agrees_an_alternative_full_a_complex_step_loses_its_task(tmp_path):
    from course_ad.grading.sandbox import Limits, Sandbox
    from course_ad.grading.trusted import grade_notebook

    box = Sandbox(Limits(cell_seconds=60))
    var = next(c.source for c in notebook("03_reverse_mode").cells if grade_id(c) == "task3")
    alternative = var.replace(VAR_RSUB[0], "    def __rsub__(self, other):\n"
                                           "        return (-self) + other")
    graded = grade_notebook(ROOT, "03_reverse_mode",
                            submission("03_reverse_mode", tmp_path, task3=alternative), box)
    assert (graded.score, graded.max_score) == (20, 20), graded.summary()
    complex_step = (
        "def gradient_by_forward_passes(f, x):\n"
        "    return [f(*[Dual(v + (1e-20j if j == i else 0.0)) for j, v in enumerate(x)])"
        ".value.imag / 1e-20 for i in range(len(x))]")
    graded = grade_notebook(ROOT, "02_forward_mode",
                            submission("02_forward_mode", tmp_path, task5=complex_step), box)
    assert (graded.score, graded.max_score) == (17, 20), graded.summary()
    graded = grade_notebook(ROOT, "02_forward_mode", submission(
        "02_forward_mode", tmp_path, task2=RULES_BY_COMPLEX_STEP, task3=POWER_BY_DIFFERENCES), box)
    assert (graded.score, graded.max_score) == (13, 20), graded.summary()
