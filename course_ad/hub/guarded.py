"""nbgrader's submit, with the submission closed to everyone but the course's staff.

nbgrader leaves each submission folder in inbound/ mode 0777 (so the instructor may delete it
later) with readable files: anyone who learns its name can read it. The folder's group is the
staff group (inbound/ is setgid and belongs to it), so mode 2770 keeps the instructor's and
the graders' rights and shuts the other students out even if they learn the name.
"""

from __future__ import annotations

import os

from nbgrader.exchange.default.submit import ExchangeSubmit

SUBMISSION_MODE = 0o770  # a student outside the group cannot keep the setgid bit anyway


class GuardedSubmit(ExchangeSubmit):
    def copy_files(self) -> None:
        super().copy_files()
        os.chmod(os.path.join(self.inbound_path, self.assignment_filename), SUBMISSION_MODE)
