"""The sandbox, attacked from inside: each cell below is hostile student code.

Every test runs real cells through the same runner and bubblewrap sandbox that grading uses,
and asserts what the code could see or do. Skipped only where no sandbox can be had (the
grader then refuses to run, which test_refuses_without_a_sandbox checks).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest

from course_ad.grading import sandbox as sandbox_module
from course_ad.grading.runner import GradingCell, run_pass
from course_ad.grading.sandbox import (
    FIRST_UID,
    Limits,
    Sandbox,
    SandboxUnavailableError,
    processes_of,
)

ROOT = Path(__file__).resolve().parent.parent
needs_sandbox = pytest.mark.skipif(bool(sandbox_module.unavailable_reason()),
                                   reason=sandbox_module.unavailable_reason() or "")


def run_cells(*sources: str, cell_seconds: float = 20.0, slot: int = 0, **limits):
    """Run the cells (display pass) and return, per cell, what it printed and its error."""
    cells = [GradingCell(i, "student", f"c{i}", s) for i, s in enumerate(sources)]
    box = Sandbox(Limits(cell_seconds=cell_seconds, **limits), slot=slot)
    run = run_pass(cells, box, "display", {})
    printed = []
    for cell in cells:
        result = run.cells[cell.index]
        text = "".join(o.get("text", "") for o in result.outputs if o.get("name") == "stdout")
        printed.append((text.strip(), result.error, result.stopped))
    return printed, run


def answer(code: str) -> str:
    """A cell that prints the JSON of the expression ``code``."""
    return f"import json as _j\nprint(_j.dumps({code}))"


@needs_sandbox
def test_student_code_sees_only_its_scratch_directory():
    secret_paths = [str(ROOT / "source"), str(ROOT / "nbgrader_config.py"), str(ROOT / "tests"),
                    str(ROOT / "course_ad" / "rules.py"), "/root", "/work", str(Path.home())]
    printed, _ = run_cells(
        answer("{p: os.path.exists(p) and bool(os.listdir(p) if os.path.isdir(p) else True)"
               f" for p in {secret_paths!r}}}").replace("import json as _j",
                                                        "import json as _j, os"),
        answer("[os.getcwd(), sorted(os.listdir('.')), sorted(os.listdir('/home'))]"
               ).replace("import json as _j", "import json as _j, os"),
    )
    seen = json.loads(printed[0][0])
    assert not seen[str(ROOT / "source")] and not seen[str(ROOT / "tests")]
    assert not seen[str(ROOT / "nbgrader_config.py")]
    assert not seen[str(ROOT / "course_ad" / "rules.py")], "the engine's source is visible"
    cwd, listing, home = json.loads(printed[1][0])
    assert cwd == "/home/student" and listing == [".grading"] and home == ["student"]


@needs_sandbox
def test_runs_unprivileged_with_a_read_only_system():
    printed, _ = run_cells(
        answer("[os.getuid(), os.geteuid()]").replace("import json as _j", "import json as _j, os"),
        "open('/usr/evil', 'w')",
        "open('/home/student/mine.txt', 'w').write('ok'); print(open('mine.txt').read())",
        "import sys, os; open(os.path.join(sys.prefix, 'pyvenv.cfg'), 'a').write('x')",
    )
    uid, euid = json.loads(printed[0][0])
    assert uid != 0 and euid != 0
    if os.geteuid() == 0:
        assert uid == FIRST_UID
    assert printed[1][1]["ename"] in ("OSError", "PermissionError")
    assert printed[2][0] == "ok"
    assert printed[3][1]["ename"] in ("OSError", "PermissionError")


@needs_sandbox
def test_no_network_even_to_this_machine():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        printed, _ = run_cells(f"import socket\nsocket.create_connection(('127.0.0.1', {port}),"
                               " timeout=3)")
    finally:
        server.close()
    assert printed[0][1]["ename"] in ("ConnectionRefusedError", "OSError", "TimeoutError")


@needs_sandbox
def test_engine_and_other_ad_libraries_cannot_be_imported():
    printed, _ = run_cells(
        "import course_ad.ops",
        "from course_ad import grad",
        "import autograd",
        "import sympy",
        "from course_ad.grading import check, counted\nfrom course_ad import data, viz\n"
        "print(viz.draw(1), callable(data.moons))",
        # search the whole file system for the rule table's source, as a cheat would
        "import os\nfound = [os.path.join(d, f) for d, _, fs in os.walk('/')"
        " if not d.startswith(('/proc', '/sys', '/dev')) for f in fs if f == 'rules.py'"
        " and 'course_ad' in d]\nprint(found)",
    )
    for i in range(4):
        assert printed[i][1]["ename"] in ("ImportError", "ModuleNotFoundError"), printed[i]
    assert "your own code" in printed[1][1]["evalue"] or "not available" in printed[1][1][
        "evalue"]
    assert printed[4][0] == "None True"
    assert printed[5][0] == "[]"


@needs_sandbox
def test_memory_processes_and_files_are_limited():
    printed, run = run_cells(
        "x = bytearray(3 * 1024**3)",
        "import os\nkids = []\ntry:\n    for _ in range(500):\n        pid = os.fork()\n"
        "        if pid == 0:\n            import time; time.sleep(30); os._exit(0)\n"
        "        kids.append(pid)\nexcept OSError as e:\n    print('stopped at', len(kids))",
        "open('big', 'wb').write(b'0' * (100 * 1024**2))",
        "import os\ntry:\n    for i in range(100):\n"
        "        open(f'f{i}', 'wb').write(os.urandom(1 << 20) * 60)\n"
        "except OSError as e:\n    print('full', e.errno)",
        memory_bytes=1 << 30, processes=32, scratch_bytes=128 << 20, file_bytes=64 << 20,
    )
    assert printed[0][1]["ename"] == "MemoryError"
    assert printed[1][0].startswith("stopped at") and int(printed[1][0].split()[-1]) < 32
    assert printed[2][1]["ename"] == "OSError"  # EFBIG: the file size limit
    assert printed[3][0].startswith("full")  # ENOSPC: the scratch tmpfs is full
    assert not run.incidents


@needs_sandbox
@pytest.mark.skipif(os.geteuid() != 0, reason="a dedicated uid needs root")
def test_daemons_end_with_the_notebook_and_killing_the_parent_changes_nothing():
    slot = 5
    printed, run = run_cells(
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        time.sleep(600)\n    os._exit(0)\nprint('detached')",
        "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.kill(1, signal.SIGKILL)\n"
        "print('still here')",
        "print('after')",
        slot=slot,
    )
    assert printed[0][0] == "detached"
    assert printed[2][0] == "after"
    time.sleep(0.5)
    assert not processes_of(FIRST_UID + slot), "a daemon outlived its notebook"


@needs_sandbox
def test_a_cell_that_ignores_sigint_or_kills_its_process_costs_only_itself():
    printed, run = run_cells(
        "x = 1",
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass",
        "import os\nos.kill(0, 9)",
        "print(x + 1)",
        cell_seconds=3,
    )
    assert printed[3][0] == "2"
    assert "stopped after 3 s" in printed[1][2]
    assert "ended its own process (killed by SIGKILL)" in printed[2][2]
    assert len(run.incidents) == 2


def test_refuses_without_a_sandbox(monkeypatch):
    monkeypatch.setattr(sandbox_module, "unavailable_reason", lambda: "bwrap is missing")
    with pytest.raises(SandboxUnavailableError, match="--unsandboxed"):
        Sandbox()
    unsafe = Sandbox(allow_unsandboxed=True)
    assert unsafe.describe().startswith("UNSANDBOXED")
