"""nbgrader's exchange, guarded: students submit but never read each other's work.

nbgrader makes the exchange root world-writable and creates each course's folders on first
release. Here the course's folders exist before any student can touch them, owned by the
instructor:

    root/            1777 root       anyone may add a course, nobody may remove another's
    root/<course>/   2755 instructor
      outbound/      2755            released assignments: readable by all
      inbound/       2733            submissions: students can write, nobody can list
      feedback/      2711            feedback pages named by a secret hash: no listing

A submission is a folder with a random suffix in inbound/ and a feedback page is named by a
hash of a secret only its student holds (in their 0700 home), so without listing they cannot
be found.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from pathlib import Path

MODES = {"": 0o2755, "outbound": 0o2755, "inbound": 0o2733, "feedback": 0o2711}
NO_OTHERS_READ = ("inbound", "feedback")


def prepare(root: str | Path, course_id: str, instructor: str, group: str) -> Path:
    """Create (or repair) the exchange of one course; returns the course's folder."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o1777)
    uid, gid = pwd.getpwnam(instructor).pw_uid, grp.getgrnam(group).gr_gid
    course = root / course_id
    for name, mode in MODES.items():
        folder = course / name if name else course
        folder.mkdir(exist_ok=True)
        os.chown(folder, uid, gid)
        os.chmod(folder, mode)
    return course


def problems(root: str | Path, course_id: str) -> list[str]:
    """What in the exchange would let a student read another's work, each with its fix."""
    root, found = Path(root), []
    if not root.is_dir():
        return [f"the exchange {root} does not exist: run `make hub` to create it"]
    mode = root.stat().st_mode
    if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
        found.append(f"the exchange {root} is writable by everyone without the sticky bit "
                     f"(mode {oct(mode & 0o7777)}): a student could replace the course's "
                     f"folder; chmod 1777 {root}")
    for name in NO_OTHERS_READ:
        folder = root / course_id / name
        if not folder.is_dir():
            found.append(f"{folder} is missing: run `make hub` to create it")
            continue
        mode = folder.stat().st_mode
        if mode & stat.S_IROTH:
            found.append(f"{folder} can be listed by everyone (mode {oct(mode & 0o7777)}): "
                         f"students would see each other's {name}; chmod "
                         f"{oct(MODES[name])[2:]} {folder}")
    return found
