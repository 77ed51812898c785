"""The class list: a CSV with the columns id, name, role, one row per person.

Each id becomes a local account (``useradd``) so that JupyterHub's PAM login and its spawner
run every server as its own user; file permissions are what keeps students apart.
"""

from __future__ import annotations

import csv
import os
import pwd
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import ROLES, STAFF

COLUMNS = ("id", "name", "role")
USERNAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")  # what useradd accepts, portably
STAFF_GROUP = "course-ad-staff"


class RosterError(ValueError):
    """A roster that cannot become accounts; the message names the file, line and fix."""


@dataclass(frozen=True)
class Member:
    id: str
    name: str
    role: str

    @property
    def staff(self) -> bool:
        return self.role in STAFF


def read_roster(path: str | Path) -> list[Member]:
    """Members in file order; every problem of the file at once, by line."""
    path = Path(path)
    if not path.is_file():
        raise RosterError(f"roster {path}: no such file (a CSV with the columns id,name,role)")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in reader.fieldnames or []]
        missing = [column for column in COLUMNS if column not in header]
        if missing:
            raise RosterError(f"roster {path}: missing column(s) {', '.join(missing)}: the "
                              f"first line must name id,name,role (it has {','.join(header)})")
        members, seen, problems = [], {}, []
        for line, row in enumerate(reader, start=2):
            row = {key.strip(): (value or "").strip() for key, value in row.items() if key}
            ident, role = row["id"], row["role"].lower()
            if not USERNAME.match(ident):
                problems.append(f"line {line}: id {ident!r} is not a valid account name "
                                "(lower-case letters, digits, _ or -, at most 32)")
            elif ident in seen:
                problems.append(f"line {line}: id {ident!r} is already on line {seen[ident]}: "
                                "each person once")
            if role not in ROLES:
                problems.append(f"line {line}: role {row['role']!r} is not one of "
                                f"{', '.join(ROLES)}")
            seen.setdefault(ident, line)
            members.append(Member(ident, row["name"], role))
    if problems:
        raise RosterError(f"roster {path}:\n  " + "\n  ".join(problems))
    if not any(member.role == "instructor" for member in members):
        raise RosterError(f"roster {path}: nobody has the role instructor: the exchange and "
                          "the gradebook need one")
    return members


def ensure_accounts(members: list[Member]) -> list[str]:
    """Create the missing local accounts (root only); homes become private (0700).

    A home other users can read would show them a student's work and the secrets nbgrader
    keeps there to find that student's feedback. Returns the ids created now."""
    if os.geteuid() != 0:
        raise PermissionError("creating the class's accounts needs root (useradd): run "
                              "`sudo make hub`, or create the accounts yourself")
    if subprocess.run(["getent", "group", STAFF_GROUP], capture_output=True).returncode:
        subprocess.run(["groupadd", STAFF_GROUP], check=True)
    created = []
    for member in members:
        try:
            pwd.getpwnam(member.id)
        except KeyError:
            command = ["useradd", "--create-home", "--user-group", "--shell", "/bin/bash",
                       "--comment", member.name]
            subprocess.run([*command, member.id], check=True, capture_output=True)
            created.append(member.id)
        if member.staff:
            subprocess.run(["usermod", "-a", "-G", STAFF_GROUP, member.id], check=True)
        os.chmod(pwd.getpwnam(member.id).pw_dir, 0o700)
    return created


def remove_accounts(ids: list[str]) -> None:
    """Delete accounts and their homes (the test's clean-up)."""
    for ident in ids:
        subprocess.run(["userdel", "--remove", ident], capture_output=True)
