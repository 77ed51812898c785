"""nbgrader configuration of the course_ad course (read from the course root: run here)."""

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.course_id = "course-ad"

# Trusted grading (course_ad.grading): the notebook is rebuilt from source/ with the student's
# answers (AssembleSubmission, in place of OverwriteCells: deleted or edited tests come back
# from source/), then graded in a bubblewrap sandbox and judged against the reference values
# recorded by `make release` (TrustedExecute, in place of Execute). The verdict of each test
# cell is its output, which SaveAutoGrades scores. Limits: see TrustedExecute's options.
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput",
    "course_ad.grading.steps.AssembleSubmission",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.Autograde.autograde_preprocessors = [
    "course_ad.grading.steps.TrustedExecute",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.TrustedExecute.cell_seconds = 30  # per cell at least; and at least 10x the reference's time
c.TrustedExecute.memory_gib = 2
c.ExecutePreprocessor.kernel_name = "python3"

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Only notebooks go from source/ to release/: never a paired text file with solutions.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.py",
                            "*.md", "*.db", "*.json"]

# Feedback shows which tests failed and their messages, never the hidden tests' code.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "course_ad.grading.hidden.HideHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
