"""Feedback pages whose maths needs no script: TeX in markdown cells written as MathML.

A student opens feedback in JupyterLab's HTML viewer, which runs no script until the page is
trusted, or on a machine without a network: MathJax then never starts and the page shows raw
TeX. Browsers render MathML themselves (Chromium since 109, Firefox, Safari), so each
``$…$`` and ``$$…$$`` of a markdown cell is converted once, when the page is written;
MathJax (``offline.LocalMathJax``) stays as the fallback for anything not converted.

Code spans and fenced code are left alone, and so is ``\\$`` (an escaped dollar). A formula
the converter cannot read stays TeX, for MathJax.
"""

from __future__ import annotations

import re

__all__ = ["tex_to_mathml", "MathMLMarkdown"]

try:  # nbconvert comes with nbgrader; the class is only needed when feedback is generated
    from nbconvert.preprocessors import Preprocessor
    from traitlets import Bool
except ImportError:  # pragma: no cover
    Preprocessor, Bool = object, None  # type: ignore[assignment,misc]

# code first (so that maths inside code is skipped), then display maths, then inline maths
_PIECES = re.compile(
    r"(?P<fence>^(?P<ticks>`{3,}|~{3,})[^\n]*\n.*?^(?P=ticks)[ \t]*$)"
    r"|(?P<code>(?P<run>`+).+?(?P=run))"
    r"|(?P<display>(?<!\\)\$\$(?P<dtex>.+?)(?<!\\)\$\$)"
    r"|(?P<inline>(?<![\\$])\$(?![\s$])(?P<itex>(?:[^$\n]|\n(?![ \t]*\n))*?[^\s\\$])\$(?!\d))",
    re.S | re.M,
)


# TeX that the converter sets apart where TeX does not: the lectures' "+=" as one symbol
_TEX_REWRITES = ((r"\mathrel{+}=", r"\mathrel{\text{+=}}"),)
# a function name (sin x, ln x₁) gets the thin space TeX puts after it, unless "(" follows
_FUNCTION = re.compile(r"(<mi>(?:sin|cos|tan|tanh|sinh|cosh|exp|log|ln|max|min|det)</mi>)"
                       r"(?!<mo[^>]*>&#x00028;)")


def _mathml(tex: str, display: bool) -> str:
    from latex2mathml.converter import convert

    for old, new in _TEX_REWRITES:
        tex = tex.replace(old, new)
    mathml = convert(tex.strip(), display="block" if display else "inline")
    return _FUNCTION.sub(r'\1<mspace width="0.167em"></mspace>', mathml)


def tex_to_mathml(markdown: str) -> str:
    """The markdown with each ``$tex$`` / ``$$tex$$`` replaced by a ``<math>`` element.

    Reason: MathML renders without a script, so maths reads right in an untrusted viewer."""
    if "$" not in markdown:
        return markdown

    def replace(found: re.Match) -> str:
        if found["fence"] or found["code"]:
            return found[0]
        display = found["display"] is not None
        tex = found["dtex"] if display else found["itex"]
        try:
            mathml = _mathml(tex, display)
        except Exception:  # noqa: BLE001 - any TeX the converter cannot read stays for MathJax
            return found[0]
        return f"\n\n{mathml}\n\n" if display else mathml

    return _PIECES.sub(replace, markdown)


class MathMLMarkdown(Preprocessor):  # type: ignore[misc,valid-type]
    """Converts the TeX of every markdown cell to MathML before a feedback page is written."""

    enabled = Bool(True).tag(config=True) if Bool else True  # nbconvert skips disabled ones

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "markdown":
            cell.source = tex_to_mathml(cell.source)
        return cell, resources
