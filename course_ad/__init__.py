"""course_ad: automatic differentiation you can read, see and grade.

Forward mode (``ForwardDiff``) and reverse mode (``ReverseDiff``) on Python floats and numpy
arrays, both driven by one rule table (``course_ad.rules``); a JAX-shaped functional API;
finite differences and a gradient checker.
"""

from . import ops, rules  # noqa: I001  (importing rules fills the table ops reads)
from . import (  # noqa: F401  (each fills its part of the table)
    rules_contraction, rules_elementwise, rules_linalg, rules_reduction, rules_shape,
)
from .forward import ForwardDiff
from .reverse import ReverseDiff, topological_order
from .functional import (
    derivative, grad, hessian, hvp, jacfwd, jacrev, jvp, value_and_grad, vjp,
)
from .ops import (
    abs, add, broadcast_to, concatenate, cos, cross_entropy, divide, dot, exp, getitem, log,
    logsumexp, matmul, max, maximum, mean, multiply, negative, power, relu, reshape, sigmoid,
    scatter_add, sin, sqrt, stack, subtract, sum, tan, tanh, transpose, unbroadcast,
)
from .ops import (  # the primitives of rules_elementwise, rules_shape, ... (numpy's names)
    arccos, arcsin, arctan, arctan2, clip, cosh, cumsum, det, diag, einsum, expand_dims, expm1,
    flip, hstack, inner, inv, kron, log1p, log2, log10, logaddexp, min, minimum, mod, moveaxis,
    norm, outer, pad, prod, ravel, repeat, roll, sinh, slogdet, solve, sort, square, squeeze,
    std, swapaxes, tensordot, tile, trace, tril, triu, var, vstack, where,
)
from .rules import RULES, JVP_RULES, VJP_RULES, MissingRuleError, Rule
from .numerical import gradcheck, check_grads, numerical_gradient
from .tape import tape
from .checkpoint import checkpoint

__version__ = "0.1.0"

__all__ = [
    "ForwardDiff", "ReverseDiff", "topological_order",
    "grad", "value_and_grad", "derivative", "jvp", "vjp", "jacfwd", "jacrev", "hessian", "hvp",
    "abs", "add", "broadcast_to", "concatenate", "cos", "cross_entropy", "divide", "dot", "exp",
    "getitem", "log", "logsumexp", "matmul", "max", "maximum", "mean", "multiply", "negative",
    "power", "relu", "reshape", "scatter_add", "sigmoid", "sin", "sqrt", "stack", "subtract",
    "sum", "tan", "tanh", "transpose", "unbroadcast",
    "arccos", "arcsin", "arctan", "arctan2", "clip", "cosh", "cumsum", "det", "diag", "einsum",
    "expand_dims", "expm1", "flip", "hstack", "inner", "inv", "kron", "log1p", "log2", "log10",
    "logaddexp", "min", "minimum", "mod", "moveaxis", "norm", "outer", "pad", "prod", "ravel",
    "repeat", "roll", "sinh", "slogdet", "solve", "sort", "square", "squeeze", "std", "swapaxes",
    "tensordot", "tile", "trace", "tril", "triu", "var", "vstack", "where",
    "RULES", "JVP_RULES", "VJP_RULES", "MissingRuleError", "Rule",
    "gradcheck", "check_grads", "numerical_gradient", "ops", "rules", "tape", "checkpoint",
]
