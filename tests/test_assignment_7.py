"""Assignment 7, how AD is built, under trusted grading.

The notebook runs in this process the way the judge sees it (the harness of
test_assignments_b): the reference scores 20, the untouched release 0, correct answers
written another way score full, and answers that dodge a task lose it: difference quotients,
the complex step, and a tangent placed after the update that overwrites its primal.
"""

from __future__ import annotations

import re

import matplotlib.pyplot  # noqa: F401 - the harness closes figures through it
import pytest
from test_assignments_b import grade_id, load, points, reference, run, score, source, verdicts

A7 = "07_how_ad_is_built"


def answer(cell_id: str) -> str:
    return next(source(c) for c in load(A7) if grade_id(c) == cell_id)


def before(cell_id: str, name: str) -> str:
    """The given part of an answer cell, up to the definition the student writes."""
    text = answer(cell_id)
    return text[: text.index(f"def {name}")]


# ---------------------------------------------------------------- alternative correct answers

ALTERNATIVE_TASK1 = '''
class Traced:
    def __init__(self, tape, index, value):
        self.tape, self.index, self.value = tape, index, value


def _wrap(tape, thing):
    if isinstance(thing, Traced):
        return thing
    return Traced(tape, tape.push("const", float(thing)), float(thing))


def _binary(name, compute, swap=False):
    def method(self, other):
        other = _wrap(self.tape, other)
        left, right = (other, self) if swap else (self, other)
        return Traced(self.tape, self.tape.push(name, left.index, right.index),
                      compute(left.value, right.value))
    return method


def _unary(name, compute):
    def method(self):
        return Traced(self.tape, self.tape.push(name, self.index), compute(self.value))
    return method


for _name, _compute in [("add", lambda a, b: a + b), ("sub", lambda a, b: a - b),
                        ("mul", lambda a, b: a * b), ("truediv", lambda a, b: a / b)]:
    _op = "div" if _name == "truediv" else _name
    setattr(Traced, f"__{_name}__", _binary(_op, _compute))
    setattr(Traced, f"__r{_name}__", _binary(_op, _compute, swap=True))
for _name, _compute in [("sin", np.sin), ("cos", np.cos), ("exp", np.exp), ("log", np.log)]:
    setattr(Traced, _name, _unary(_name, _compute))
Traced.__neg__ = _unary("neg", lambda a: -a)
Traced.__abs__ = _unary("abs", abs)


def record(f, x):
    tape = Tape(len(x))
    out = f(*[Traced(tape, i, float(v)) for i, v in enumerate(x)])
    tape.output = out.index
    return tape
'''

ALTERNATIVE_TASK2 = '''
UNARY = {"neg": (np.negative, lambda a: -1.0), "sin": (np.sin, np.cos),
         "cos": (np.cos, lambda a: -np.sin(a)), "exp": (np.exp, np.exp),
         "log": (np.log, lambda a: 1 / a), "abs": (np.abs, np.sign)}
BINARY = {"add": (np.add, lambda a, b: (1.0, 1.0)), "sub": (np.subtract, lambda a, b: (1.0, -1.0)),
          "mul": (np.multiply, lambda a, b: (b, a)),
          "div": (np.divide, lambda a, b: (1 / b, -a / b**2))}


def replay(tape, x):
    values = list(map(float, x))
    for op, args in tape.statements:
        if op == "const":
            values.append(args[0])
        elif op in UNARY:
            values.append(UNARY[op][0](values[args[0]]))
        else:
            values.append(BINARY[op][0](values[args[0]], values[args[1]]))
    return values


def gradient(tape, x):
    values = replay(tape, x)
    bar = np.zeros(len(values))
    bar[tape.output] = 1.0
    for k, (op, args) in reversed(list(enumerate(tape.statements))):
        if op == "const":
            continue
        here = bar[tape.n_inputs + k]
        if op in UNARY:
            bar[args[0]] += here * UNARY[op][1](values[args[0]])
        else:
            da, db = BINARY[op][1](values[args[0]], values[args[1]])
            bar[args[0]] += here * da
            bar[args[1]] += here * db
    return values[tape.output], bar[: tape.n_inputs].copy()
'''

# Task 3 another way: adjoints accumulated with += from zero, math's sin instead of numpy's, and
# the value once more from the given lecture_f (so np.sin evaluates one number, not none).
ALTERNATIVE_TASK3 = '''
import math


def lecture_adjoint(x1, x2, y_bar=1.0):
    # forward sweep, then the adjoints accumulated with +=, starting from zero
    y = lecture_f(x1, x2)  # the value, once more, from the given function
    v_m1, v0 = x1, x2
    v1 = v_m1 / v0
    v2 = math.sin(v1)
    v3 = math.exp(v0)
    v4 = v1 - v3
    v5 = v2 + v4
    v6 = v5 * v4
    b = dict.fromkeys(["v-1", "v0", "v1", "v2", "v3", "v4", "v5"], 0.0)
    b["v6"] = y_bar
    b["v5"] += b["v6"] * v4
    b["v4"] += b["v6"] * v5
    b["v2"] += b["v5"]
    b["v4"] += b["v5"]
    b["v1"] += b["v4"]
    b["v3"] -= b["v4"]
    b["v0"] += b["v3"] * math.exp(v0)
    b["v1"] += b["v2"] * math.cos(v1)
    b["v-1"] += b["v1"] / v0
    b["v0"] -= b["v1"] * v1 / v0
    assert abs(y - v6) <= 1e-12 * abs(v6)
    return v6, b
'''

# Another way to write the checkpoint scheme: a checkpoint stays in its list while its segment
# is recomputed (and is counted once), and stored_states simulates no sweep.
ALTERNATIVE_TASK4 = '''
def chain_checkpointed(x0, n, k, step=step, step_vjp=step_vjp):
    saved = []
    x = x0
    for i in range(n):
        if i % k == 0:
            saved.append(x)
        x = step(x)
    peak = len(saved)
    g = np.ones_like(x0)
    for s in range(len(saved) - 1, -1, -1):
        states = [saved[s]]
        while len(states) < min(k, n - s * k):
            states.append(step(states[-1]))
        peak = max(peak, len(saved) + len(states) - 1)
        while states:
            g = step_vjp(states.pop(), g)
        saved.pop()
    return x, g, peak
'''

ALTERNATIVE_TASK5 = '''
def stored_states(n, k):
    segments = (n + k - 1) // k
    held = [s + min(k, n - s * k) for s in range(segments)]  # checkpoints 0..s, segment s
    return max([segments, *held])


def best_k(n):
    costs = [stored_states(n, k) for k in range(1, n + 1)]
    return 1 + costs.index(min(costs))
'''

ALTERNATIVE_TASK6 = before("task6", "two_variable_loop_tangent") + '''
def two_variable_loop_tangent(v, v_dot, w, w_dot, n):
    for _ in range(n):
        old_v = v
        v = np.sin(v)
        v_dot = v_dot * np.cos(old_v)  # after the update, but from the saved old value
        old_w = w
        w = old_w * v + 1.0
        w_dot = v_dot * old_w + w_dot * v
        difference = v - w
        v = np.abs(difference)
        v_dot = (v_dot - w_dot) * np.sign(difference)
    return v, v_dot, w, w_dot
'''

# ---------------------------------------------------------------- answers that dodge a task

CENTRAL_DIFFERENCE_TASK2 = before("task2", "gradient") + '''
def gradient(tape, x):
    x = np.array(x, dtype=float)
    grad = np.zeros(len(x))
    for i in range(len(x)):
        h = 1e-6 * max(1.0, abs(x[i]))
        e = np.zeros(len(x))
        e[i] = h
        grad[i] = (replay(tape, x + e)[tape.output] - replay(tape, x - e)[tape.output]) / (2 * h)
    return replay(tape, x)[tape.output], grad
'''

COMPLEX_STEP_TASK2 = '''
def replay(tape, x):
    values = list(x)
    for op, args in tape.statements:
        if op == "const":
            values.append(args[0])
            continue
        a = values[args[0]]
        b = values[args[1]] if len(args) == 2 else None
        values.append({"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b,
                       "div": lambda: a / b, "neg": lambda: -a, "sin": lambda: np.sin(a),
                       "cos": lambda: np.cos(a), "exp": lambda: np.exp(a),
                       "log": lambda: np.log(a), "abs": lambda: abs(a)}[op]())
    return values


def gradient(tape, x):
    grad = []
    for i in range(len(x)):
        z = [complex(v) for v in x]
        z[i] += 1e-30j
        grad.append(replay(tape, z)[tape.output].imag / 1e-30)
    return float(replay(tape, [float(v) for v in x])[tape.output]), np.array(grad)
'''

# The complex step on the inputs themselves: the numbers the test passes refuse it.
COMPLEX_STEP_TASK3 = '''
def lecture_adjoint(x1, x2, y_bar=1.0):
    h = 1e-30
    v1, v3 = x1 / x2, np.exp(x2)
    v4 = v1 - v3
    v5 = np.sin(v1) + v4
    bar5, bar4 = y_bar * v4, y_bar * (v5 + v4)
    adjoints = {"v6": y_bar, "v5": bar5, "v4": bar4, "v3": -bar4, "v2": bar5,
                "v1": bar4 + bar5 * np.cos(v1),
                "v0": y_bar * lecture_f(x1, x2 + 1j * h).imag / h,
                "v-1": y_bar * lecture_f(x1 + 1j * h, x2).imag / h}
    return v5 * v4, adjoints
'''

# The complex step on copies made with complex(): numpy's sin refuses them.
COMPLEX_COPIES_TASK3 = '''
def lecture_adjoint(x1, x2, y_bar=1.0):
    h = 1e-30

    def slope(f, args, i):  # the complex step: f(a + ih) = f(a) + ih f'(a) + O(h²)
        z = [complex(a) for a in args]
        z[i] += 1j * h
        return f(*z).imag / h

    v1, v3 = x1 / x2, np.exp(x2)
    v4 = v1 - v3
    v2, v5 = np.sin(v1), np.sin(v1) + v4
    adjoints = {
        "v6": y_bar,
        "v5": y_bar * slope(lambda a, b: a * b, [v5, v4], 0),
        "v4": y_bar * slope(lambda a, b: (a + b) * b, [v2, v4], 1),
        "v3": y_bar * slope(lambda a, b, c: (a + b - c) * (b - c), [v2, v1, v3], 2),
        "v2": y_bar * slope(lambda a, b: (a + b) * b, [v2, v4], 0),
        "v1": y_bar * slope(lambda a, c: (np.sin(a) + a - c) * (a - c), [v1, v3], 0),
        "v0": y_bar * slope(lecture_f, [x1, x2], 1),
        "v-1": y_bar * slope(lecture_f, [x1, x2], 0),
    }
    return v5 * v4, adjoints
'''

# Difference quotients in extended precision: right to 12 digits, but they evaluate sin at many
# points, where the trace evaluates it once.
DIFFERENCE_TASK3 = '''
def lecture_adjoint(x1, x2, y_bar=1.0):
    def slope(f, args, i):  # a five-point difference quotient in extended precision
        def at(t):
            moved = [np.longdouble(a) for a in args]
            moved[i] = moved[i] + t
            return f(*moved)
        h = np.longdouble(1e-4) * max(1.0, abs(float(args[i])))
        return float((at(-2 * h) - 8 * at(-h) + 8 * at(h) - at(2 * h)) / (12 * h))

    v1, v3 = x1 / x2, np.exp(x2)
    v4 = v1 - v3
    v2, v5 = np.sin(v1), np.sin(v1) + v4
    adjoints = {
        "v6": y_bar,
        "v5": y_bar * v4,
        "v4": y_bar * (v5 + v4),
        "v3": -y_bar * (v5 + v4),
        "v2": y_bar * v4,
        "v1": y_bar * slope(lambda a, c: (np.sin(a) + a - c) * (a - c), [v1, v3], 0),
        "v0": y_bar * slope(lecture_f, [x1, x2], 1),
        "v-1": y_bar * slope(lecture_f, [x1, x2], 0),
    }
    return lecture_f(x1, x2), adjoints
'''

CENTRAL_DIFFERENCE_TASK4 = '''
def chain_checkpointed(x0, n, k, step=step, step_vjp=step_vjp):
    def run(x):
        for _ in range(n):
            x = step(x)
        return x
    h = 1e-6
    return run(x0), (run(x0 + h) - run(x0 - h)) / (2 * h), 2
'''

TANGENT_AFTER_UPDATE_TASK6 = before("task6", "two_variable_loop_tangent") + '''
def two_variable_loop_tangent(v, v_dot, w, w_dot, n):
    for _ in range(n):
        v = np.sin(v)
        v_dot = np.cos(v) * v_dot
        w = w * v + 1.0
        w_dot = w_dot * v + w * v_dot
        v = np.abs(v - w)
        v_dot = np.sign(v - w) * (v_dot - w_dot)
    return v, v_dot, w, w_dot
'''

# Only the sin statement out of order: the other two tangents are right.
ONE_TANGENT_LATE_TASK6 = before("task6", "two_variable_loop_tangent") + '''
def two_variable_loop_tangent(v, v_dot, w, w_dot, n):
    for _ in range(n):
        v = np.sin(v)
        v_dot = np.cos(v) * v_dot
        w_dot = w_dot * v + w * v_dot
        w = w * v + 1.0
        v_dot = np.sign(v - w) * (v_dot - w_dot)
        v = np.abs(v - w)
    return v, v_dot, w, w_dot
'''

CENTRAL_DIFFERENCE_TASK6 = before("task6", "two_variable_loop_tangent") + '''
def two_variable_loop_tangent(v, v_dot, w, w_dot, n):
    h = 1e-7
    up = two_variable_loop(v + h * np.asarray(v_dot), w + h * np.asarray(w_dot), n)
    down = two_variable_loop(v - h * np.asarray(v_dot), w - h * np.asarray(w_dot), n)
    v_n, w_n = two_variable_loop(v, w, n)
    return v_n, (up[0] - down[0]) / (2 * h), w_n, (up[1] - down[1]) / (2 * h)
'''


# ---------------------------------------------------------------- the tests


def test_headings_points_and_header():
    """The points and the expected time of every heading: tests/test_workload.py."""
    cells = load(A7)
    header = source(cells[0])
    assert "**Goals.**" in header and "**Points:** 20" in header
    top = points(A7)
    assert sum(top.values()) == 20 and len(top) == 6
    headings = [re.match(r"### Task (\d): (.+) \((\d) points?, about (\d+) minutes\)", source(c))
                for c in cells if c["cell_type"] == "markdown" and "### Task" in source(c)]
    assert [int(h[1]) for h in headings] == [1, 2, 3, 4, 5, 6]
    assert [int(h[3]) for h in headings] == [top[f"test_task{i}"] for i in range(1, 7)]


def test_reference_scores_full_and_release_scores_zero():
    assert score(A7, reference(A7)) == 20
    empty = run(A7, release=True)
    assert all(verdicts(A7, empty).values())
    assert score(A7, empty) == 0


def test_alternative_correct_answers_score_full():
    result = run(A7, {"task1": ALTERNATIVE_TASK1, "task2": ALTERNATIVE_TASK2,
                      "task3": ALTERNATIVE_TASK3, "task4": ALTERNATIVE_TASK4,
                      "task5": ALTERNATIVE_TASK5, "task6": ALTERNATIVE_TASK6})
    assert verdicts(A7, result) == {f"test_task{i}": "" for i in range(1, 7)}
    assert score(A7, result) == 20


@pytest.mark.parametrize("task, code, message", [
    ("task2", CENTRAL_DIFFERENCE_TASK2, "d sin(x*x)/dx at 1.2"),
    ("task2", COMPLEX_STEP_TASK2, "|x0 - x1| exp(x0)"),
    ("task3", COMPLEX_STEP_TASK3, "np.add met a complex number"),
    ("task3", COMPLEX_COPIES_TASK3, "np.sin met a complex number"),
    ("task3", DIFFERENCE_TASK3, "numbers np.sin evaluated in one call of lecture_adjoint"),
    ("task4", CENTRAL_DIFFERENCE_TASK4, "x̄0 for n = 12, k = 4"),
    ("task6", TANGENT_AFTER_UPDATE_TASK6, "(v̇, ẇ) after one step"),
    ("task6", ONE_TANGENT_LATE_TASK6, "(v̇, ẇ) after one step"),
    ("task6", CENTRAL_DIFFERENCE_TASK6, "(v̇, ẇ) after one step"),
])
def test_answers_that_dodge_the_task_lose_it(task, code, message):
    result = run(A7, {task: code})
    problems = verdicts(A7, result)
    assert message in problems[f"test_{task}"], problems[f"test_{task}"]
    lost = [t for t, problem in problems.items() if problem]
    # task 5 compares stored_states with task 4's peak: a task 4 without a sweep loses both
    assert lost == ([f"test_{task}", "test_task5"] if task == "task4" else [f"test_{task}"])


def test_printed_numbers():
    printed = reference(A7)["_printed"]
    assert "v2 = mul(v0, v1)\nv3 = sin(v0)\nv4 = add(v2, v3)\noutput: v4" in printed["task1"]
    compare = printed["given_compare"]
    assert "statements: 10 on the tape (recorded as written), 6 in the trace" in compare
    assert re.search(r"tape \[ +3\.0118\d* +-13\.7239\d*\]", compare), compare
    assert all(float(d) < 1e-13 for d in re.findall(r"largest difference (\S+)", compare))
    memory = printed["given_memory"]
    assert "n = 400, k =   1: stored_states  400" in memory
    assert "n = 400, k =  20: stored_states   39" in memory
    states = {int(k): float(s) for k, s in re.findall(r"k = +(\d+):.*= +([\d.]+) states", memory)}
    assert states[20] < states[1] / 5, states  # measured by tracemalloc, not counted
    wrong = printed["given_wrong_order"]
    after, truth = (float(re.search(rf"{label}: v = 0\.587181, dv/dv0 = ([\d.]+)", wrong)[1])
                    for label in ("tangent after the update", "the truth"))
    assert (after, truth) == (0.256847, 0.166695)


def test_generated_adjoint_shown_is_what_course_ad_generates():
    """The excerpt of generated code in the text after task 3 is the engine's, line for line."""
    from course_ad.tape import tape

    namespace: dict = {"np": __import__("numpy")}
    exec(answer("given_tape"), namespace)
    generated = tape(namespace["lecture_f"], 1.5, 0.5).source(argnums=(0, 1))
    text = next(source(c) for c in load(A7) if source(c).startswith("For comparison, `course_ad`"))
    shown = text.split("```python\n")[1].split("```")[0].strip().splitlines()
    assert len(shown) == 6
    lines = [line.strip() for line in generated.splitlines()]
    stale = [line for line in shown if line not in lines]
    assert not stale, (f"the text after task 3 shows lines the engine no longer generates: "
                       f"{stale}; copy the first six adjoint lines of "
                       f"tape(lecture_f, 1.5, 0.5).source(argnums=(0, 1)) into it")
    assert lines.index(shown[0]) + 5 == lines.index(shown[-1])  # the first six, in order
