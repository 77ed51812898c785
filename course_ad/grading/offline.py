"""Feedback pages that render their maths offline: MathJax from an installed package.

nbconvert's pages load MathJax from a CDN; a student who opens feedback without a network
(or behind a firewall) then sees raw LaTeX. ``LocalMathJax`` copies the MathJax that the
``jupyter-server-mathjax`` package ships into ``feedback/mathjax/`` once, and the template in
``templates/base/mathjax.html.j2`` points every page at it: ``../../mathjax/MathJax.js`` from
``feedback/<student>/<assignment>/<notebook>.html``.
"""

from __future__ import annotations

import re
import shutil
from importlib.metadata import version
from pathlib import Path

__all__ = ["LocalMathJax", "MATHJAX_DIR", "install_mathjax", "mathjax_source", "template_dir",
           "remote_resources", "missing_local_scripts"]

MATHJAX_DIR = "mathjax"  # inside the feedback folder, next to the students' folders
# MathJax parts a feedback page never loads: other languages, the accessibility explorer
_UNUSED = ("localization", "a11y", "*.md")

try:  # nbconvert comes with nbgrader; the class is only needed when feedback is generated
    from nbconvert.preprocessors import Preprocessor
    from traitlets import Bool
except ImportError:  # pragma: no cover
    Preprocessor, Bool = object, None  # type: ignore[assignment,misc]


def mathjax_source() -> Path:
    """The MathJax 2 folder of the installed ``jupyter-server-mathjax`` package."""
    try:
        import jupyter_server_mathjax
    except ImportError as error:
        raise RuntimeError("feedback needs MathJax from the jupyter-server-mathjax package: "
                           "`pip install jupyter-server-mathjax` (the course's `make` "
                           "targets install it)") from error
    return Path(jupyter_server_mathjax.__file__).parent / "static"


def template_dir() -> Path:
    """The template folder to put first in ``HTMLExporter.extra_template_basedirs``."""
    return Path(__file__).parent / "templates"


def install_mathjax(feedback: str | Path) -> Path:
    """Copy MathJax into ``feedback/mathjax`` unless the same version is already there.

    Copied, not linked: the feedback folder must work once it leaves the grader's machine."""
    source = mathjax_source()
    target = Path(feedback) / MATHJAX_DIR
    stamp = target / ".source"
    signature = f"jupyter-server-mathjax {version('jupyter-server-mathjax')}"
    if stamp.exists() and stamp.read_text() == signature and (target / "MathJax.js").exists():
        return target
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*_UNUSED))
    stamp.write_text(signature)
    return target


_SCRIPT = re.compile(r"""<script[^>]*\bsrc\s*=\s*["']([^"']+)["']""", re.I)
_STYLESHEET = re.compile(r"""<link[^>]*\bhref\s*=\s*["']([^"']+)["']""", re.I)
_REMOTE = re.compile(r"(https?:)?//", re.I)


def remote_resources(page: str | Path) -> list[str]:
    """Scripts and linked files a page would fetch from the network (``https:``, ``//host``)."""
    text = Path(page).read_text()
    return [url for url in _SCRIPT.findall(text) + _STYLESHEET.findall(text)
            if _REMOTE.match(url)]


def missing_local_scripts(page: str | Path) -> list[str]:
    """The local scripts a page refers to that do not exist next to it."""
    page = Path(page)
    return [src for src in _SCRIPT.findall(page.read_text())
            if not re.match(r"([a-z]+:)?//|data:", src, re.I)
            and not (page.parent / src.split("?")[0]).is_file()]


class LocalMathJax(Preprocessor):  # type: ignore[misc,valid-type]
    """Puts MathJax into the course's feedback folder before a feedback page is written."""

    enabled = Bool(True).tag(config=True) if Bool else True  # nbconvert skips disabled ones

    def preprocess(self, nb, resources):
        from nbgrader.coursedir import CourseDirectory

        course = CourseDirectory(config=self.config)
        install_mathjax(Path(course.root) / course.feedback_directory)
        return nb, resources
