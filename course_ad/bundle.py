"""The student bundle: what students install, and nothing of the instructor's.

``python -m course_ad.bundle --out dist`` (``make student-bundle``) writes
``dist/course_ad-student/`` and ``dist/course_ad-student.zip``: the release notebooks, the
lecture notebooks and the ``course_ad`` package that both import (pictures, widgets, data,
the checks the visible tests call), with a README, a pyproject and a Makefile whose
``make lab`` installs it and opens JupyterLab. It is built from an allow-list, never by
copying the repository and deleting: ``source/``, ``references/``, the gradebook,
submissions and feedback cannot get in, and ``audit`` checks the result before it is zipped.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tomllib
from pathlib import Path

__all__ = ["NAME", "build", "audit", "main"]

NAME = "course_ad-student"
# what must never reach a student, wherever it sits in the bundle
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
           "BEGIN MARK SCHEME")
FORBIDDEN_DIRS = {"source", "references", "submitted", "autograded", "feedback", "exchange",
                  "backup", "release"}
FORBIDDEN_SUFFIXES = {".db", ".sqlite", ".sqlite3", ".csv"}
# the course's dependencies that only the instructor needs (grading, feedback pages)
INSTRUCTOR_ONLY = ("nbgrader", "jupyter-server-mathjax")


def build(root: str | Path = ".", out: str | Path = "dist") -> Path:
    """Write the bundle folder and its zip under ``out``; return the folder."""
    root, out = Path(root).resolve(), Path(out).resolve()
    bundle = out / NAME
    if bundle.exists():
        shutil.rmtree(bundle)
    bundle.mkdir(parents=True)
    for notebook in sorted((root / "release").glob("*/*.ipynb")):
        target = bundle / "assignments" / notebook.parent.name / notebook.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(notebook, target)
    (bundle / "lectures").mkdir()
    for notebook in sorted((root / "notebooks").glob("*.ipynb")):
        shutil.copy2(notebook, bundle / "lectures" / notebook.name)
    shutil.copytree(root / "course_ad", bundle / "course_ad",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
    (bundle / "pyproject.toml").write_text(_pyproject(root))
    (bundle / "Makefile").write_text(MAKEFILE)
    (bundle / "README.md").write_text(README.format(
        assignments="\n".join(f"- `assignments/{p.name}/{p.name}.ipynb`"
                              for p in sorted((bundle / "assignments").iterdir()))))
    problems = audit(bundle)
    if problems:
        raise RuntimeError("the student bundle would give away instructor material:\n  "
                           + "\n  ".join(problems))
    archive = shutil.make_archive(str(out / NAME), "zip", root_dir=out, base_dir=NAME)
    print(f"student bundle: {bundle} and {archive}")
    return bundle


def audit(bundle: str | Path) -> list[str]:
    """What in ``bundle`` a student must not get: instructor folders, databases, notebooks
    with solution or hidden-test markers. An empty list means it can be handed out."""
    bundle = Path(bundle)
    problems = []
    for path in sorted(bundle.rglob("*")):
        relative = path.relative_to(bundle)
        if FORBIDDEN_DIRS & set(relative.parts[:-1] if path.is_file() else relative.parts):
            problems.append(f"{relative}: instructor folder")
        elif path.suffix in FORBIDDEN_SUFFIXES:
            problems.append(f"{relative}: a {path.suffix} file (gradebook or grades)")
        elif path.suffix == ".ipynb":
            text = "".join("".join(cell.get("source", ""))
                           for cell in json.loads(path.read_text())["cells"])
            problems += [f"{relative}: contains {marker}" for marker in MARKERS
                         if marker in text]
    return problems


def _pyproject(root: Path) -> str:
    """The course's pyproject, reduced to what students need: no nbgrader, no extras."""
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    dependencies = [d for d in project["dependencies"]
                    if not d.replace("_", "-").lower().startswith(INSTRUCTOR_ONLY)]
    lines = "\n".join(f"    {json.dumps(d)}," for d in dependencies)
    return PYPROJECT.format(version=project["version"], python=project["requires-python"],
                            dependencies=lines)


PYPROJECT = """\
[build-system]
requires = ["setuptools>=70.1"]  # builds wheels without the `wheel` package
build-backend = "setuptools.build_meta"

[project]
name = "course-ad"
version = "{version}"
description = "Automatic differentiation, the course: assignments, lectures and course_ad."
requires-python = "{python}"
dependencies = [
{dependencies}
]

[tool.setuptools.packages.find]
include = ["course_ad*"]

[tool.setuptools.package-data]
"course_ad.grading" = ["templates/*/*.j2"]
"""

MAKEFILE = """\
# `make lab`: creates .venv, installs course_ad and JupyterLab, opens the assignments.
PYTHON ?= python3
PORT ?= 8888

.PHONY: lab clean

.venv/.installed: pyproject.toml
\t$(PYTHON) -m venv .venv
\t.venv/bin/python -m pip install --quiet --upgrade pip
\t.venv/bin/python -m pip install --quiet .
\t@touch $@

lab: .venv/.installed  ## JupyterLab on 127.0.0.1; the URL with its token comes last
\t@PATH="$(CURDIR)/.venv/bin:$$PATH" .venv/bin/python -m course_ad.lab --port $(PORT)

clean:
\trm -rf .venv build
"""

README = """\
# Automatic differentiation: the course (student bundle)

Everything you need to do the assignments and run the lectures on your own machine.

```bash
make lab      # creates .venv, installs what the course needs, opens JupyterLab
```

`make lab` prints the address to open as its last line (`http://127.0.0.1:8888/lab?token=...`).
Without `make`: `python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/jupyter lab`.
You need Python 3.11 or newer and access to PyPI for the first install.

## What is here

- `assignments/`: the graded notebooks, one folder each:
{assignments}
- `lectures/`: the lecture notebooks (pictures, step-through explorers, the MLP trainer).
- `course_ad/`: the library the notebooks import; `import course_ad` works in every notebook.

## Doing an assignment

Open the notebook, fill in every `YOUR CODE HERE`, and run the test cell under each task:
it shows what "right" looks like. Your instructor also runs further tests when grading.
Before you hand in: *Kernel → Restart Kernel and Run All Cells*, then save, and hand in the
`.ipynb` file as your instructor asks (keep its name).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_ad.bundle", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path("."), help="the course repository")
    parser.add_argument("--out", type=Path, default=Path("dist"))
    args = parser.parse_args(argv)
    if not (args.root / "release").is_dir():
        print(f"{args.root.resolve()} has no release/: run this in the course repository "
              "after `make release`", file=sys.stderr)
        return 2
    try:
        build(args.root, args.out)
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
