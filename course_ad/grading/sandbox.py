"""The sandbox every execution of student code runs in while grading (bubblewrap).

Inside: a private writable scratch directory (a size-limited tmpfs) holding that student's
notebook alone; the system, Python and its packages read-only; no network; its own process,
IPC and host-name namespaces, so the whole process tree (daemons included) ends with it;
limits on memory, processes, file size and open files. As root, student code runs as a
dedicated unprivileged uid; as an ordinary user, in a user namespace without capabilities.
course_ad's engine and other AD libraries are replaced by stubs that refuse to import:
scaffolding (checks, data, pictures) stays. Why: a notebook is hostile until proven otherwise,
and nothing it does may reach the gradebook, the instructor's files or other students.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import resource
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Limits", "Sandbox", "SandboxUnavailableError", "BLOCKED_PACKAGES", "SCRATCH"]

GIB, MIB = 1 << 30, 1 << 20
SCRATCH = "/home/student"  # the working directory inside the sandbox
BLOCKED_PACKAGES = ("autograd", "torch", "jax", "jaxlib", "tensorflow", "micrograd", "sympy",
                    "numdifftools", "mxnet", "theano", "pytensor", "tinygrad", "chainer")
FIRST_UID = 61000  # sandbox slot k runs as uid FIRST_UID + k (when grading as root)


@dataclass(frozen=True)
class Limits:
    """What one submission may use. Times: per cell, at least ``factor`` x the reference's."""

    memory_bytes: int = 2 * GIB
    processes: int = 64
    file_bytes: int = 64 * MIB
    scratch_bytes: int = 256 * MIB
    open_files: int = 256
    cell_seconds: float = 30.0
    factor: float = 10.0
    submission_seconds: float = 900.0

    def describe(self) -> str:
        return (f"memory {self.memory_bytes / GIB:g} GiB, {self.processes} processes, "
                f"files up to {self.file_bytes // MIB} MiB, scratch {self.scratch_bytes // MIB}"
                f" MiB, {self.open_files} open files, each cell max({self.cell_seconds:g} s, "
                f"{self.factor:g} x the reference's time), {self.submission_seconds:g} s "
                "per submission")


class SandboxUnavailableError(RuntimeError):
    """No sandbox can be had here, and running unsandboxed was not allowed explicitly."""


class Sandbox:
    """Builds the command that runs ``python -m course_ad.grading.worker`` in isolation."""

    def __init__(self, limits: Limits = Limits(), *, slot: int = 0,
                 allow_unsandboxed: bool = False,
                 blocked: Sequence[str] = BLOCKED_PACKAGES):
        self.limits, self.slot, self.blocked = limits, slot, tuple(blocked)
        problem = unavailable_reason()
        if problem and not allow_unsandboxed:
            raise SandboxUnavailableError(
                f"grading refuses to run student code without a sandbox: {problem}. Install "
                "bubblewrap (Debian: apt-get install bubblewrap) or, knowing that student code "
                "will then run with your rights, pass --unsandboxed")
        self.sandboxed = not problem
        self.problem = problem
        self._lib = _stub_library()

    def command(self, scratch: Path, argv: Sequence[str]) -> list[str]:
        """The full command line: bwrap (or nothing, unsandboxed) around ``argv``."""
        python = [sys.executable, "-I", "-X", "utf8"]
        if not self.sandboxed:
            return [*python, *argv]
        root = os.geteuid() == 0
        args = ["bwrap", "--die-with-parent", "--new-session", "--unshare-pid",
                "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                "--hostname", "grading", "--clearenv"]
        if not root:
            args += ["--unshare-user", "--uid", "65534", "--gid", "65534", "--disable-userns"]
        for path in ("/usr", "/etc/alternatives", "/etc/ld.so.cache", "/etc/localtime",
                     "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/ssl"):
            args += ["--ro-bind-try", path, path]
        for link in ("bin", "lib", "lib64", "sbin"):
            target = os.readlink(f"/{link}") if os.path.islink(f"/{link}") else None
            if target:
                args += ["--symlink", target, f"/{link}"]
            else:
                args += ["--ro-bind-try", f"/{link}", f"/{link}"]
        args += ["--proc", "/proc", "--dev", "/dev",
                 "--perms", "1777", "--size", str(64 * MIB), "--tmpfs", "/tmp",
                 "--perms", "0777", "--size", str(self.limits.scratch_bytes),
                 "--tmpfs", SCRATCH]
        for prefix in _python_prefixes():
            args += ["--ro-bind", prefix, prefix]
        empty = str(self._lib / "empty")
        for site in _base_site_packages():  # the interpreter's own packages: not the venv's
            args += ["--ro-bind", empty, site]
        args += ["--ro-bind", str(self._lib / "course_ad"), str(_course_ad_dir())]
        for name in self.blocked:
            for location in _package_locations(name):
                args += ["--ro-bind", str(self._lib / "blocked" / name), location]
        args += ["--ro-bind", str(scratch / "in"), f"{SCRATCH}/.grading",
                 "--chdir", SCRATCH]
        args += _open_parents(args)
        env = {"HOME": SCRATCH, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
               "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp/matplotlib",
               "IPYTHONDIR": "/tmp/ipython", "OPENBLAS_NUM_THREADS": "1",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
               "PYTHONHASHSEED": "0", "TQDM_DISABLE": "0"}
        for key, value in env.items():
            args += ["--setenv", key, value]
        drop: list[str] = []
        if root:
            uid = str(FIRST_UID + self.slot)
            drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                    "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
        return [*args, "--", *drop, *python, *argv]

    def preexec(self) -> Callable[[], None]:
        """Resource limits, set in the child just before bwrap starts (inherited inward)."""
        limits, root = self.limits, os.geteuid() == 0
        processes = limits.processes if root else _own_processes() + limits.processes

        def apply() -> None:
            os.setsid()
            for which, value in ((resource.RLIMIT_AS, limits.memory_bytes),
                                 (resource.RLIMIT_FSIZE, limits.file_bytes),
                                 (resource.RLIMIT_NOFILE, limits.open_files),
                                 (resource.RLIMIT_NPROC, processes),
                                 (resource.RLIMIT_CORE, 0)):
                resource.setrlimit(which, (value, value))

        return apply

    def describe(self) -> str:
        if not self.sandboxed:
            return f"UNSANDBOXED ({self.problem}); limits: {self.limits.describe()}"
        who = f"uid {FIRST_UID + self.slot}" if os.geteuid() == 0 else "a user namespace"
        return (f"bubblewrap sandbox as {who}, no network, read-only system; limits: "
                f"{self.limits.describe()}")


def _open_parents(args: list[str]) -> list[str]:
    """--chmod 0755 on the directories bwrap made above each mount point.

    bwrap copies the host's modes onto them (/root is 0700), which would lock the
    unprivileged student out of the interpreter it must run."""
    binds = {args[i + 2] for i, a in enumerate(args) if a in ("--ro-bind", "--ro-bind-try",
                                                                "--bind", "--tmpfs", "--proc",
                                                                "--dev") and i + 2 < len(args)}
    binds |= {args[i + 1] for i, a in enumerate(args) if a in ("--tmpfs", "--proc", "--dev")}
    parents: set[str] = set()
    for target in binds:
        parent = os.path.dirname(target)
        while parent not in ("/", ""):
            parents.add(parent)
            parent = os.path.dirname(parent)
    inside = [p for p in parents
              if any(p == b or p.startswith(b.rstrip("/") + "/") for b in binds)]
    chmods: list[str] = []
    for path in sorted(set(parents) - set(inside)):
        chmods += ["--chmod", "0755", path]
    return chmods


def unavailable_reason() -> str:
    """'' when bubblewrap works here; otherwise why not."""
    if platform.system() != "Linux":
        return f"bubblewrap needs Linux, and this is {platform.system()}"
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed"
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        return "setpriv (util-linux) is missing, so student code cannot drop root"
    return ""


# --------------------------------------------------------------------------------------
# What the sandbox sees of Python: the interpreter, the venv, and course_ad as a stub
# --------------------------------------------------------------------------------------


def _python_prefixes() -> list[str]:
    """The interpreter's installation and the environment's (read-only inside)."""
    prefixes = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)}
    executable = os.path.realpath(sys.executable)
    if not any(executable.startswith(p + os.sep) for p in prefixes):
        prefixes.add(os.path.dirname(os.path.dirname(executable)))
    return sorted(p for p in prefixes if not p.startswith("/usr"))


def _base_site_packages() -> list[str]:
    """The base interpreter's own site-packages, hidden when a virtual environment is used."""
    if os.path.realpath(sys.prefix) == os.path.realpath(sys.base_prefix):
        return []
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    base = Path(sys.base_prefix) / "lib" / version
    return [str(p) for p in (base / "site-packages", base / "dist-packages") if p.is_dir()]


def _course_ad_dir() -> Path:
    return Path(__file__).resolve().parent.parent


def _package_locations(name: str) -> list[str]:
    """Where an installed package lives, without importing it (every copy on sys.path)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    locations = list(spec.submodule_search_locations or [])
    return [os.path.realpath(p) for p in locations if os.path.isdir(p)]


_STUB_INIT = '''"""course_ad while grading: scaffolding only. The engine cannot be imported here."""

import importlib

_ALLOWED = {"grading", "data", "viz"}


def __getattr__(name):
    if name in _ALLOWED:
        return importlib.import_module(f"{__name__}.{name}")
    raise ImportError(
        f"course_ad.{name} is not available while your notebook is graded: answers must be "
        "your own code (numpy and Python). Only course_ad.grading, course_ad.data and "
        "course_ad.viz exist here.")
'''

_STUB_GRADING = '''"""course_ad.grading while grading: what test cells use."""

from .checks import (check, close, counted, is_topological_order, order_names, own_work,
                     raised, report)
'''

_STUB_VIZ = '''"""Pictures are not drawn while a notebook is graded: every function returns None."""


def __getattr__(name):
    return lambda *args, **kwargs: None
'''

_BLOCKED = '''raise ImportError("{name} is not available while your notebook is graded: "
                  "answers must be your own code (numpy and Python)")
'''

_LIBRARY: dict[str, Path] = {}


def _stub_library() -> Path:
    """A temporary tree (made once per process) of what replaces course_ad and AD packages."""
    if "path" in _LIBRARY and _LIBRARY["path"].is_dir():
        return _LIBRARY["path"]
    lib = Path(tempfile.mkdtemp(prefix="course_ad-sandbox-lib-"))
    real = _course_ad_dir()
    package = lib / "course_ad"
    (package / "grading").mkdir(parents=True)
    (package / "__init__.py").write_text(_STUB_INIT)
    shutil.copy(real / "data.py", package / "data.py")
    (package / "viz.py").write_text(_STUB_VIZ)
    (package / "grading" / "__init__.py").write_text(_STUB_GRADING)
    for name in ("checks.py", "compare.py", "worker.py"):
        shutil.copy(real / "grading" / name, package / "grading" / name)
    (lib / "empty").mkdir()
    for name in BLOCKED_PACKAGES:
        (lib / "blocked" / name).mkdir(parents=True)
        (lib / "blocked" / name / "__init__.py").write_text(_BLOCKED.format(name=name))
    for path in [lib, *lib.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    _LIBRARY["path"] = lib
    return lib


def processes_of(uid: int) -> dict[int, int]:
    """The processes a uid runs now, with their thread counts (RLIMIT_NPROC counts threads)."""
    found: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = dict(line.split(":", 1) for line in
                          Path(f"/proc/{entry}/status").read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if int(status.get("Uid", "-1").split()[0]) == uid:
            found[int(entry)] = int(status.get("Threads", "1").split()[0])
    return found


def _own_processes() -> int:
    return sum(processes_of(os.getuid()).values())
