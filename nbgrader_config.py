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

# ---- Local use: the exchange and offline feedback ------------------------------------------
# Paths are relative to this file, so a copy of the course (or of this file) works as is.
import importlib.util as _importlib_util  # noqa: E402
import os as _os  # noqa: E402

_course = _os.path.dirname(_os.path.abspath(__file__))

# The exchange lives in the course (git-ignored), so the Assignment List and
# `nbgrader release_assignment`/`fetch_assignment`/`submit` work with no shared folder.
# nbgrader wants its root rwx for everyone (release_assignment resets any other mode, with a
# warning); other accounts still reach it only through the course folder's own permissions.
c.Exchange.root = _os.path.join(_course, "exchange")
try:
    if not _os.path.isdir(c.Exchange.root):
        _os.makedirs(c.Exchange.root)
        _os.chmod(c.Exchange.root, 0o777)
except OSError:  # a read-only copy of the course (a grading sandbox) needs no exchange
    pass


def _package_dir(name: str) -> str | None:
    """A package's folder, found without importing it (None where it is not installed)."""
    spec = _importlib_util.find_spec(name)
    return _os.path.dirname(spec.origin) if spec and spec.origin else None


# A shared gradebook (PostgreSQL) when COURSE_AD_DB_URL names it (`--db`, `make hub`);
# otherwise nbgrader's gradebook.db in the course.
if _os.environ.get("COURSE_AD_DB_URL"):
    c.CourseDirectory.db_url = _os.environ["COURSE_AD_DB_URL"]

# Feedback pages load MathJax from feedback/mathjax/ (copied from the jupyter-server-mathjax
# package) instead of a CDN: course_ad's template comes first, then nbgrader's feedback one.
_course_ad, _nbgrader = _package_dir("course_ad"), _package_dir("nbgrader")
if _course_ad and _nbgrader:
    c.HTMLExporter.extra_template_basedirs = [
        _os.path.join(_course_ad, "grading", "templates"),
        _os.path.join(_nbgrader, "server_extensions", "formgrader", "templates"),
    ]
    # Maths in markdown becomes MathML, which renders without a script (JupyterLab's viewer
    # of an untrusted page); MathJax, served from the feedback folder, is the fallback.
    c.GenerateFeedback.preprocessors = [*c.GenerateFeedback.preprocessors,
                                        "course_ad.grading.mathml.MathMLMarkdown",
                                        "course_ad.grading.offline.LocalMathJax"]

# ---- On the course's JupyterHub -------------------------------------------------------------
# `make hub` and the hub's servers set COURSE_AD_HUB_CONFIG to course_ad/hub/config/
# nbgrader_config.py: the shared exchange and the PostgreSQL gradebook replace the local ones.
if _os.environ.get("COURSE_AD_HUB_CONFIG"):
    load_subconfig(_os.environ["COURSE_AD_HUB_CONFIG"])  # noqa: F821 - provided by nbgrader
