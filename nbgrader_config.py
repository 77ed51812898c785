"""nbgrader configuration of the course_ad course (read from the course root: run here)."""

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.course_id = "course-ad"

# Student code runs with a per-cell time limit; on a timeout the kernel is interrupted, the
# cell scores 0 and grading goes on with the next cells.
c.Execute.timeout = 30
c.Execute.interrupt_on_timeout = True
c.Execute.execute_retries = 0
c.ExecutePreprocessor.kernel_name = "python3"

# A test cell a student deleted is put back and graded (instead of "needs manual grading").
c.OverwriteCells.add_missing_cells = True

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Only notebooks go from source/ to release/: never a paired text file with solutions.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.py",
                            "*.md", "*.db"]

# Feedback shows which tests failed and their messages, never the hidden tests' code.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "course_ad.grading.hidden.HideHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
