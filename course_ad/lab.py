"""Start JupyterLab on 127.0.0.1 with a fresh token and print its URL as the last line.

``python -m course_ad.lab --instructor`` is ``make lab`` in the course repository;
``python -m course_ad.lab`` is ``make lab`` in the student bundle. JupyterLab's own log goes
to a file, so that the line to click is the last one on the terminal.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["main", "free_port", "wait_until_up"]

INSTRUCTOR_NOTE = ("instructor view: source/ holds solutions and hidden tests; "
                   "students use `make student-bundle`")


def free_port(preferred: int, host: str = "127.0.0.1") -> int:
    """``preferred`` if nothing listens there, else a port the system picks.

    Jupyter would move to the next port by itself, and the URL we print would be wrong."""
    with socket.socket() as probe:
        try:
            probe.bind((host, preferred))
            return preferred
        except OSError:
            probe.bind((host, 0))
            return probe.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, timeout: float) -> bool:
    """Poll the server's status API until it answers 200, the process ends, or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                if reply.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_ad.lab", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path("."), help="folder JupyterLab shows")
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--log", type=Path, default=Path("build/jupyter-lab.log"),
                        help="JupyterLab's log (relative paths are under --root)")
    parser.add_argument("--instructor", action="store_true",
                        help="say that this view shows the instructor's material")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds to wait for JupyterLab to answer")
    args, extra = parser.parse_known_args(argv)
    root = args.root.resolve()
    log = args.log if args.log.is_absolute() else root / args.log
    log.parent.mkdir(parents=True, exist_ok=True)
    port = free_port(args.port)
    token = secrets.token_hex(24)
    if args.instructor:
        print(INSTRUCTOR_NOTE)
    if port != args.port:
        print(f"port {args.port} is busy: using {port}")
    print(f"JupyterLab's log: {log}")
    # nbgrader runs programs of its environment (`alembic` when formgrader creates the
    # gradebook): that environment's bin/ must come first on PATH, or formgrader hangs
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ, JUPYTER_TOKEN=token,  # in the environment, not in `ps`
               PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    command = [sys.executable, "-m", "jupyterlab", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
               f"--ServerApp.root_dir={root}",
               f"--ServerApp.open_browser={not args.no_browser}", *extra]
    if hasattr(os, "getuid") and os.getuid() == 0:
        command.append("--allow-root")
    with open(log, "a") as handle:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=handle,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    # `kill` of this launcher (SIGTERM) stops JupyterLab too, as Ctrl-C does
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        if not wait_until_up(f"{base}/api/status?token={token}", process, args.timeout):
            tail = log.read_text().splitlines()[-20:]
            print("\n".join(tail), file=sys.stderr)
            print(f"JupyterLab did not start within {args.timeout:.0f} s; its log is {log}",
                  file=sys.stderr)
            return 1
        print("Ctrl-C stops JupyterLab. Open:")
        print(f"{base}/lab?token={token}", flush=True)
        return process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if JupyterLab has not shut down within 20 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

if __name__ == "__main__":
    sys.exit(main())
