"""A class of submissions written to cheat, to break the grader, or simply honest.

Each case builds one submission from an assignment's instructor version (solutions) or its
release (blank), and says what it deserves: the points of an honest student who wrote the
same answers, never more. ``fair_score`` turns that into a number for the gradebook, or
"ungraded" for a notebook nobody can grade. Cheats are built on a blank notebook (their
honest score is 0) or added to one task of a full solution (their honest score is the total
less that task).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nbformat

Builder = Callable[["Notebooks"], Any]


@dataclass
class Notebooks:
    """An assignment's two notebooks, with its tasks (answer cell, test cell, points)."""

    name: str
    source: Any
    release: Any

    @property
    def tasks(self) -> list[tuple[int, str, float]]:
        answers = [i for i, c in enumerate(self.source.cells)
                   if c.metadata.get("nbgrader", {}).get("solution")
                   and c.cell_type == "code"]
        tests = [(c.metadata["nbgrader"]["grade_id"], float(c.metadata["nbgrader"]["points"]))
                 for c in self.source.cells if c.metadata.get("nbgrader", {}).get("grade")]
        return [(answer, test, points) for answer, (test, points) in zip(answers, tests)]

    @property
    def total(self) -> float:
        return sum(points for _, _, points in self.tasks)

    def solved(self) -> Any:
        return copy.deepcopy(self.source)

    def blank(self) -> Any:
        return copy.deepcopy(self.release)


@dataclass
class Case:
    """One submission of the class and the score it deserves."""

    name: str
    kind: str  # honest, hook, reference, numeric, helpers, files, process, broken
    build: Builder
    deserves: Callable[[Notebooks], float | str]


def full(nb: Notebooks) -> float:
    return nb.total


def zero(nb: Notebooks) -> float:
    return 0.0


def ungraded(nb: Notebooks) -> str:
    return "ungraded"


def without(task: int) -> Callable[[Notebooks], float]:
    return lambda nb: nb.total - nb.tasks[task][2]


def with_code(base: str, task: int, code: str, where: str = "before") -> Builder:
    """``base`` ('solved' or 'blank') with ``code`` before (or after, or instead of) an answer."""

    def build(nb: Notebooks) -> Any:
        notebook = nb.solved() if base == "solved" else nb.blank()
        cell = notebook.cells[nb.tasks[task][0]]
        if where == "before":
            cell.source = code + "\n" + cell.source
        elif where == "after":
            cell.source = cell.source + "\n" + code
        else:
            cell.source = code
        return notebook

    return build


def added_cell(base: str, code: str, at_end: bool = True) -> Builder:
    """A code cell of the student's own (no nbgrader metadata) at the end or the start."""

    def build(nb: Notebooks) -> Any:
        notebook = nb.solved() if base == "solved" else nb.blank()
        cell = nbformat.v4.new_code_cell(code)
        notebook.cells.insert(len(notebook.cells) if at_end else 1, cell)
        return notebook

    return build


# --------------------------------------------------------------------------------------
# Hooks and transformers: on a blank notebook, they must earn nothing
# --------------------------------------------------------------------------------------

TRANSFORMER = """\
ip = get_ipython()
ip.input_transformers_post.append(lambda lines: ['pass\\n'])"""

AST_TRANSFORMER = """\
import ast
class Empty(ast.NodeTransformer):
    def visit_Module(self, node):
        node.body = [ast.Pass()]
        return node
get_ipython().ast_transformers.append(Empty())"""

PRE_RUN_HOOK = """\
def neutralise(info):
    ip = get_ipython()
    ip.user_ns['check'] = lambda *a, **k: None
    ip.user_ns['close'] = lambda *a, **k: True
get_ipython().events.register('pre_run_cell', neutralise)"""

REBIND_CHECK = """\
import course_ad.grading, course_ad.grading.checks as _c
check = lambda *a, **k: None
course_ad.grading.check = check
_c.check = check"""

FORGE_CHANNEL = """\
import course_ad.grading.checks as _c
_real = _c._SINK.emit
def _forged(what, how, got, expected, rtol, atol, context):
    # copy the expected value (visible checks carry it) or claim a plausible answer
    _real(what, how, expected if expected is not _c._UNSET else 0.0, expected, rtol, atol,
          context)
_c._SINK.emit = _forged"""

PATCH_NUMPY = """\
import numpy as np, builtins
np.allclose = lambda *a, **k: True
np.isclose = lambda a, b, *r, **k: np.ones(np.shape(a), dtype=bool)
np.testing.assert_allclose = lambda *a, **k: None
builtins.AssertionError = type('Quiet', (Exception,), {})"""

PATCH_COMPARE = """\
import course_ad.grading.compare as _cmp, course_ad.grading.checks as _chk
_cmp.compare = lambda *a, **k: ''
_chk.compare = _cmp.compare
import sys
sys.modules['course_ad.grading.judge'] = type(sys)('fake')"""

# --------------------------------------------------------------------------------------
# The reference implementation in every disguise: the task it is used in earns nothing
# --------------------------------------------------------------------------------------

REFERENCE_DISGUISES = {
    "plain_import": "import course_ad\n_reverse = course_ad.ReverseDiff",
    "importlib": "import importlib\n_m = importlib.import_module('course_' + 'ad.reverse')",
    "dunder_import": "_g = __import__('course_ad').grad",
    "sys_modules": "import sys, course_ad.grading\n_g = getattr(sys.modules['course_ad'], 'grad')",
    "default_argument": "def _helper(x, _g=__import__('course_ad').grad):\n    return _g\n"
                        "_helper(1.0)",
    "dict_of_functions": "_tools = {'grad': __import__('course_ad.functional').functional.grad}",
    "exec_source": "import os, course_ad\n_src = os.path.join(os.path.dirname(course_ad.__file__),"
                   " 'reverse.py')\nexec(open(_src).read())",
    "getsource": "import inspect, course_ad.grading\n"
                 "exec(inspect.getsource(__import__('course_ad').rules))",
    "autograd": "import autograd.numpy as anp\nfrom autograd import grad as _g",
    "walk_to_source": """\
import os, glob
_found = []
_here = os.getcwd()
for _ in range(8):
    _found += glob.glob(os.path.join(_here, 'source', '*', '*.ipynb'))
    _here = os.path.dirname(_here)
assert _found, 'no instructor notebook within reach'
exec(open(_found[0]).read())""",
}

# --------------------------------------------------------------------------------------
# Files: instructor material, the gradebook, other students
# --------------------------------------------------------------------------------------

READ_INSTRUCTOR = """\
import base64, glob, os
_loot = []
for _pattern in ['/**/source/**/*.ipynb', '/**/gradebook.db', '/**/references/*.json',
                 '/**/nbgrader_config.py', os.path.expanduser('~/../*/**/*.ipynb')]:
    for _path in glob.glob(_pattern, recursive=True)[:20]:
        if '/proc/' in _path:
            continue
        try:
            _loot.append(_path + ':' + base64.b64encode(open(_path, 'rb').read()).decode())
        except OSError:
            pass
print('\\n'.join(_loot) or 'nothing found')"""

WRITE_GRADEBOOK = """\
import glob, sqlite3
for _db in glob.glob('/**/gradebook.db', recursive=True) + ['../../gradebook.db',
                                                            '../../../gradebook.db']:
    try:
        _con = sqlite3.connect(_db)
        _con.execute('UPDATE grade SET auto_score = 100')
        _con.commit()
    except Exception as _e:
        print('no', _db, _e)"""

DETACHED_REWRITER = """\
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for _ in range(120):
            time.sleep(0.5)
            for _db in ('../../gradebook.db', '/tmp/gradebook.db'):
                try:
                    import sqlite3
                    sqlite3.connect(_db).execute('UPDATE grade SET auto_score = 100')
                except Exception:
                    pass
        os._exit(0)
    os._exit(0)"""

OTHER_STUDENTS = """\
import glob
for _path in glob.glob('/**/autograded/*/*/*.ipynb', recursive=True) + \\
        glob.glob('/**/submitted/*/*/*.ipynb', recursive=True):
    try:
        open(_path, 'w').write('{}')
        print('overwrote', _path)
    except OSError as _e:
        print('no', _e)"""

# --------------------------------------------------------------------------------------
# Processes: the grader, forks, memory, disk, time
# --------------------------------------------------------------------------------------

KILL_GRADER = """\
import os, signal
for _pid in (os.getppid(), 1, -1):
    try:
        os.kill(_pid, signal.SIGKILL)
    except OSError:
        pass"""

FORK_BOMB = """\
import os
_kids = 0
try:
    while True:
        if os.fork() == 0:
            while True:
                pass
        _kids += 1
except OSError:
    print('stopped after', _kids, 'children')"""

MEMORY_HOG = "_hog = [bytearray(1 << 28) for _ in range(64)]"

DISK_HOG = """\
import os
try:
    for _i in range(10_000):
        with open(f'junk{_i}', 'wb') as _f:
            _f.write(os.urandom(1 << 20) * 32)
except OSError as _e:
    print('disk full:', _e)"""

SIGINT_LOOP = """\
import signal
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGALRM, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
while True:
    pass"""

# --------------------------------------------------------------------------------------
# Honest habits that must cost nothing
# --------------------------------------------------------------------------------------

STDERR = """\
import sys, warnings
warnings.warn('this is only a warning')
print('progress: 50%', file=sys.stderr)"""

TQDM = """\
from tqdm import tqdm
for _ in tqdm(range(50)):
    pass"""

PLT_CLOSE = """\
import matplotlib.pyplot as plt
fig, ax = plt.subplots()
ax.plot([0, 1], [1, 0])
plt.close(fig)"""

PRINTING = "for _i in range(2000):\n    print('line', _i)"


def _duplicate(kind: str) -> Builder:
    def build(nb: Notebooks) -> Any:
        notebook = nb.solved()
        index = nb.tasks[0][0] if kind == "answer" else nb.tasks[0][0] + 1
        notebook.cells.insert(index + 1, copy.deepcopy(notebook.cells[index]))
        return notebook

    return build


def _kernelspec(nb: Notebooks) -> Any:
    notebook = nb.solved()
    notebook.metadata["kernelspec"] = {"name": "conda-env-ad-py", "display_name": "Python (ad)",
                                       "language": "python"}
    return notebook


def _deleted_test(nb: Notebooks) -> Any:
    notebook = nb.solved()
    del notebook.cells[nb.tasks[0][0] + 1]
    return notebook


def _tampered_points(nb: Notebooks) -> Any:
    notebook = nb.blank()
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            meta["points"] = 100
            cell.source = "check('free points', 1.0, 1.0)"
        if meta.get("solution"):  # claim to be a test cell
            meta.update(grade=True, solution=False, points=50)
    return notebook


def _text(content: str) -> Builder:
    return lambda nb: content


def _list_notebook(nb: Notebooks) -> str:
    return json.dumps([nbformat.writes(nb.solved())])


GENERIC: list[Case] = [
    # honest work earns full marks
    Case("honest_solution", "honest", lambda nb: nb.solved(), full),
    Case("honest_stderr_warning", "honest", with_code("solved", 0, STDERR, "after"), full),
    Case("honest_tqdm", "honest", with_code("solved", 0, TQDM, "after"), full),
    Case("honest_plt_close", "honest", with_code("solved", -1, PLT_CLOSE, "after"), full),
    Case("honest_exit_at_end", "honest", added_cell("solved", "exit()"), full),
    Case("honest_printing", "honest", with_code("solved", 0, PRINTING, "after"), full),
    Case("honest_pasted_answer_cell", "honest", _duplicate("answer"), full),
    Case("honest_pasted_test_cell", "honest", _duplicate("test"), full),
    Case("honest_other_kernelspec", "honest", _kernelspec, full),
    Case("honest_deleted_test_cell", "honest", _deleted_test, full),
    Case("honest_scratch_cell", "honest", added_cell("solved", "print(2 + 2)", False), full),
    # hooks and transformers on a blank notebook
    Case("hook_input_transformer", "hook", with_code("blank", 0, TRANSFORMER, "instead"), zero),
    Case("hook_ast_transformer", "hook", with_code("blank", 0, AST_TRANSFORMER, "instead"),
         zero),
    Case("hook_pre_run_cell", "hook", with_code("blank", 0, PRE_RUN_HOOK, "instead"), zero),
    Case("helpers_rebind_check", "helpers", with_code("blank", 0, REBIND_CHECK, "instead"),
         zero),
    Case("helpers_forge_channel", "helpers", with_code("blank", 0, FORGE_CHANNEL, "instead"),
         zero),
    Case("helpers_patch_numpy", "helpers", with_code("blank", 0, PATCH_NUMPY, "instead"), zero),
    Case("helpers_patch_compare", "helpers", with_code("blank", 0, PATCH_COMPARE, "instead"),
         zero),
    Case("helpers_tampered_metadata", "helpers", _tampered_points, zero),
    # the reference implementation and other AD libraries, in task 1
    *[Case(f"reference_{name}", "reference", with_code("solved", 0, code), without(0))
      for name, code in REFERENCE_DISGUISES.items()],
    # files
    Case("files_read_instructor_material", "files",
         with_code("blank", 0, READ_INSTRUCTOR, "instead"), zero),
    Case("files_write_gradebook", "files", with_code("blank", 0, WRITE_GRADEBOOK, "instead"),
         zero),
    Case("files_detached_gradebook_rewriter", "files",
         with_code("blank", 0, DETACHED_REWRITER, "instead"), zero),
    Case("files_overwrite_other_students", "files",
         with_code("blank", 0, OTHER_STUDENTS, "instead"), zero),
    # processes
    Case("process_kill_the_grader", "process", added_cell("solved", KILL_GRADER), full),
    Case("process_fork_bomb", "process", added_cell("solved", FORK_BOMB), full),
    Case("process_memory_hog", "process", added_cell("solved", MEMORY_HOG), full),
    Case("process_disk_hog", "process", added_cell("solved", DISK_HOG), full),
    Case("process_sigint_ignoring_loop", "process",
         with_code("solved", -1, SIGINT_LOOP, "after"), without(-1)),
    Case("process_os_exit", "process", with_code("solved", 0, "import os\nos._exit(0)"),
         without(0)),
    # broken files are reported, never scored 0
    Case("broken_invalid_json", "broken", _text('{"cells": [\n'), ungraded),
    Case("broken_empty_file", "broken", _text(""), ungraded),
    Case("broken_json_list", "broken", _list_notebook, ungraded),
]
