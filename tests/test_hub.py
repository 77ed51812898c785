"""A real class: JupyterHub, per-user servers, nbgrader's guarded exchange, a PostgreSQL
gradebook; and grading at scale against that gradebook.

The end-to-end test creates local accounts from a roster (one instructor, three students),
starts its own PostgreSQL cluster, JupyterHub and configurable-http-proxy on free 127.0.0.1
ports, and drives the students through their own servers' REST API (contents, assignment
list); the instructor's steps run as the instructor (`runuser`). Everything it started is
stopped, and the accounts removed, even when it fails. It needs root, PostgreSQL, Node's
configurable-http-proxy (npm), bubblewrap and the users' environment `.venv-hub` (`make
hub-env`); `.ci/run` installs them all.
"""

from __future__ import annotations

import csv
import grp
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import pytest

from course_ad import grading
from course_ad.grading import sandbox as sandbox_module
from course_ad.hub import exchange, postgres
from course_ad.hub.__main__ import environment
from course_ad.hub.roster import (
    STAFF_GROUP,
    RosterError,
    ensure_accounts,
    read_roster,
    remove_accounts,
)

ROOT = Path(__file__).resolve().parent.parent
HUB_VENV = ROOT / ".venv-hub"
PROXY = ROOT / "node_modules" / ".bin" / "configurable-http-proxy"
COURSE_ID = "course-ad"
FIGURES = ROOT / "test-artifacts" / "hub-figures.json"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _missing() -> str:
    if os.geteuid() != 0:
        return "needs root: it creates local accounts and runs each user's server as that user"
    try:
        postgres.binary("initdb")
    except postgres.GradebookUnavailableError as error:
        return str(error)
    if not PROXY.exists():
        return "configurable-http-proxy is not installed: npm install (make hub-env)"
    if not (HUB_VENV / "bin" / "jupyterhub").exists():
        return "the users' environment .venv-hub is missing: make hub-env"
    probe = subprocess.run(["runuser", "-u", "nobody", "--", str(HUB_VENV / "bin" / "python"),
                            "-c", "import course_ad.hub.guarded"], capture_output=True, text=True)
    if probe.returncode:
        return ("the users cannot run .venv-hub (is the clone inside a private folder?): "
                + (probe.stderr.strip().splitlines() or ["?"])[-1])
    return sandbox_module.unavailable_reason() or ""


needs_class = pytest.mark.skipif(bool(_missing()), reason=_missing() or "")


def _record(**figures: float) -> None:
    FIGURES.parent.mkdir(exist_ok=True)
    known = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    FIGURES.write_text(json.dumps({**known, **figures}, indent=1))


# ---- the tiny assignment (trusted-grading rules: hidden checks without expected=) ----------


def _tiny_notebook() -> nbformat.NotebookNode:
    cells = [
        nbformat.v4.new_code_cell("from course_ad.grading import check"),
        nbformat.v4.new_code_cell("def slope(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n"
                                  "    ### END SOLUTION"),
        nbformat.v4.new_code_cell('check("slope(3)", slope(3.0), 6.0)\n### BEGIN HIDDEN TESTS\n'
                                  'check("slope(-1.5)", slope(-1.5), how="equal")\n'
                                  "### END HIDDEN TESTS"),
        nbformat.v4.new_code_cell("def cube(x):\n    ### BEGIN SOLUTION\n    return x ** 3\n"
                                  "    ### END SOLUTION"),
        nbformat.v4.new_code_cell('check("cube(2)", cube(2.0), 8.0)\n### BEGIN HIDDEN TESTS\n'
                                  'check("cube(-3)", cube(-3.0), how="equal")\n'
                                  "### END HIDDEN TESTS"),
    ]
    kinds = [("setup", False, False), ("slope", False, True), ("test_slope", True, False),
             ("cube", False, True), ("test_cube", True, False)]
    for cell, (grade_id, graded, answer) in zip(cells, kinds):
        cell.metadata["nbgrader"] = {"grade": graded, "solution": answer, "locked": not answer,
                                     "grade_id": grade_id, "schema_version": 3,
                                     **({"points": 1} if graded else {})}
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    return notebook


ANSWERS = {  # what each kind of student writes in the two answer cells
    "right": ("def slope(x):\n    return 2 * x", "def cube(x):\n    return x ** 3"),
    "partly": ("def slope(x):\n    return 2 * x", "def cube(x):\n    return x * x"),
    "wrong": ("def slope(x):\n    return x", "def cube(x):\n    return 3 * x"),
    # the cheat: replace check() so nothing can fail, and blank every later cell's code
    "cheat": ("import course_ad.grading as g\ng.check = lambda *a, **k: True\n"
              "check = g.check\nget_ipython().input_transformers_post.append(lambda l: [])\n"
              "def slope(x):\n    return 0",
              "def cube(x):\n    return 0"),
}
EXPECTED = {"right": 2.0, "partly": 1.0, "wrong": 0.0, "cheat": 0.0}


def _answered(released: dict, kind: str) -> dict:
    notebook = json.loads(json.dumps(released))
    answers = iter(ANSWERS[kind])
    for cell in notebook["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            cell["source"] = next(answers)
    return notebook


def _course(folder: Path) -> Path:
    (folder / "source" / "tiny").mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", folder)
    nbformat.write(_tiny_notebook(), folder / "source" / "tiny" / "tiny.ipynb")
    return folder


# ---- PostgreSQL, one cluster for the module --------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("needs root: PostgreSQL runs as the postgres account")
    try:
        postgres.binary("initdb")
        pwd.getpwnam("postgres")
    except (postgres.GradebookUnavailableError, KeyError) as error:
        pytest.skip(f"PostgreSQL is not installed: {error}")
    base = Path(tempfile.mkdtemp(prefix="course-ad-pg-", dir="/tmp"))
    os.chmod(base, 0o711)  # the postgres account reaches its folder, nothing more
    server = postgres.Cluster(base / "pg", free_port(), owner="postgres")
    try:
        server.ensure()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_the_gradebook_cluster_starts_again_when_it_is_down(cluster):
    cluster.stop()
    assert not cluster.running()
    assert "does not answer" in postgres.reachable(cluster.url())
    url = cluster.ensure()  # what `make hub` does: started, same URL, same data
    assert cluster.running() and postgres.reachable(url) == ""


def _database(server: postgres.Cluster, name: str) -> str:
    server._sql("postgres", f"DROP DATABASE IF EXISTS {name}")
    server._sql("postgres", f"CREATE DATABASE {name}")
    return server.url().rsplit("/", 1)[0] + f"/{name}"


# ---- bad input, with messages that name the problem ------------------------------------------


def _roster(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def test_roster_with_a_duplicate_id_or_a_missing_column_is_refused_by_line(tmp_path):
    twice = _roster(tmp_path / "twice.csv", [["id", "name", "role"], ["ada", "Ada", "instructor"],
                                             ["bob", "Bob", "student"], ["ada", "A.", "student"]])
    with pytest.raises(RosterError, match=r"line 4: id 'ada' is already on line 2"):
        read_roster(twice)
    no_role = _roster(tmp_path / "no_role.csv", [["id", "name"], ["ada", "Ada"]])
    with pytest.raises(RosterError, match=r"missing column\(s\) role.*id,name,role"):
        read_roster(no_role)
    bad = _roster(tmp_path / "bad.csv", [["id", "name", "role"], ["Ada Lovelace", "A", "boss"]])
    with pytest.raises(RosterError) as error:
        read_roster(bad)
    assert "not a valid account name" in str(error.value)
    assert "role 'boss' is not one of instructor, grader, student" in str(error.value)
    good = _roster(tmp_path / "good.csv", [["id", "name", "role"], ["ada", "Ada", "Instructor"],
                                           ["bob", "Bob", "student"]])
    assert [(m.id, m.role, m.staff) for m in read_roster(good)] == [
        ("ada", "instructor", True), ("bob", "student", False)]


def test_exchange_with_wrong_permissions_is_named_with_its_fix(tmp_path):
    root = tmp_path / "exchange"
    for name in ("inbound", "feedback", "outbound"):
        (root / COURSE_ID / name).mkdir(parents=True)
    os.chmod(root, 0o777)
    os.chmod(root / COURSE_ID / "inbound", 0o777)  # nbgrader's default before release
    os.chmod(root / COURSE_ID / "feedback", 0o2711)
    found = exchange.problems(root, COURSE_ID)
    assert len(found) == 2, found
    assert "without the sticky bit" in found[0] and "chmod 1777" in found[0]
    assert "inbound can be listed by everyone (mode 0o777)" in found[1]
    assert "chmod 2733" in found[1]
    me = pwd.getpwuid(os.getuid()).pw_name
    exchange.prepare(root, COURSE_ID, me, grp.getgrgid(os.getgid()).gr_name)
    assert exchange.problems(root, COURSE_ID) == []
    assert oct(os.stat(root / COURSE_ID / "inbound").st_mode & 0o7777) == "0o2733"


def test_the_hub_refuses_the_dummy_login_outside_demo_mode(tmp_path, monkeypatch):
    from traitlets.config.loader import PyFileConfigLoader

    roster = _roster(tmp_path / "r.csv", [["id", "name", "role"], ["ada", "Ada", "instructor"],
                                          ["bob", "Bob", "student"]])
    config = ROOT / "course_ad" / "hub" / "jupyterhub_config.py"
    monkeypatch.setenv("COURSE_AD_ROSTER", str(roster))
    monkeypatch.setenv("COURSE_AD_HUB_STATE", str(tmp_path))
    loaded = PyFileConfigLoader(config.name, path=str(config.parent)).load_config()
    assert loaded.JupyterHub.authenticator_class == "pam"  # the default: the accounts' login
    assert loaded.Authenticator.admin_users == {"ada"}
    assert loaded.Authenticator.allowed_users == {"ada", "bob"}
    monkeypatch.setenv("COURSE_AD_HUB_AUTHENTICATOR", "dummy")
    with pytest.raises(SystemExit, match="only in demo mode"):
        PyFileConfigLoader(config.name, path=str(config.parent)).load_config()
    monkeypatch.setenv("COURSE_AD_HUB_DEMO", "1")
    monkeypatch.setenv("COURSE_AD_HUB_DEMO_PASSWORD", "not-for-a-class")
    loaded = PyFileConfigLoader(config.name, path=str(config.parent)).load_config()
    assert loaded.JupyterHub.authenticator_class == "dummy"


def test_autograde_against_a_postgresql_that_is_down_says_so_and_changes_nothing(tmp_path):
    course = _course(tmp_path / "course")
    (course / "submitted" / "ada" / "tiny").mkdir(parents=True)
    url = f"postgresql+psycopg2://course_ad:secret@127.0.0.1:{free_port()}/gradebook"
    result = grading.autograde(course, options=grading.GradingOptions(jobs=1, db_url=url))
    assert len(result.problems) == 1, result.problems
    assert "the gradebook postgresql+psycopg2://course_ad:***@127.0.0.1" in result.problems[0]
    assert "does not answer" in result.problems[0] and "secret" not in result.problems[0]
    assert not (course / "autograded").exists() and not (course / "gradebook.db").exists()
    assert "COURSE_AD_DB_URL" not in os.environ


# ---- grading at scale: 60 submissions, 2 workers, PostgreSQL = serial SQLite -----------------


@pytest.mark.skipif(bool(sandbox_module.unavailable_reason()),
                    reason=sandbox_module.unavailable_reason() or "")
def test_sixty_submissions_in_parallel_on_postgresql_match_a_serial_run_on_sqlite(
        cluster, tmp_path):
    from nbgrader.api import Gradebook

    parallel = _course(tmp_path / "parallel")
    assert grading.release(parallel).ok
    released = json.loads((parallel / "release" / "tiny" / "tiny.ipynb").read_text())
    kinds = ["right", "partly", "wrong"]
    students = [f"s{index:02d}" for index in range(60)]
    for index, student in enumerate(students):
        folder = parallel / "submitted" / student / "tiny"
        folder.mkdir(parents=True)
        (folder / "tiny.ipynb").write_text(json.dumps(_answered(released, kinds[index % 3])))
    serial = tmp_path / "serial"
    shutil.copytree(parallel, serial)

    # a generous time limit per cell: this test is about rows and scores, and the machine
    # may be busy (a cell stopped by its limit would lose its points in one run only)
    url = _database(cluster, "scale")
    two, one = (grading.GradingOptions(jobs=2, db_url=url, cell_seconds=120),
                grading.GradingOptions(jobs=1, cell_seconds=120))
    started = time.monotonic()
    on_postgres = grading.autograde(parallel, options=two)
    two_workers = time.monotonic() - started
    started = time.monotonic()
    on_sqlite = grading.autograde(serial, options=one)
    one_worker = time.monotonic() - started
    _record(sqlite_1_worker_s_per_submission=round(one_worker / 60, 3),
            postgres_2_workers_s_per_submission=round(two_workers / 60, 3))

    assert on_postgres.ok and on_sqlite.ok, (on_postgres.problems, on_sqlite.problems)
    assert len(on_postgres.scores) == 60
    assert on_postgres.scores == on_sqlite.scores
    assert {student: on_postgres.scores[(student, "tiny")][0] for student in students} == {
        student: EXPECTED[kinds[index % 3]] for index, student in enumerate(students)}
    with Gradebook(url) as gradebook:  # one row per student: none lost, none doubled
        rows = gradebook.db.execute(__import__("sqlalchemy").text(
            "SELECT s.id, count(*) FROM submitted_assignment sa JOIN student s "
            "ON sa.student_id = s.id GROUP BY s.id")).all()
        assert sorted(rows) == [(student, 1) for student in students]
        graded = gradebook.db.execute(__import__("sqlalchemy").text(
            "SELECT count(*) FROM grade")).scalar()
        assert graded == 60 * 2  # two graded cells each


# ---- the class, end to end --------------------------------------------------------------------


class Hub:
    """JupyterHub's REST API with the course's admin token, and each user's own token."""

    def __init__(self, port: int, token: str):
        self.base, self.admin = f"http://127.0.0.1:{port}", token
        self.tokens: dict[str, str] = {}

    def call(self, method: str, path: str, body: dict | None = None, token: str = "",
             form: dict | None = None) -> tuple[int, str]:
        data, headers = None, {"Authorization": f"token {token or self.admin}"}
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        if form is not None:
            data = "&".join(f"{k}={v}" for k, v in form.items()).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")
        except (urllib.error.URLError, OSError) as error:  # not listening (yet)
            return 0, str(error)

    def start(self, user: str) -> None:
        status, text = self.call("POST", f"/hub/api/users/{user}/server")
        assert status in (201, 202), (user, status, text)

    def wait_ready(self, user: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            status, text = self.call("GET", f"/hub/api/users/{user}")
            server = json.loads(text).get("servers", {}).get("", {}) if status == 200 else {}
            if server.get("ready"):
                status, text = self.call("POST", f"/hub/api/users/{user}/tokens",
                                         {"note": "course_ad test", "expires_in": 3600})
                assert status == 201, text
                self.tokens[user] = json.loads(text)["token"]
                return
            time.sleep(1)
        raise AssertionError(f"{user}'s server did not become ready")

    def user(self, user: str, method: str, path: str, **kwargs) -> tuple[int, str]:
        """A request to ``user``'s own server, with ``user``'s token (or ``as_``'s)."""
        token = self.tokens[kwargs.pop("as_", user)]
        return self.call(method, f"/user/{user}{path}", token=token, **kwargs)


def _as(user: str, *command: str, env: dict | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", user, "--", "env", *[f"{k}={v}" for k, v in
                                                                 (env or {}).items()],
                           *command], capture_output=True, text=True, cwd=cwd or "/")


def _denied(user: str, *command: str) -> str:
    run = _as(user, *command)
    assert run.returncode != 0, f"{user} could run {command}: {run.stdout[:200]}"
    return run.stderr


def _stop(process: subprocess.Popen | None) -> None:
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def _kill_processes_of(uid: int) -> None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    os.kill(int(entry.name), 9)
            except (OSError, ProcessLookupError):
                pass


@needs_class
def test_a_class_from_release_to_feedback_on_jupyterhub(cluster, tmp_path):
    from nbgrader.api import Gradebook

    tag = secrets.token_hex(2)
    teacher, ana, bob, cat = (f"cad{tag}{who}" for who in ("teach", "ana", "bob", "cat"))
    base = Path(tempfile.mkdtemp(prefix="course-ad-hub-", dir="/tmp"))
    os.chmod(base, 0o755)
    roster = _roster(base / "roster.csv", [["id", "name", "role"],
                                           [teacher, "The Instructor", "instructor"],
                                           [ana, "Ana", "student"], [bob, "Bob", "student"],
                                           [cat, "Cat", "student"]])
    created: list[str] = []
    hub_process = None
    hub_port = free_port()
    hub = Hub(hub_port, secrets.token_hex(32))
    try:
        created = ensure_accounts(read_roster(roster))
        assert set(created) == {teacher, ana, bob, cat}
        home = {user: Path(pwd.getpwnam(user).pw_dir) for user in created}
        assert all(oct(home[user].stat().st_mode & 0o777) == "0o700" for user in created)

        exchange_root = base / "exchange"
        exchange.prepare(exchange_root, COURSE_ID, teacher, STAFF_GROUP)
        assert exchange.problems(exchange_root, COURSE_ID) == []
        url = _database(cluster, "classroom")
        course = _course(home[teacher] / "course")
        subprocess.run(["chown", "-R", f"{teacher}:{teacher}", str(course)], check=True)
        state = base / "state"
        state.mkdir(mode=0o700)
        settings = environment(roster, state, exchange_root, url, port=hub_port,
                               api_port=free_port(), proxy_api_port=free_port(), venv=HUB_VENV)
        settings["COURSE_AD_HUB_ADMIN_TOKEN"] = hub.admin
        staff_env = {k: settings[k] for k in ("COURSE_AD_HUB_CONFIG", "COURSE_AD_EXCHANGE",
                                              "COURSE_AD_COURSE_ID", "COURSE_AD_DB_URL")}
        staff_env.update(HOME=str(home[teacher]),
                         PATH=f"{HUB_VENV / 'bin'}:/usr/local/bin:/usr/bin:/bin")
        python = str(HUB_VENV / "bin" / "python")

        def instructor(*args: str) -> subprocess.CompletedProcess:
            run = _as(teacher, python, *args, env=staff_env, cwd=course)
            assert run.returncode == 0, (args, run.stdout[-1500:], run.stderr[-1500:])
            return run

        hub_log = open(base / "jupyterhub.log", "w")  # noqa: SIM115 - open while the hub runs
        hub_process = subprocess.Popen(
            [str(HUB_VENV / "bin" / "jupyterhub"), "-f",
             str(ROOT / "course_ad" / "hub" / "jupyterhub_config.py")],
            env={**os.environ, **settings}, cwd=state, stdout=hub_log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while hub.call("GET", "/hub/api/")[0] != 200:
            assert hub_process.poll() is None, (base / "jupyterhub.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the hub did not answer"
            time.sleep(0.5)
        for user in (teacher, ana, bob, cat):
            hub.start(user)
        for user in (teacher, ana, bob, cat):
            hub.wait_ready(user, time.monotonic() + 180)

        # extensions by role: formgrader answers the instructor, not a student
        assert hub.user(teacher, "GET", "/formgrader")[0] == 200
        for student in (ana, bob, cat):
            assert hub.user(student, "GET", "/formgrader")[0] == 404
            assert hub.user(student, "GET", f"/assignments?course_id={COURSE_ID}")[0] == 200
        assert hub.user(teacher, "GET", "/api/contents", as_=ana)[0] == 403  # not hers

        # the instructor releases (sandboxed reference run) and puts it in the exchange
        started = time.monotonic()
        instructor("-m", "course_ad", "release", "--root", ".")
        instructor("-m", "nbgrader", "release_assignment", "tiny")
        assert (exchange_root / COURSE_ID / "outbound" / "tiny" / "tiny.ipynb").is_file()

        # the students fetch through their servers and answer; ana submits twice
        def fetch_and_answer(student: str, kind: str) -> None:
            form = {"course_id": COURSE_ID, "assignment_id": "tiny"}
            status, text = hub.user(student, "POST", "/assignments/fetch", form=form)
            assert status == 200, text
            status, text = hub.user(student, "GET", "/api/contents/tiny/tiny.ipynb")
            assert status == 200, text
            notebook = _answered(json.loads(text)["content"], kind)
            status, text = hub.user(student, "PUT", "/api/contents/tiny/tiny.ipynb",
                                    body={"type": "notebook", "format": "json",
                                          "content": notebook})
            assert status == 200, text
            status, text = hub.user(student, "POST", "/assignments/submit", form=form)
            assert status == 200 and '"success": false' not in text, text

        def submissions(student: str) -> list[Path]:
            return sorted((exchange_root / COURSE_ID / "inbound").glob(f"{student}+tiny+*"))

        fetch_and_answer(ana, "wrong")
        time.sleep(1.1)  # nbgrader's timestamps: the second submission is later
        fetch_and_answer(ana, "right")
        fetch_and_answer(bob, "partly")
        assert len(submissions(ana)) == 2 and len(submissions(bob)) == 1  # both of ana's kept
        folder = submissions(ana)[0].stat()  # the staff's group, closed to the others
        assert oct(folder.st_mode & 0o7777) == "0o770"
        assert grp.getgrgid(folder.st_gid).gr_name == STAFF_GROUP

        # the deadline passes; cat, the cheat, submits after it and tries to read the others
        with Gradebook(url) as gradebook:
            gradebook.update_or_create_assignment("tiny", duedate=datetime.now(UTC).replace(
                tzinfo=None))
        time.sleep(1.1)
        inbound = exchange_root / COURSE_ID / "inbound"
        assert "Permission denied" in _denied(cat, "ls", str(inbound))
        assert "Permission denied" in _denied(cat, "cat", str(submissions(ana)[-1] /
                                                                 "tiny.ipynb"))
        assert "Permission denied" in _denied(cat, "ls", str(home[ana]))
        assert "Permission denied" in _denied(cat, "ls", str(course))
        assert "Permission denied" in _denied(cat, "cat", str(state / "jupyterhub.sqlite"))
        fetch_and_answer(cat, "cheat")

        # the instructor collects, grades (2 workers, sandboxed, into PostgreSQL), feeds back
        instructor("-m", "nbgrader", "collect", "tiny")
        graded_at = time.monotonic()
        run = instructor("-m", "course_ad", "autograde", "--root", ".", "-j", "2",
                         "--cell-seconds", "120", "tiny")
        autograde_seconds = time.monotonic() - graded_at
        assert "uid 6" not in run.stdout and "a user namespace" in run.stdout, run.stdout
        assert f"{cat}/tiny: submitted" in run.stdout and "after the deadline" in run.stdout
        assert f"{ana}/tiny: submitted" not in run.stdout
        instructor("-m", "course_ad", "feedback", "--root", ".", "tiny")
        instructor("-m", "nbgrader", "release_feedback", "tiny")
        feedback_dir = exchange_root / COURSE_ID / "feedback"
        assert len(list(feedback_dir.glob("*.html"))) == 3

        with Gradebook(url) as gradebook:
            scores = {s: gradebook.find_submission("tiny", s).score for s in (ana, bob, cat)}
            late = {s: gradebook.find_submission("tiny", s).total_seconds_late
                    for s in (ana, bob, cat)}
        assert scores == {ana: 2.0, bob: 1.0, cat: 0.0}  # ana's latest, bob partly, cat none
        assert late[ana] == 0 and late[bob] == 0 and late[cat] > 0

        # each student fetches their own feedback, and only that
        pages = {}
        for student in (ana, bob, cat):
            form = {"course_id": COURSE_ID, "assignment_id": "tiny"}
            status, text = hub.user(student, "POST", "/assignments/fetch_feedback", form=form)
            assert status == 200, text
            mine = list((home[student] / "tiny" / "feedback").glob("*/tiny.html"))
            assert len(mine) == 1, mine  # the graded submission's: ana's latest
            pages[student] = mine[0].read_text()
            latest = (submissions(student)[-1] / "timestamp.txt").read_text().strip()
            assert mine[0].parent.name == latest
        assert "2.0" in pages[ana] and "1.0" in pages[bob] and "0.0" in pages[cat]
        assert ana not in pages[bob] and bob not in pages[ana]
        assert "Permission denied" in _denied(bob, "ls", str(feedback_dir))
        assert "Permission denied" in _denied(bob, "ls", str(home[ana] / "tiny" / "feedback"))
        assert "Permission denied" in _denied(bob, "cat", str(course / "feedback" / ana / "tiny"
                                                              / "tiny.html"))
        gradebook_refused = _as(bob, python, "-c", f"import psycopg2; psycopg2.connect("
                                f"host='127.0.0.1', port={cluster.port}, user='course_ad', "
                                "dbname='classroom')")
        assert gradebook_refused.returncode != 0
        assert "password" in gradebook_refused.stderr
        _record(release_to_feedback_seconds=round(time.monotonic() - started, 1),
                class_autograde_seconds_3_submissions_2_workers=round(autograde_seconds, 1))
    finally:  # every step on its own: one failing must not leave the others running
        for user in created:
            _quietly(hub.call, "DELETE", f"/hub/api/users/{user}/server")
        _quietly(_stop, hub_process)
        proxy_pid = base / "state" / "proxy.pid"
        if proxy_pid.exists():
            _quietly(os.kill, int(proxy_pid.read_text().strip()), 15)
        for user in created:  # any server the hub could not stop: only the test's accounts
            _quietly(_kill_processes_of, pwd.getpwnam(user).pw_uid)
        _quietly(remove_accounts, created)
        shutil.rmtree(base, ignore_errors=True)


def _quietly(step, *args) -> None:  # noqa: ANN001
    try:
        step(*args)
    except Exception as error:  # noqa: BLE001 - clean-up goes on
        print(f"clean-up: {getattr(step, '__name__', step)} failed: {error}")
