"""Grading: the helpers test cells use, and the instructor's pipeline around nbgrader.

- ``checks`` and ``compare``: what test cells call (``check``, ``counted``, ...); numpy only.
- ``sandbox``: bubblewrap around every execution of student code while grading.
- ``worker``: runs a notebook's cells inside the sandbox and sends out what happened.
- ``runner``: rebuilds a submission from source/, runs it (twice), restarts past bad cells.
- ``judge``: verdicts against the references recorded at release, outside the sandbox.
- ``trusted``: one notebook graded the trusted way; ``steps``: nbgrader's preprocessors.
- ``hidden``: feedback without hidden tests.
- ``pipeline``: ``release``, ``autograde``, ``feedback``, ``grades`` for the whole course.

Only ``checks`` is imported eagerly: the rest needs nbgrader and loads when first used.
"""

from __future__ import annotations

import importlib
from typing import Any

from .checks import (
    check,
    close,
    counted,
    is_topological_order,
    order_names,
    own_work,
    raised,
    report,
)

__all__ = ["close", "report", "own_work", "is_topological_order", "HideHiddenTests", "release",
           "autograde", "feedback", "grades", "CourseResult", "assignments",
           "hidden_test_lines", "leaked_hidden_tests", "GradingOptions", "record", "check",
           "counted", "raised", "order_names"]

_LAZY = {"HideHiddenTests": "hidden", "hidden_test_lines": "hidden",
         "leaked_hidden_tests": "hidden", "release": "pipeline", "autograde": "pipeline",
         "feedback": "pipeline", "grades": "pipeline", "CourseResult": "pipeline",
         "assignments": "pipeline", "GradingOptions": "pipeline", "record": "pipeline"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
