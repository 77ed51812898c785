"""Grading: the helpers test cells use, and the instructor's pipeline around nbgrader.

- ``checks``: what test cells call (``close``, ``report``, ``own_work``, ...); numpy only.
- ``hidden``: feedback without hidden tests.
- ``pipeline``: ``release``, ``autograde``, ``feedback``, ``grades`` for the whole course.

Only ``checks`` is imported eagerly: the rest needs nbgrader and loads when first used.
"""

from __future__ import annotations

import importlib
from typing import Any

from .checks import close, is_topological_order, own_work, report

__all__ = ["close", "report", "own_work", "is_topological_order", "HideHiddenTests", "release",
           "autograde", "feedback", "grades", "CourseResult", "assignments",
           "hidden_test_lines", "leaked_hidden_tests"]

_LAZY = {"HideHiddenTests": "hidden", "hidden_test_lines": "hidden",
         "leaked_hidden_tests": "hidden", "release": "pipeline", "autograde": "pipeline",
         "feedback": "pipeline", "grades": "pipeline", "CourseResult": "pipeline",
         "assignments": "pipeline"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
