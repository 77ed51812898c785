"""The instructor's view and what reaches students: the student bundle, `make release` that
keeps hand edits, the local exchange, offline feedback pages and `make lab` on a fresh course.

Servers listen on 127.0.0.1 only; nothing here reaches the network (the bundle is built and
installed with what `make test` installed).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

from course_ad import bundle, grading
from course_ad.grading import offline
from course_ad.grading import sandbox as sandbox_module
from course_ad.lab import INSTRUCTOR_NOTE, free_port

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
ASSIGNMENTS = grading.assignments(ROOT)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# `make release` records the reference values in the sandbox, and grading runs there
needs_sandbox = pytest.mark.skipif(bool(sandbox_module.unavailable_reason()),
                                   reason=sandbox_module.unavailable_reason() or "")


@pytest.fixture(autouse=True)
def isolated_jupyter(tmp_path, monkeypatch):
    """nbgrader and Jupyter read config from the user's folders: keep a developer's out."""
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "jupyter-config"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter-runtime"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))


def _course(tmp_path: Path, *assignments: str) -> Path:
    """A fresh course: nbgrader_config.py and the given assignments' source folders."""
    course = tmp_path / "course"
    for assignment in assignments:
        shutil.copytree(ROOT / "source" / assignment, course / "source" / assignment)
    course.mkdir(exist_ok=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    return course


# ---- the student bundle ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def student_bundle(tmp_path_factory) -> Path:
    return bundle.build(ROOT, tmp_path_factory.mktemp("dist"))


def _solution_lines(assignment: str) -> list[str]:
    """Lines of the instructor's answers that the release does not hand out anyway."""
    source = nbformat.read(ROOT / "source" / assignment / f"{assignment}.ipynb", 4)
    given = "\n".join(re.sub(r"### BEGIN SOLUTION.*?### END SOLUTION", "", c.source, flags=re.S)
                      for c in source.cells)
    answers = "".join(m for c in source.cells
                      for m in re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION",
                                          c.source, re.S))
    return [line.strip() for line in answers.splitlines()  # a signature is no solution
            if len(line.strip()) > 20 and line.strip() not in given
            and not line.strip().startswith(("def ", "class "))]


def test_student_bundle_holds_the_release_the_lectures_and_course_ad(student_bundle):
    released = sorted(p.relative_to(ROOT / "release") for p in (ROOT / "release").glob("*/*.ipynb"))
    shipped = sorted(p.relative_to(student_bundle / "assignments")
                     for p in (student_bundle / "assignments").rglob("*.ipynb"))
    assert shipped == released and len(shipped) == len(ASSIGNMENTS) == 7
    for relative in released:
        assert (student_bundle / "assignments" / relative).read_bytes() == (
            ROOT / "release" / relative).read_bytes()
    lectures = sorted(p.name for p in (student_bundle / "lectures").glob("*.ipynb"))
    assert lectures == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert (student_bundle / "course_ad" / "__init__.py").is_file()
    assert (student_bundle / "course_ad" / "grading" / "checks.py").is_file()
    assert (student_bundle.parent / f"{bundle.NAME}.zip").is_file()
    readme = (student_bundle / "README.md").read_text()
    assert "make lab" in readme and "assignments/03_reverse_mode/03_reverse_mode.ipynb" in readme
    assert "source" not in readme.lower().split() and "seed" not in readme.lower()
    assert "course_ad.lab" in (student_bundle / "Makefile").read_text()


def test_student_bundle_gives_away_no_instructor_material(student_bundle):
    assert bundle.audit(student_bundle) == []
    files = [p for p in student_bundle.rglob("*") if p.is_file()]
    folders = {part for p in files for part in p.relative_to(student_bundle).parts[:-1]}
    assert not folders & {"source", "references", "release", "submitted", "autograded",
                          "feedback", "exchange", "backup"}, folders
    assert not [p for p in files if p.suffix in {".db", ".csv"} or "gradebook" in p.name]
    # what students see anyway: the lectures, and every release (test_course checks that a
    # release holds none of its own assignment's hidden tests or answers)
    public = "\n".join(p.read_text() for p in [*(ROOT / "notebooks").glob("*.ipynb"),
                                                 *(ROOT / "release").glob("*/*.ipynb"),
                                                 *(ROOT / "course_ad").rglob("*.py")])
    # the library ships to students: a line it shares with a hidden test is no secret
    secrets = {line for a in ASSIGNMENTS for line in grading.hidden_test_lines(
        ROOT / "source" / a / f"{a}.ipynb") if line not in public}  # a lecture may show it
    answers = {line for a in ASSIGNMENTS for line in _solution_lines(a) if line not in public}
    assert len(secrets) > 30 and len(answers) > 30  # the check below has something to find
    for path in files:
        text = path.read_text(errors="replace")
        name = path.relative_to(student_bundle).as_posix()
        if not name.startswith("course_ad/"):  # the library names the markers to strip them
            for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
                assert marker not in text, f"{name} contains {marker}"
        leaked = [line for line in secrets if line in text]
        assert not leaked, f"{name} holds hidden test lines: {leaked[:3]}"
        if path.suffix == ".ipynb":
            shown = [line for line in answers if line in text]
            assert not shown, f"{name} holds solution lines: {shown[:3]}"


def test_audit_names_what_must_not_reach_students(tmp_path):
    (tmp_path / "source" / "01").mkdir(parents=True)
    (tmp_path / "source" / "01" / "01.ipynb").write_text("{}")
    (tmp_path / "gradebook.db").write_text("")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "x = 1\n### BEGIN HIDDEN TESTS\nassert x\n### END HIDDEN TESTS")])
    (tmp_path / "assignments").mkdir()
    nbformat.write(notebook, tmp_path / "assignments" / "a.ipynb")
    problems = bundle.audit(tmp_path)
    assert "source: instructor folder" in problems
    assert "source/01/01.ipynb: instructor folder" in problems
    assert "gradebook.db: a .db file (gradebook or grades)" in problems
    assert "assignments/a.ipynb: contains BEGIN HIDDEN TESTS" in problems


def test_student_bundle_installs_and_imports_offline(student_bundle, tmp_path):
    project = tmp_path / "bundle"
    shutil.copytree(student_bundle, project)  # building writes build/ next to the sources
    target = tmp_path / "site"
    run = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                          "--no-build-isolation", "--no-index", "--target", str(target),
                          str(project)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    probe = ("import course_ad, course_ad.grading, course_ad.grading.checks, course_ad.lab\n"
             "from course_ad import ReverseDiff\n"
             "x = ReverseDiff(3.0); y = x * x; y.backward()\n"
             "print(course_ad.__file__, x.grad)")
    env = dict(os.environ, PYTHONPATH=str(target))
    imported = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
    assert imported.returncode == 0, imported.stderr
    where, gradient = imported.stdout.split()
    assert Path(where).is_relative_to(target) and float(gradient) == 6.0
    assert (target / "course_ad" / "grading" / "templates" / "base" / "mathjax.html.j2").is_file()
    metadata = (next(target.glob("course_ad-*.dist-info")) / "METADATA").read_text()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist")]
    assert any("jupyterlab" in r for r in requires) and any("numpy" in r for r in requires)
    assert not [r for r in requires if re.search(r"nbgrader|pytest|hypothesis|playwright", r)]


def test_make_student_bundle_is_a_make_target():
    run = subprocess.run(["make", "-n", "student-bundle"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0 and "course_ad.bundle" in run.stdout, run.stdout + run.stderr


# ---- make lab installs the course, not the test suite -------------------------------------


def test_course_dependencies_leave_the_test_tools_to_the_test_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=!\[ ;]", d)[0].lower() for d in project["dependencies"]}
    tools = {"pytest", "hypothesis", "playwright", "nbval", "ruff", "autograd"}
    assert not names & tools, names & tools
    assert {"jupyterlab", "nbgrader", "jupyter-server-mathjax"} <= names
    test = {re.split(r"[<>=!\[ ;]", d)[0].lower() for d in project["optional-dependencies"]["test"]}
    assert tools <= test


def test_make_lab_installs_without_extras_and_starts_the_instructor_launcher():
    run = subprocess.run(["make", "-n", "-W", "pyproject.toml", "lab"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    installs = [line for line in run.stdout.splitlines() if "pip install" in line]
    assert installs and all("[" not in line for line in installs), installs
    assert "course_ad.lab --instructor" in run.stdout
    assert re.search(r"PATH=\S*\.venv/bin:", run.stdout), run.stdout  # alembic for formgrader


# ---- make release keeps what someone edited by hand ---------------------------------------


@needs_sandbox
def test_release_keeps_every_file_it_would_overwrite_and_says_which(tmp_path):
    course = _course(tmp_path)
    assignment = _tiny_source(course)
    released = course / "release" / assignment / f"{assignment}.ipynb"
    extra = released.parent / "hints.md"  # a file nbgrader --force would delete
    extra.parent.mkdir(parents=True)
    extra.write_text("a file someone added by hand")

    first = grading.release(course)  # no release recorded yet: anything that differs is kept
    assert first.ok, first.problems
    kept = list((course / "backup").glob(f"release-*/{assignment}/hints.md"))
    assert len(kept) == 1 and kept[0].read_text() == "a file someone added by hand"
    assert [d for d in first.done if "kept in" in d] == [
        f"release/{assignment}/hints.md differed from this release and no earlier one is "
        f"recorded: that version is kept in {kept[0].relative_to(course).as_posix()}"]
    generated = released.read_bytes()

    again = grading.release(course)  # untouched since: regenerated in silence
    assert again.ok and not [d for d in again.done if "kept in" in d], again.done
    assert released.read_bytes() == generated

    edited = generated.replace(b"YOUR CODE HERE", b"my own notes", 1)
    assert edited != generated
    released.write_bytes(edited)
    result = grading.release(course)
    assert result.ok, result.problems
    assert released.read_bytes() == generated  # the release is what source/ says
    backups = list((course / "backup").glob(f"release-*/{assignment}/{assignment}.ipynb"))
    assert len(backups) == 1 and backups[0].read_bytes() == edited
    assert [d for d in result.done if "kept in" in d] == [
        f"release/{assignment}/{assignment}.ipynb had been edited since the last release: "
        f"that version is kept in {backups[0].relative_to(course).as_posix()}"]


# ---- the exchange -------------------------------------------------------------------------


def test_config_puts_the_exchange_in_the_course(tmp_path):
    from traitlets.config.loader import PyFileConfigLoader

    course = _course(tmp_path)
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    exchange = course / "exchange"
    assert Path(config.Exchange.root) == exchange
    assert exchange.is_dir() and stat.S_IMODE(exchange.stat().st_mode) == 0o777
    assert "exchange/" in (ROOT / ".gitignore").read_text().split()
    assert config.CourseDirectory.course_id == "course-ad"  # the rest of the file still applies
    assert config.GenerateFeedback.preprocessors[-1] == "course_ad.grading.offline.LocalMathJax"


# ---- feedback renders its maths offline ---------------------------------------------------


def _tiny_source(course: Path) -> str:
    """One task with maths in its text, in source/maths/maths.ipynb."""
    cells = [
        nbformat.v4.new_code_cell("from course_ad.grading import check"),
        nbformat.v4.new_markdown_cell("The derivative of $x^2$ is $$\\frac{d}{dx} x^2 = 2x.$$"),
        nbformat.v4.new_code_cell("def slope(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n"
                                  "    ### END SOLUTION"),
        nbformat.v4.new_code_cell('check("slope(3)", slope(3.0), 6.0)\n### BEGIN HIDDEN TESTS\n'
                                  'check("slope(-1.5), exactly", slope(-1.5), how="equal")\n'
                                  "### END HIDDEN TESTS"),
    ]
    cells[0].metadata["nbgrader"] = {"grade": False, "solution": False, "locked": True,
                                     "grade_id": "setup", "schema_version": 3}
    cells[2].metadata["nbgrader"] = {"grade": False, "solution": True, "locked": False,
                                     "grade_id": "slope", "schema_version": 3}
    cells[3].metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True,
                                     "grade_id": "test_slope", "points": 1, "schema_version": 3}
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    (course / "source" / "maths").mkdir(parents=True)
    nbformat.write(notebook, course / "source" / "maths" / "maths.ipynb")
    return "maths"


def _tiny_assignment(course: Path) -> str:
    """The task above released, answered by ada and autograded by nbgrader itself."""
    assignment = _tiny_source(course)
    assert grading.release(course).ok
    (course / "submitted" / "ada" / assignment).mkdir(parents=True)
    shutil.copy(course / "source" / assignment / f"{assignment}.ipynb",
                course / "submitted" / "ada" / assignment / f"{assignment}.ipynb")
    run = grading.pipeline._nbgrader(course, "autograde", assignment, "--force")
    assert (course / "autograded" / "ada" / assignment / f"{assignment}.ipynb").is_file(), (
        run.stderr)
    return assignment


@pytest.fixture(scope="module")
def feedback_page(tmp_path_factory) -> Path:
    course = _course(tmp_path_factory.mktemp("feedback"))
    assignment = _tiny_assignment(course)
    result = grading.feedback(course)
    assert result.ok, result.problems
    return course / "feedback" / "ada" / assignment / f"{assignment}.html"


@needs_sandbox
def test_feedback_loads_mathjax_from_the_feedback_folder_not_a_cdn(feedback_page):
    text = feedback_page.read_text()
    assert offline.remote_resources(feedback_page) == []
    assert not re.search(r"cdn|cloudflare|jsdelivr|unpkg", text, re.I)
    scripts = re.findall(r"""<script[^>]*\bsrc=["']([^"']+)""", text)
    assert scripts == ["../../mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"]
    mathjax = feedback_page.parents[2] / "mathjax"
    assert (mathjax / "MathJax.js").is_file()
    assert (mathjax / "config" / "TeX-AMS-MML_HTMLorMML-full.js").is_file()
    assert offline.missing_local_scripts(feedback_page) == []
    assert "hidden tests ran here" in text and "slope(-1.5)" not in text  # still hidden


def test_pipeline_feedback_reports_a_page_that_needs_the_network(tmp_path):
    page = tmp_path / "feedback" / "ada" / "a" / "a.html"
    page.parent.mkdir(parents=True)
    page.write_text('<script src="https://cdn.example.org/mathjax/MathJax.js"></script>'
                    '<script src="local/missing.js"></script>')
    assert offline.remote_resources(page) == ["https://cdn.example.org/mathjax/MathJax.js"]
    assert offline.missing_local_scripts(page) == ["local/missing.js"]


@contextlib.contextmanager
def _feedback_in_chromium(playwright_api, page_path: Path, route=None, scripts: bool = True):
    """A feedback page opened from disk in Debian's chromium (every request through ``route``)."""
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
            "--allow-file-access-from-files", "--disable-background-networking"])
        try:
            page = browser.new_page(java_script_enabled=scripts)
            if route is not None:
                page.route("**/*", route)
            page.goto(page_path.as_uri())
            yield page
        finally:
            browser.close()


@needs_sandbox
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_feedback_typesets_its_maths_with_the_network_cut(feedback_page):
    playwright_api = pytest.importorskip("playwright.sync_api")
    requests: list[str] = []

    def only_files(route):
        requests.append(route.request.url)
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            route.abort()

    with _feedback_in_chromium(playwright_api, feedback_page, route=only_files) as page:
        page.wait_for_function("window.MathJax && MathJax.Hub && MathJax.Hub.queue "
                               "&& MathJax.Hub.queue.pending === 0 "
                               "&& document.querySelectorAll('.MathJax, .MathJax_Display')"
                               ".length >= 2", timeout=120_000)
        typeset = page.evaluate("document.querySelectorAll('script[type^=\"math/\"]')"
                                ".length")
        text = page.inner_text("body")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "feedback-offline-mathjax.png"))
    assert typeset >= 2  # $x^2$ and the display formula became MathJax
    assert "Math Processing Error" not in text and "$x^2$" not in text
    assert not [url for url in requests if not url.startswith("file:")], requests


@needs_sandbox
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_feedback_maths_reads_right_with_scripts_off(feedback_page):
    """JupyterLab shows an untrusted page without running its scripts: the maths is MathML,
    which the browser lays out itself (a fraction is taller than a line of text)."""
    html = feedback_page.read_text()
    assert html.count("<math") == 2 and "$x^2$" not in html
    playwright_api = pytest.importorskip("playwright.sync_api")
    with _feedback_in_chromium(playwright_api, feedback_page, scripts=False) as page:
        heights = page.evaluate("[...document.querySelectorAll('math')]"
                                ".map(m => m.getBoundingClientRect().height)")
        fraction = page.evaluate("document.querySelectorAll('math mfrac').length")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "feedback-mathml-no-scripts.png"))
    assert len(heights) == 2 and all(h > 0 for h in heights)
    assert fraction == 1 and heights[1] > 1.5 * heights[0]  # d/dx as a built-up fraction


def test_tex_in_markdown_becomes_mathml_but_code_and_dollars_stay():
    from course_ad.grading.mathml import tex_to_mathml

    text = tex_to_mathml("Cost $d_0 \\sum_i d_i$ and $$\\frac{a}{b}$$ but `$x$` and \\$5.")
    assert text.count("<math") == 2 and 'display="block"' in text
    assert "`$x$`" in text and "\\$5" in text
    fenced = "```python\nprice = '$3 and $4'\n```"
    assert tex_to_mathml(fenced) == fenced
    assert tex_to_mathml("costs $3 and $4 today") == "costs $3 and $4 today"
    assert tex_to_mathml("broken $\\frac{a}{$ here") == "broken $\\frac{a}{$ here"
    # the lectures' += is one symbol, and a function name is followed by a thin space
    assert "<mtext>+=</mtext>" in tex_to_mathml("$\\bar x \\mathrel{+}= \\bar v$")
    assert '<mi>ln</mi><mspace width="0.167em">' in tex_to_mathml("$\\ln x_1$")
    assert "<mspace" not in tex_to_mathml("$\\sin(x)$")
    wrapped = tex_to_mathml("the errors $e = |f(x) -\ng(x)|$ at")  # a line break inside
    assert wrapped.count("<math") == 1 and "$" not in wrapped


# ---- make lab on a fresh course -----------------------------------------------------------


def _get(url: str, timeout: float = 120) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


def test_lab_on_a_fresh_course_opens_formgrader_and_the_assignment_list(tmp_path):
    course = _course(tmp_path, "01_numerical_symbolic")
    port = free_port(18000 + os.getpid() % 1000)
    # no .venv/bin on PATH: the launcher must put it first for nbgrader's `alembic`
    env = dict(os.environ, PATH="/usr/bin:/bin", PYTHONUNBUFFERED="1")
    launcher = subprocess.Popen(
        [sys.executable, "-m", "course_ad.lab", "--instructor", "--no-browser",
         f"--port={port}", f"--root={course}", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=course, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = launcher.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if line.startswith("http://"):
                break
        assert lines and lines[-1].startswith(f"http://127.0.0.1:{port}/lab?token="), lines
        assert lines[0] == INSTRUCTOR_NOTE
        token = lines[-1].split("token=")[1]
        assert len(token) >= 32
        base = f"http://127.0.0.1:{port}"
        assert _get(f"{base}/api/contents")[0] == 403  # the token is needed
        status, page = _get(f"{base}/formgrader?token={token}")  # follows to manage_assignments
        assert status == 200 and "formgrade" in page
        status, listed = _get(f"{base}/formgrader/api/assignments?token={token}")
        assert status == 200 and [a["name"] for a in json.loads(listed)] == [
            "01_numerical_symbolic"]
        assert (course / "gradebook.db").is_file()  # formgrader created it (alembic ran)
        assert _get(f"{base}/lab/tree/source?token={token}")[0] == 200
        for api in ("courses", "assignments?course_id=course-ad&"):
            sep = "" if api.endswith("&") else "?"
            status, reply = _get(f"{base}/{api}{sep}token={token}")
            assert status == 200 and json.loads(reply)["success"] is True, reply
        # the URL stays the last line: JupyterLab's own log went to a file
        assert "ServerApp" in (course / "build" / "jupyter-lab.log").read_text()
    finally:
        launcher.send_signal(signal.SIGTERM)
        rest, _ = launcher.communicate(timeout=60)
    assert launcher.returncode == 0
    assert not rest.strip(), f"printed after the URL: {rest!r}"
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=5)


# ---- feedback never carries instructor material -------------------------------------------


def test_feedback_check_finds_hidden_tests_a_student_printed_encoded(tmp_path):
    import base64
    import zlib

    course = _course(tmp_path, "03_reverse_mode", "05_mlp")
    for assignment in ("03_reverse_mode", "05_mlp"):  # what the students were given
        shutil.copytree(ROOT / "release" / assignment, course / "release" / assignment)
    other = (course / "source" / "05_mlp" / "05_mlp.ipynb").read_bytes()  # another assignment
    page = course / "feedback" / "mallory" / "03_reverse_mode" / "03_reverse_mode.html"
    page.parent.mkdir(parents=True)
    honest = "<pre>loss 0.25\nall tests passed</pre>"
    page.write_text(honest)
    assert grading.leaked_hidden_tests(course, "03_reverse_mode") == []
    for smuggled in (base64.encodebytes(other).decode(),  # wrapped at 76 characters
                     "output: " + base64.b64encode(zlib.compress(other)).decode(),
                     other.hex()):
        page.write_text(f"{honest}<pre>{smuggled}</pre>")
        leaks = grading.leaked_hidden_tests(course, "03_reverse_mode")
        assert leaks and all(": encoded: " in leak for leak in leaks), smuggled[:40]
        assert any("BEGIN HIDDEN TESTS" in leak for leak in leaks), leaks
