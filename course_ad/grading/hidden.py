"""Feedback without hidden tests: a preprocessor for nbgrader's feedback, and a leak check.

nbgrader would show hidden tests in feedback (nbgrader issue 917); ``HideHiddenTests`` strips
them and cuts tracebacks to their message. ``leaked_hidden_tests`` reads the generated pages.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import gzip
import html
import json
import lzma
import re
import zlib
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
    """Hidden-test lines (or delimiters) that appear in any feedback file of the assignment,
    as text or inside a base64 or hex blob that a student's cell printed.

    Any assignment's hidden tests count, not only this one's: a student's cell may read the
    whole of ``source/`` (where nothing isolates it). Lines that any release shows are public."""
    public = "\n".join("".join(cell["source"]) for p in (root / "release").glob("*/*.ipynb")
                        for cell in json.loads(p.read_text())["cells"])
    secret = sorted({line for nb in (root / "source").glob("*/*.ipynb")
                     for line in hidden_test_lines(nb) if line not in public})
    leaks = []
    for page in sorted((root / "feedback").glob(f"*/{assignment}/*.html")):
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
        own = _submitted_text(root, page.parts[-3], assignment)  # their own code is theirs
        for marker in (HIDDEN_BEGIN, HIDDEN_END, *secret):
            if marker in text and (marker in (HIDDEN_BEGIN, HIDDEN_END) or marker not in own):
                leaks.append(f"{page.relative_to(root)}: {marker[:60]}")
        for blob in _decoded_blobs(text):
            for marker in (HIDDEN_BEGIN, HIDDEN_END, "BEGIN SOLUTION", *secret):
                if marker in blob:
                    leaks.append(f"{page.relative_to(root)}: encoded: {marker[:60]}")
    return sorted(set(leaks))


def _submitted_text(root: Path, student: str, assignment: str) -> str:
    """The code a student handed in (a line of it on their page is no leak)."""
    texts = []
    for path in (root / "submitted" / student / assignment).glob("*.ipynb"):
        try:
            texts += ["".join(c.get("source", "")) for c in json.loads(path.read_text())["cells"]]
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return "\n".join(texts)


_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=\s]{64,}")
_HEX_RUN = re.compile(r"[0-9a-fA-F\s]{64,}")


def _decoded_blobs(text: str):
    """Text hidden in long base64 or hex runs (wrapped or not, compressed or not).

    A backstop, not a proof: a student who can read instructor files can encode them in ways
    no reader of the page can guess; the sandbox is what keeps those files out of reach."""
    for run in _BASE64_RUN.findall(text):
        compact = re.sub(r"\s+", "", run)
        for start in range(4):  # the run may begin with ordinary words
            chunk = compact[start:]
            chunk = chunk[: len(chunk) - len(chunk) % 4]
            try:
                yield from _as_text(base64.b64decode(chunk))
            except (binascii.Error, ValueError):
                continue
    for run in _HEX_RUN.findall(text):
        compact = re.sub(r"\s+", "", run)
        try:
            yield from _as_text(bytes.fromhex(compact[: len(compact) // 2 * 2]))
        except ValueError:
            continue


def _as_text(data: bytes):
    yield data.decode("utf-8", errors="ignore")
    for unpack in (zlib.decompress, gzip.decompress, bz2.decompress, lzma.decompress):
        try:
            yield unpack(data).decode("utf-8", errors="ignore")
        except Exception:  # noqa: BLE001, S112 - not this compression: try the next one
            continue
