"""Bad input gets an error that names the operation, the shapes or types, and what to do."""

import numpy as np
import pytest

import course_ad as ad
from course_ad import ForwardDiff, MissingRuleError, ReverseDiff


@pytest.mark.parametrize("engine", [ForwardDiff, ReverseDiff])
def test_non_numeric_values_are_refused(engine):
    with pytest.raises(TypeError, match=rf"{engine.__name__}: the value must be a real number.*"
                                        r"got str 'two'"):
        engine("two")
    with pytest.raises(TypeError, match="got dict"):
        engine({"a": 1})
    with pytest.raises(TypeError, match=r"course_ad.stack"):
        engine([ReverseDiff(1.0), ReverseDiff(2.0)])


@pytest.mark.parametrize("engine", [ForwardDiff, ReverseDiff])
def test_non_numeric_operands_name_the_operation(engine):
    x = engine(1.0)
    with pytest.raises(TypeError, match=r"add: cannot apply to .*str 'a'"):
        x + "a"
    with pytest.raises(TypeError, match=r"mul: cannot apply to"):
        [1, 2] * x


def test_shapes_that_do_not_broadcast():
    x = ReverseDiff(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4,\) do not broadcast"):
        x + np.ones(4)


def test_shapes_that_do_not_align_in_matmul():
    x = ReverseDiff(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(2, 3\) do not align "
                                         r"\(inner sizes 3 and 2\)"):
        x @ np.ones((2, 3))


def test_a_missing_rule_is_named_with_the_known_ones():
    x = ReverseDiff(np.ones(3))
    with pytest.raises(MissingRuleError, match=r"no rule for numpy.fliplr.*known rules: .*matmul"):
        np.fliplr(x)
    with pytest.raises(MissingRuleError, match=r"no rule for numpy.arcsinh"):
        np.arcsinh(x)


def test_backward_on_a_non_scalar_without_a_seed():
    with pytest.raises(ValueError, match=r"shape \(2, 2\), not a scalar.*pass a seed"):
        (ReverseDiff(np.ones((2, 2))) * 2).backward()


@pytest.mark.parametrize("engine", [ForwardDiff, ReverseDiff])
def test_assignment_into_a_traced_value_is_refused(engine):
    x = engine(np.zeros(3))
    with pytest.raises(TypeError, match=r"does not support assignment into it \(x\[0\] = \.\.\.\)"):
        x[0] = 1.0


def test_bad_axes():
    x = ReverseDiff(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"sum: axis 2 is out of range for a value with 2 axes"):
        x.sum(axis=2)
    with pytest.raises(ValueError, match=r"transpose: axes \(0, 0\) are not a permutation"):
        x.transpose(0, 0)


@pytest.mark.parametrize("fn, arg", [(ad.log, -1.0), (ad.sqrt, -4.0), (ad.log, np.array([-1.0]))])
def test_domain_errors_follow_numpy_nan_and_a_warning(fn, arg):
    x = ReverseDiff(arg)
    with pytest.warns(RuntimeWarning):
        y = fn(x)
    assert np.all(np.isnan(y.value))


def test_overflow_follows_numpy_inf_and_a_warning():
    with pytest.warns(RuntimeWarning, match="overflow"):
        y = ad.exp(ReverseDiff(1000.0))
    assert y.value == np.inf
    assert ad.sigmoid(ReverseDiff(-1000.0)).value == 0.0  # the stable form never overflows
    assert ad.tanh(ReverseDiff(1000.0)).value == 1.0


def test_argnums_out_of_range():
    with pytest.raises(ValueError, match="grad: argnums 3 is out of range for 1 arguments"):
        ad.grad(lambda x: x, argnums=3)(1.0)


def test_jvp_needs_one_tangent_per_primal():
    with pytest.raises(ValueError, match="jvp: got 2 primals but 1 tangents"):
        ad.jvp(lambda a, b: a * b, (1.0, 2.0), (1.0,))
