"""course_ad: automatic differentiation you can read, see and grade.

Forward mode (``ForwardDiff``) and reverse mode (``ReverseDiff``) on Python floats and numpy
arrays, both driven by one rule table (``course_ad.rules``); a JAX-shaped functional API;
finite differences and a gradient checker.
"""

from . import ops, rules  # noqa: I001  (ops before rules: the rules' bodies call ops)
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
    "RULES", "JVP_RULES", "VJP_RULES", "MissingRuleError", "Rule",
    "gradcheck", "check_grads", "numerical_gradient", "ops", "rules", "tape", "checkpoint",
]
