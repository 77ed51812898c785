"""The workload of an assignment: words to read and lines of answer code, turned into minutes.

A task's part of a notebook runs from the ``## `` section heading before its ``### Task N``
heading (or that heading itself) to its graded test cell; every other cell (the introduction,
given sections between tasks, the closing) is reading outside the tasks. The counts are
measured in the source notebook; the two rates and the factor for first-time students are
assumptions, stated in every header that uses them.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["WORDS_PER_MINUTE", "LINES_PER_MINUTE", "FIRST_TIME_FACTOR", "Part", "Workload",
           "count_words", "count_answer_lines", "measure", "header_paragraph", "refresh"]

WORDS_PER_MINUTE = 200  # reading, assumed
LINES_PER_MINUTE = 3  # lines of answer code written and got right, assumed
FIRST_TIME_FACTOR = 3  # a first-time student against a course developer, assumed
STEP = 5  # minutes are given in multiples of this

TASK_HEADING = re.compile(r"^### Task (\d+)(.*)$", re.M)
PARENTHESIS = re.compile(r" \((\d+) points?, about (\d+) minutes\)")
HEADER_PARAGRAPH = re.compile(r"^\*\*Points:\*\*.*?(?=\n\s*\n|\Z)", re.S | re.M)
SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)


@dataclass(frozen=True)
class Part:
    """One task (or the reading outside the tasks) with what it asks of a student."""

    name: str
    points: int
    words: int
    answer_lines: int

    @property
    def work_minutes(self) -> float:
        """words / 200 + lines / 3: a course developer's minutes at the assumed rates."""
        return self.words / WORDS_PER_MINUTE + self.answer_lines / LINES_PER_MINUTE

    @property
    def minutes(self) -> int:
        """⌈3 × work / 5⌉ × 5, at least 5: a first-time student's minutes, to the 5 minutes
        a plan is made in (rounding up, so a short task is never promised as free)."""
        return max(STEP, STEP * math.ceil(FIRST_TIME_FACTOR * self.work_minutes / STEP - 1e-9))


@dataclass(frozen=True)
class Workload:
    """An assignment's tasks and its reading outside them."""

    assignment: str
    tasks: list[Part]
    other: Part

    @property
    def total_minutes(self) -> int:
        """Σ task minutes + the minutes of the reading outside the tasks."""
        return sum(task.minutes for task in self.tasks) + self.other.minutes

    @property
    def words(self) -> int:
        return self.other.words + sum(task.words for task in self.tasks)

    @property
    def answer_lines(self) -> int:
        return sum(task.answer_lines for task in self.tasks)

    def table(self) -> str:
        """A markdown table: each task's points, counts and minutes, and the total."""
        rows = ["| part | points | words | answer lines | minutes |",
                "| --- | ---: | ---: | ---: | ---: |"]
        for part in [*self.tasks, self.other]:
            rows.append(f"| {part.name} | {part.points or ''} | {part.words:,} | "
                        f"{part.answer_lines} | {part.minutes} |")
        rows.append(f"| total | {sum(t.points for t in self.tasks)} | {self.words:,} | "
                    f"{self.answer_lines} | {self.total_minutes} |")
        return "\n".join(rows)


def count_words(markdown: str) -> int:
    """Whitespace-separated tokens with a letter or digit in them (table rules, lone
    symbols and markup are not words; a formula counts as one word per token)."""
    return sum(1 for token in markdown.split() if re.search(r"\w", token))


def count_answer_lines(code: str) -> int:
    """Non-blank lines that are not comments, between ``### BEGIN SOLUTION`` and
    ``### END SOLUTION``: what the reference solution writes, not what the cell gives."""
    return sum(1 for block in SOLUTION.findall(code) for line in block.splitlines()
               if line.strip() and not line.strip().startswith("#"))


def measure(notebook: Path | dict[str, Any], assignment: str = "") -> Workload:
    """Split a source notebook into its tasks and the reading outside them, and count both."""
    if isinstance(notebook, Path):
        assignment = assignment or notebook.stem
        notebook = json.loads(notebook.read_text(encoding="utf-8"))
    pieces = _pieces(notebook["cells"])
    headings = [i for i, piece in enumerate(pieces)
                if piece.kind == "markdown" and TASK_HEADING.search(piece.text)]
    if not headings:
        raise ValueError(f"{assignment or 'notebook'}: no markdown cell starts a task with "
                         "'### Task N': the tasks cannot be told apart")
    spans, end = [], -1
    for number, heading in enumerate(headings):
        start = next((i for i in range(heading, end, -1) if pieces[i].kind == "markdown"
                      and pieces[i].text.startswith("## ")), heading)
        following = headings[number + 1] if number + 1 < len(headings) else len(pieces)
        test = next((i for i in range(heading, following) if pieces[i].grade.get("grade")), None)
        if test is None:
            raise ValueError(f"{assignment}: {pieces[heading].text.splitlines()[0]!r} has no "
                             "graded test cell before the next task: give its test cell points")
        spans.append((start, test))
        end = test
    inside = {i for start, test in spans for i in range(start, test + 1)}
    tasks = [_part(_name(pieces[heading].text), pieces[start:test + 1])
             for heading, (start, test) in zip(headings, spans)]
    outside = [piece for i, piece in enumerate(pieces) if i not in inside]
    return Workload(assignment, tasks, _part("reading outside the tasks", outside))


def header_paragraph(workload: Workload) -> str:
    """The header's points and expected time, with how the time was found."""
    words = int(round(workload.words, -2))
    lines = int(round(workload.answer_lines, -1)) if workload.answer_lines >= 20 else \
        workload.answer_lines
    return (f"**Points:** {sum(t.points for t in workload.tasks)} · **Expected time:** about "
            f"{workload.total_minutes} minutes, task by task in the headings below. How it was "
            f"found: about {words:,} words to read and {lines} lines of answer code to write "
            f"(counted in this notebook and its reference solution), at {WORDS_PER_MINUTE} words "
            f"and {LINES_PER_MINUTE} lines a minute, times {FIRST_TIME_FACTOR} for a first-time "
            f"student and rounded up to {STEP} minutes a task; the two rates and the factor "
            f"{FIRST_TIME_FACTOR} are assumptions, not measured on students. A course developer "
            "worked through this release with every visible test passing, which shows that the "
            "tasks can be done from what is given.")


def refresh(path: Path) -> Workload:
    """Rewrite a source notebook's header paragraph and task headings from its workload."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    workload = measure(notebook, path.stem)
    cells = notebook["cells"]
    header = _text(cells[0])
    if not HEADER_PARAGRAPH.search(header):
        raise ValueError(f"{path.name}: the first cell has no paragraph starting with "
                         "'**Points:**' to put the expected time in")
    _set_text(cells[0], HEADER_PARAGRAPH.sub(lambda _: header_paragraph(workload), header, 1))
    tasks = iter(workload.tasks)
    for cell in cells:
        text = _text(cell)
        if cell["cell_type"] == "markdown" and TASK_HEADING.search(text):
            task = next(tasks)
            heading = TASK_HEADING.search(text)
            title = PARENTHESIS.sub("", heading[0])
            new = f"{title} ({task.points} point{'s' * (task.points != 1)}, about " \
                  f"{task.minutes} minutes)"
            _set_text(cell, text[:heading.start()] + new + text[heading.end():])
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return workload


@dataclass(frozen=True)
class _Piece:
    """A code cell, or a markdown cell's stretch from one ``## `` heading to the next."""

    kind: str
    text: str
    grade: dict[str, Any]


def _pieces(cells: list[dict[str, Any]]) -> list[_Piece]:
    pieces = []
    for index, cell in enumerate(cells):
        text = _text(cell)
        if cell["cell_type"] != "markdown":
            pieces.append(_Piece(cell["cell_type"], text, _grade(cell)))
            continue
        if index == 0:  # the header's own time paragraph is not work; leaving it out keeps
            text = HEADER_PARAGRAPH.sub("", text)  # the counts from depending on themselves
        pieces += [_Piece("markdown", part, {}) for part in re.split(r"(?m)^(?=## )", text) if part]
    return pieces


def _part(name: str, pieces: list[_Piece]) -> Part:
    words = sum(count_words(piece.text) for piece in pieces if piece.kind == "markdown")
    lines = sum(count_answer_lines(piece.text) for piece in pieces if piece.grade.get("solution"))
    points = sum(int(piece.grade.get("points", 0)) for piece in pieces if piece.grade.get("grade"))
    return Part(name, points, words, lines)


def _name(heading_text: str) -> str:
    heading = TASK_HEADING.search(heading_text)
    return PARENTHESIS.sub("", heading[0]).removeprefix("### ")


def _grade(cell: dict[str, Any]) -> dict[str, Any]:
    return cell.get("metadata", {}).get("nbgrader", {})


def _text(cell: dict[str, Any]) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def _set_text(cell: dict[str, Any], text: str) -> None:
    cell["source"] = text.splitlines(keepends=True)
