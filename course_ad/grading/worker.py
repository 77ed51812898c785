"""Runs inside the sandbox: executes a notebook's cells in order and reports what happened.

Reads the plan the trusted runner wrote (``.grading/plan.json``), runs each cell with an
IPython shell (magics work; no kernel, no history), and writes one JSON line per event to
the file descriptor it was given: a cell's start, its outputs (display pass), the checks its
test sent (verdict pass), its error, its end. In the verdict pass the hidden part of a test
runs in a forked child, so nothing a test does reaches the next task. Why a plain process and
not a kernel: nothing of the student's own session (transformers, hooks) comes along, and
the runner can stop and restart it at any cell.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from typing import Any

MAX_TEXT = 100_000  # characters of one stream output kept


def main(argv: list[str]) -> int:
    channel = int(argv[0])
    with open(argv[1], encoding="utf-8") as handle:
        plan = json.load(handle)
    send = _sender(channel)
    shell = _shell()
    from course_ad.grading import checks

    recorder = checks.Recorder(send)
    checks._SINK = recorder
    display = plan["mode"] == "display"
    worker = os.getpid()
    for cell in plan["cells"]:
        if os.getpid() != worker:  # a process the student's code forked came back here: stop
            os._exit(0)
        index = cell["index"]
        if cell.get("skip"):
            send({"event": "skipped", "index": index, "reason": cell["skip"]})
            continue
        send({"event": "start", "index": index, "part": "visible"})
        recorder.begin(cell.get("id", ""))
        started = time.perf_counter()
        outputs, error = _run(shell, cell["source"], display)
        send({"event": "done", "index": index, "part": "visible", "outputs": outputs,
              "error": error, "seconds": time.perf_counter() - started})
        if os.getpid() != worker:
            os._exit(0)
        if cell.get("hidden") and not display:
            _run_hidden(shell, cell, send, recorder)
    if os.getpid() == worker:
        send({"event": "finished"})
    return 0


def _run_hidden(shell: Any, cell: dict[str, Any], send: Any, recorder: Any) -> None:
    """The hidden part of a test, in a child process: its state dies with it."""
    index, limit = cell["index"], float(cell["limit"])
    send({"event": "start", "index": index, "part": "hidden"})
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: run, report, leave without running anyone's exit handlers
        tester = os.getpid()
        recorder.begin(cell.get("id", ""), "hidden")
        try:
            _, error = _run(shell, cell["hidden"], False)
            if os.getpid() != tester:  # forked by the code under test: not the tester
                os._exit(0)
            send({"event": "done", "index": index, "part": "hidden", "outputs": [],
                  "error": error, "seconds": time.perf_counter() - started})
        finally:
            os._exit(0)
    status = _wait(pid, limit)
    if status is None:
        send({"event": "stopped", "index": index, "part": "hidden",
              "reason": f"stopped after {limit:g} s"})
    elif status != 0:
        send({"event": "stopped", "index": index, "part": "hidden", "reason": status})


def _wait(pid: int, limit: float) -> int | str | None:
    """0 when the child ended normally, a reason when it died, None when it ran too long."""
    deadline = time.monotonic() + limit
    delay = 0.001
    while time.monotonic() < deadline:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return "the test process vanished"
        if done:
            if os.WIFSIGNALED(status):
                number = os.WTERMSIG(status)
                return f"the test process was killed by {signal.Signals(number).name}"
            code = os.WEXITSTATUS(status)
            return 0 if code == 0 else f"the test process exited with code {code}"
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def _run(shell: Any, source: str, keep_outputs: bool) -> tuple[list[dict], dict | None]:
    """Run one cell; its outputs as nbformat dicts and its error (or None)."""
    from IPython.utils.capture import capture_output

    shell.course_ad_results = []
    with capture_output(stdout=True, stderr=True, display=True) as captured:
        result = shell.run_cell(source, store_history=False, silent=False)
    outputs: list[dict] = []
    if keep_outputs:
        for name, text in (("stdout", captured.stdout), ("stderr", captured.stderr)):
            if text:
                outputs.append({"output_type": "stream", "name": name,
                                "text": text[:MAX_TEXT]})
        for rich in captured.outputs:
            outputs.append({"output_type": "display_data", "data": _text_data(rich.data),
                            "metadata": {}})
        outputs += shell.course_ad_results
    failure = result.error_in_exec or result.error_before_exec
    error = None
    if failure is not None:
        lines = traceback.format_exception(type(failure), failure, failure.__traceback__)
        error = {"ename": type(failure).__name__, "evalue": str(failure)[:2000],
                 "traceback": [line[:2000] for line in lines[-12:]]}
    return outputs, error


def _text_data(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value if isinstance(value, str) else json.loads(json.dumps(value, default=str))
            for key, value in data.items()
            if key in ("text/plain", "text/html", "image/png", "image/svg+xml", "text/latex",
                       "text/markdown")}


def _shell() -> Any:
    """An IPython shell without history or colours whose results become execute_result."""
    from IPython.core.displayhook import DisplayHook
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    class Results(DisplayHook):
        def write_output_prompt(self) -> None:
            pass

        def write_format_data(self, format_dict: dict, md_dict: Any = None) -> None:
            self.shell.course_ad_results.append(
                {"output_type": "execute_result", "data": _text_data(format_dict),
                 "metadata": {}, "execution_count": None})

    config = Config()
    config.HistoryManager.enabled = False
    config.InteractiveShell.colors = "NoColor"
    config.InteractiveShell.xmode = "Plain"
    shell = InteractiveShell.instance(config=config)
    shell.displayhook = Results(shell=shell, cache_size=0)
    sys.displayhook = shell.displayhook
    shell.course_ad_results = []
    shell.showtraceback = lambda *args, **kwargs: None  # errors travel as events instead
    shell.enable_gui = lambda gui=None: None  # %matplotlib inline needs no event loop here
    shell.run_cell("import matplotlib\nmatplotlib.use('Agg')", store_history=False)
    return shell


def _sender(channel: int) -> Any:
    """Write one event as one JSON line to the runner's pipe."""

    def send(event: dict[str, Any]) -> None:
        data = (json.dumps(event, default=str) + "\n").encode()
        view = memoryview(data)
        while view:
            written = os.write(channel, view)
            view = view[written:]

    return send


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
