"""A PostgreSQL cluster in one folder for the gradebook: created and started when needed.

Debian's postgresql package provides ``initdb`` and ``pg_ctl`` (under
/usr/lib/postgresql/<version>/bin). The cluster listens on 127.0.0.1 only and asks for a
password (scram-sha-256), so students on the same machine cannot open the gradebook; the URL
with that password is written to a file only its owner can read.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROLE, DATABASE = "course_ad", "gradebook"


class GradebookUnavailableError(RuntimeError):
    """The gradebook's database cannot be reached; the message says which and what to do."""


def binary(name: str) -> str:
    """initdb or pg_ctl: on PATH, else the newest of Debian's versioned folders."""
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise GradebookUnavailableError(f"PostgreSQL's {name} is not installed: apt-get "
                                        "install postgresql (Debian), or give a gradebook URL "
                                        "of a running server")
    return found


@dataclass
class Cluster:
    """``folder`` holds the data (owned by ``owner``); the server listens on ``port``."""

    folder: Path
    port: int
    owner: str = "postgres"

    def _run(self, *command: str) -> subprocess.CompletedProcess:
        as_owner = (["runuser", "-u", self.owner, "--"]
                    if os.geteuid() == 0 and self.owner != "root" else [])
        return subprocess.run([*as_owner, *command], capture_output=True, text=True,
                              cwd="/")

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def url_file(self) -> Path:
        return self.folder / "gradebook-url"

    def url(self) -> str:
        return self.url_file.read_text().strip()

    def running(self) -> bool:
        return self._run(binary("pg_ctl"), "status", "-D", str(self.data)).returncode == 0

    def ensure(self) -> str:
        """Create the cluster if needed, start it if it is down; returns the gradebook URL."""
        if not (self.data / "PG_VERSION").exists():
            self._create()
        if not self.running():
            self.start()
        return self.url()

    def _create(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o711)
        password = secrets.token_urlsafe(24)
        secret = self.folder / "password"
        secret.write_text(password + "\n")
        if os.geteuid() == 0:
            owner = pwd.getpwnam(self.owner)
            os.chown(secret, owner.pw_uid, owner.pw_gid)
            self.data.mkdir(mode=0o700, exist_ok=True)
            os.chown(self.data, owner.pw_uid, owner.pw_gid)
        os.chmod(secret, 0o600)
        run = self._run(binary("initdb"), "-D", str(self.data), "-U", ROLE, "-A",
                        "scram-sha-256", "--pwfile", str(secret), "-E", "UTF8")
        secret.unlink()
        if run.returncode:
            raise GradebookUnavailableError(f"initdb {self.data} failed: {run.stderr.strip()}")
        self.url_file.write_text(
            f"postgresql+psycopg2://{ROLE}:{password}@127.0.0.1:{self.port}/{DATABASE}\n")
        os.chmod(self.url_file, 0o600)
        self.start()
        self._sql("postgres", f"CREATE DATABASE {DATABASE}")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data}"
        run = self._run(binary("pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.data),
                        "-l", str(self.data / "server.log"), "-o", options)
        if run.returncode:
            log = self.data / "server.log"
            tail = log.read_text()[-600:] if log.exists() else ""
            raise GradebookUnavailableError(f"PostgreSQL in {self.data} did not start on "
                                            f"port {self.port}: {run.stderr.strip()} {tail}")

    def stop(self) -> None:
        if (self.data / "PG_VERSION").exists():
            self._run(binary("pg_ctl"), "stop", "-m", "fast", "-w", "-D", str(self.data))

    def _sql(self, database: str, statement: str) -> None:
        import psycopg2

        url = self.url()
        password = url.split(":", 2)[2].split("@", 1)[0]
        for attempt in range(20):
            try:
                connection = psycopg2.connect(host="127.0.0.1", port=self.port, user=ROLE,
                                              password=password, dbname=database)
                break
            except psycopg2.OperationalError:
                if attempt == 19:
                    raise
                time.sleep(0.5)
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(statement)
        connection.close()


def hide_password(url: str) -> str:
    """The URL fit for a message: ``user:***@host``."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    who, where = rest.rsplit("@", 1)
    return f"{scheme}://{who.split(':', 1)[0]}:***@{where}"


def reachable(url: str) -> str:
    """'' when the database answers, else why not (with the fix)."""
    if not url.startswith("postgresql"):
        return ""
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(url, connect_args={"connect_timeout": 5})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as error:  # noqa: BLE001 - any failure is the same answer
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
        return (f"the gradebook {hide_password(url)} does not answer ({first}): start "
                "PostgreSQL (`make hub` starts the course's own) or fix the URL; nothing "
                "was graded or changed")
    return ""
