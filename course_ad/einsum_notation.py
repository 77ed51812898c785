"""Einstein notation, made explicit: ``"...ij,jk"`` becomes ``"aij,jk->aik"`` for given shapes.

The einsum rule builds new subscripts for its tangents and cotangents (a batch of tangent
directions gets letters of its own), which is simple only when every axis has a letter and
the output is spelt out. So ``einsum`` normalises once, here: each ``...`` becomes letters
for the axes it stands for, and an implicit output (no ``->``) becomes numpy's: the
broadcast axes, then the letters used once, in alphabetical order.
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Sequence

__all__ = ["LETTERS", "normalise", "parse", "fresh_letters"]

LETTERS = string.ascii_lowercase + string.ascii_uppercase


def normalise(subscripts: str, shapes: Sequence[tuple[int, ...]]) -> str:
    """Explicit subscripts ``"t₁,t₂,…->out"``: no ellipsis, one letter per axis."""
    text = subscripts.replace(" ", "")
    inputs, arrow, output = text.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: the subscripts {subscripts!r} name {len(terms)} operands "
                         f"but {len(shapes)} were given")
    for term in terms + [output]:
        bad = set(term.replace("...", "")) - set(LETTERS)
        if bad:
            raise ValueError(f"einsum: subscripts may use letters and '...', got "
                             f"{''.join(sorted(bad))!r} in {subscripts!r}")
    used = set(text)
    broadcast = max((len(shape) - len(term.replace("...", ""))
                     for term, shape in zip(terms, shapes) if "..." in term), default=0)
    spare = fresh_letters(used, broadcast)
    explicit = []
    for term, shape in zip(terms, shapes):
        if "..." in term:
            count = len(shape) - len(term.replace("...", ""))
            term = term.replace("...", spare[broadcast - count:] if count else "")
        if len(term) != len(shape):
            raise ValueError(f"einsum: the term {term!r} of {subscripts!r} has {len(term)} "
                             f"letters but its operand has shape {shape}")
        explicit.append(term)
    if arrow:
        output = output.replace("...", spare)
    else:
        counts = Counter("".join(explicit))
        once = sorted((c for c in counts if counts[c] == 1 and c not in spare),
                      key=LETTERS.index)
        output = spare + "".join(once)
    for letter in output:
        if letter not in "".join(explicit):
            raise ValueError(f"einsum: the output letter {letter!r} of {subscripts!r} names "
                             "no axis of the operands")
    return ",".join(explicit) + "->" + output


def parse(spec: str) -> tuple[list[str], str]:
    """(input terms, output term) of explicit subscripts."""
    inputs, _, output = spec.partition("->")
    return inputs.split(","), output


def fresh_letters(used: set[str] | str, count: int) -> str:
    """``count`` letters that do not occur in ``used``."""
    free = [c for c in LETTERS if c not in used]
    if count > len(free):
        raise ValueError(f"einsum: needs {count} more index letters than the 52 available")
    return "".join(free[:count])
