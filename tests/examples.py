"""The lectures' worked examples, shared by the tests."""

import course_ad as ad


def seed002_steps(x1, x2):
    """Seed 002's f(x1, x2) = [sin(x1/x2) + x1/x2 - e^x2][x1/x2 - e^x2], written in the
    seed's order (the trace numbers nodes in the order the program runs): y and v1..v5."""
    v1 = x1 / x2
    v2 = ad.sin(v1)
    v3 = ad.exp(x2)
    v4 = v1 - v3
    v5 = v2 + v4
    return v5 * v4, (v1, v2, v3, v4, v5)


def seed002(x1, x2):
    return seed002_steps(x1, x2)[0]
