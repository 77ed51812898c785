"""Feedback without hidden tests: a preprocessor for nbgrader's feedback, and a leak check.

nbgrader would show hidden tests in feedback (nbgrader issue 917); ``HideHiddenTests`` strips
them and cuts tracebacks to their message. ``leaked_hidden_tests`` reads the generated pages.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

__all__ = ["HideHiddenTests", "hidden_test_lines", "leaked_hidden_tests", "HIDDEN_BEGIN",
           "HIDDEN_END"]

HIDDEN_BEGIN, HIDDEN_END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"


try:  # nbconvert comes with nbgrader; the class is only needed when feedback is generated
    from nbconvert.preprocessors import Preprocessor
    from traitlets import Bool
except ImportError:  # pragma: no cover
    Preprocessor, Bool = object, None  # type: ignore[assignment,misc]


class HideHiddenTests(Preprocessor):  # type: ignore[misc,valid-type]
    """Feedback keeps which tests failed and their messages, never the hidden tests' code.

    In each test cell the lines between the hidden-test delimiters are replaced by one
    comment, and error tracebacks (which quote the failing line) are cut to
    ``ErrorName: message``."""

    enabled = Bool(True).tag(config=True) if Bool else True  # nbconvert skips disabled ones

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or not cell.metadata.get("nbgrader", {}).get("grade"):
            return cell, resources
        kept, hidden = [], False
        for line in cell.source.splitlines():
            if HIDDEN_BEGIN in line:
                hidden = True
                indent = line[: len(line) - len(line.lstrip())]
                kept.append(f"{indent}# (hidden tests ran here; a failure shows its message "
                            "below)")
            elif HIDDEN_END in line:
                hidden = False
            elif not hidden:
                kept.append(line)
        cell.source = "\n".join(kept)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                message = _strip_ansi(f"{output.get('ename', 'Error')}: {output.get('evalue', '')}")
                output["traceback"] = [message]
        return cell, resources


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def hidden_test_lines(notebook: str | Path) -> list[str]:
    """The code lines of a source notebook's hidden tests (to check nothing shows them)."""
    cells = json.loads(Path(notebook).read_text())["cells"]
    lines, visible = [], set()
    for cell in cells:
        hidden = False
        for line in "".join(cell["source"]).splitlines():
            if HIDDEN_BEGIN in line:
                hidden = True
            elif HIDDEN_END in line:
                hidden = False
            elif hidden:
                lines.append(line.strip())
            else:
                visible.add(line.strip())
    return [line for line in lines if len(line) > 12 and line not in visible]


def leaked_hidden_tests(root: Path, assignment: str) -> list[str]:
    """Hidden-test lines (or delimiters) that appear in any feedback file of the assignment."""
    sources = list((root / "source" / assignment).glob("*.ipynb"))
    secret = [line for nb in sources for line in hidden_test_lines(nb)]
    leaks = []
    for page in (root / "feedback").glob(f"*/{assignment}/*.html"):
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
        for marker in ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", *secret):
            if marker in text:
                leaks.append(f"{page.relative_to(root)}: {marker[:60]}")
    return leaks
