"""Cheats that only make sense for one assignment: derivatives by differences, not by AD.

Each replaces one task's answer with a finite-difference or complex-step version that is
right to 1e-6 or better; the task asks for AD, so it must earn nothing for that task.
"""

from __future__ import annotations

from adversarial import Case

SPECIFIC: dict[str, list[Case]] = {}
