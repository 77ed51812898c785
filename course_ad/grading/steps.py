"""Two nbgrader preprocessors that put the trusted verdict where nbgrader reads grades.

nbgrader stays the instructor's tool: ``nbgrader autograde`` (from the command line, from
formgrader, from ``make autograde``) runs ``AssembleSubmission`` in place of its
OverwriteCells and ``TrustedExecute`` in place of its Execute (see nbgrader_config.py). The
first rebuilds the notebook from source/ with the student's answers; the second grades it in
the sandbox (or takes the result ``make autograde`` computed in parallel) and writes each
test cell's verdict as its output, which nbgrader's SaveAutoGrades turns into points.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Float, Int

from .runner import assemble
from .sandbox import GIB, Limits, Sandbox
from .trusted import GradedNotebook, grade_notebook, source_notebook

__all__ = ["AssembleSubmission", "TrustedExecute", "cache_path", "verdict_output"]


def cache_path(root: Path, assignment: str, student: str) -> Path:
    """Where ``make autograde`` leaves a submission's result for TrustedExecute."""
    return Path(root) / ".grading" / assignment / f"{student}.json"


class AssembleSubmission(NbGraderPreprocessor):
    """Given cells and tests from source/, answers from the submission (see runner.assemble)."""

    def preprocess(self, nb: Any, resources: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        course = CourseDirectory(config=self.config)
        assignment = resources["nbgrader"]["assignment"]
        source_path = source_notebook(Path(course.root), assignment)
        source = json.loads(source_path.read_text())
        cells = assemble(source, json.loads(nbformat.writes(nb)))
        by_id = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id"): c
                 for c in source["cells"] if c.get("metadata", {}).get("nbgrader")}
        rebuilt = []
        for cell in cells:
            original = by_id.get(cell.id) if cell.id else None
            metadata = dict(original.get("metadata", {})) if original else {}
            if cell.kind == "markdown":
                text = cell.source
                rebuilt.append(nbformat.v4.new_markdown_cell(text, metadata=metadata))
            elif cell.kind == "test":
                full = "".join(original["source"]) if isinstance(original["source"], list) \
                    else original["source"]
                rebuilt.append(nbformat.v4.new_code_cell(full, metadata=metadata))
            else:
                rebuilt.append(nbformat.v4.new_code_cell(cell.source, metadata=metadata))
        nb.cells = rebuilt
        return nb, resources


class TrustedExecute(NbGraderPreprocessor):
    """Grade in the sandbox; write outputs and verdicts into the notebook nbgrader saves."""

    cell_seconds = Float(30.0, help="time limit per cell, at least (seconds)").tag(config=True)
    factor = Float(10.0, help="time limit per cell, at least this multiple of the reference "
                   "solution's time").tag(config=True)
    memory_gib = Float(2.0, help="memory limit of a submission (GiB)").tag(config=True)
    processes = Int(64, help="process limit of a submission").tag(config=True)
    allow_unsandboxed = Bool(False, help="grade without a sandbox where none can be had; "
                             "student code then runs with your rights").tag(config=True)
    slot = Int(0, help="which sandbox uid to use (parallel graders use different slots)"
               ).tag(config=True)

    def limits(self) -> Limits:
        return Limits(memory_bytes=int(self.memory_gib * GIB), processes=self.processes,
                      cell_seconds=self.cell_seconds, factor=self.factor)

    def preprocess(self, nb: Any, resources: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        course = CourseDirectory(config=self.config)
        info = resources["nbgrader"]
        root, assignment, student = Path(course.root), info["assignment"], info["student"]
        submitted = Path(course.format_path(course.submitted_directory, student, assignment))
        submission = submitted / f"{info['notebook']}.ipynb"
        sandbox = Sandbox(self.limits(), slot=self.slot,
                          allow_unsandboxed=self.allow_unsandboxed)
        graded = grade_notebook(root, assignment, submission, sandbox,
                                cache=cache_path(root, assignment, student))
        write_outputs(nb, graded)
        return nb, resources


def write_outputs(nb: Any, graded: GradedNotebook) -> None:
    """Outputs of the display pass, and each test cell's verdict as its only judged output."""
    if len(nb.cells) != len(graded.cells):
        raise RuntimeError("the notebook changed between assembly and grading; grade again")
    for count, (cell, result) in enumerate(zip(nb.cells, graded.cells), start=1):
        if cell.cell_type != "code":
            continue
        outputs = [o for o in result["outputs"]
                   if not (result["kind"] == "test" and o.get("output_type") == "stream"
                           and o.get("name") == "stderr")]
        if result["stopped"]:
            outputs.append({"output_type": "error", "ename": "Stopped",
                            "evalue": result["stopped"], "traceback": [result["stopped"]]})
        elif result["error"] and result["kind"] != "test":
            outputs.append({"output_type": "error", **result["error"]})
        if result["kind"] == "test":
            outputs.append(verdict_output(result["verdict"]))
        cell.outputs = [nbformat.from_dict(o) for o in outputs]
        cell.execution_count = count


def verdict_output(verdict: dict[str, Any]) -> dict[str, Any]:
    """A passed test prints one line; a failed one is an error nbgrader scores as 0."""
    if verdict["passed"]:
        return {"output_type": "stream", "name": "stdout",
                "text": f"Passed: all {verdict['checks']} checks of this task.\n"}
    messages = verdict["messages"] or ["failed"]
    return {"output_type": "error", "ename": "TestFailed", "evalue": "\n".join(messages),
            "traceback": ["TestFailed: " + messages[0], *messages[1:]]}
