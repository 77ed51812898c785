"""Every rule of the table, at first and second order, in both modes, over its domain."""

import inspect

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import course_ad as ad
from course_ad.dispatch import apply
from course_ad.rules import JVP_RULES, RULES, VJP_RULES, Domain, MissingRuleError, get_rule

ELEMENTWISE = [name for name, rule in RULES.items() if rule.elementwise]
STRUCTURAL = [name for name, rule in RULES.items() if not rule.elementwise]


def test_the_table_has_at_least_25_primitives():
    assert len(RULES) >= 25
    assert set(VJP_RULES) == set(JVP_RULES) == set(RULES)


@pytest.mark.parametrize("name", list(RULES))
def test_every_rule_is_one_complete_record(name):
    rule = RULES[name]
    assert VJP_RULES[name] is rule.vjp and JVP_RULES[name] is rule.jvp
    assert rule.symbol and rule.formula and rule.jvp_latex and rule.vjp_latex
    for fn in rule.jvp + rule.vjp:
        # named functions, so a traceback says mul_vjp_x and not <lambda>
        assert fn.__name__ != "<lambda>" and ("jvp" in fn.__name__ or "vjp" in fn.__name__)
        assert inspect.getdoc(fn), f"{fn.__name__} needs a docstring with its maths"
    if rule.elementwise:
        assert len(rule.domain) == rule.arity
    else:
        assert rule.examples is not None, f"{name} needs examples for the tests"


def _sample(domain: Domain, shape, draw):
    values = draw(hnp.arrays(np.float64, shape, elements=st.floats(
        domain.low, domain.high, allow_nan=False, allow_infinity=False)))
    if domain.gap:
        values = np.where(np.abs(values) < domain.gap, np.copysign(domain.gap, values), values)
        values = np.where(values == 0.0, domain.gap, values)
    return values


@st.composite
def elementwise_case(draw, name):
    rule = RULES[name]
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=rule.arity, max_dims=3,
                                                    max_side=3)).input_shapes
    return [_sample(d, s, draw) for d, s in zip(rule.domain, shapes)]


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_every_elementwise_rule_matches_central_differences(name):
    rule = RULES[name]

    @given(elementwise_case(name))
    def check(args):
        report = ad.gradcheck(lambda *xs: apply(rule, *xs), *args, order=2)
        assert report, f"{name} at shapes {[a.shape for a in args]}:\n{report}"

    check()


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_every_elementwise_rule_on_python_floats(name):
    rule = RULES[name]
    args = [float(np.clip(1.3 * (-1) ** i, d.low, d.high)) for i, d in enumerate(rule.domain)]
    report = ad.gradcheck(lambda *xs: apply(rule, *xs), *args, order=2)
    assert report, f"{name} at {args}:\n{report}"


@pytest.mark.parametrize("name", STRUCTURAL)
def test_every_structural_rule_matches_central_differences(name, rng):
    rule = RULES[name]
    for args, params in rule.examples(rng):
        report = ad.gradcheck(lambda *xs, p=params: apply(rule, *xs, **p), *args, order=2)
        assert report, f"{name} with {params} at shapes {[np.shape(a) for a in args]}:\n{report}"


@pytest.mark.parametrize("name", STRUCTURAL)
def test_every_structural_rule_gives_a_batched_jacobian_in_one_pass(name, rng):
    """jacfwd pushes all directions as one batch; jacrev pulls one row at a time."""
    rule = RULES[name]
    for args, params in rule.examples(rng):
        for k in range(len(args)):
            def of_arg(x, args=args, k=k, params=params):
                return apply(rule, *args[:k], x, *args[k + 1:], **params)

            np.testing.assert_allclose(ad.jacfwd(of_arg)(args[k]), ad.jacrev(of_arg)(args[k]),
                                       atol=1e-12, err_msg=f"{name} {params} argument {k}")


def test_a_missing_rule_names_itself_and_lists_the_known_ones():
    with pytest.raises(MissingRuleError, match=r"no rule for 'fft'.*known rules: .*add"):
        get_rule("fft")
    assert issubclass(MissingRuleError, ValueError)


def test_register_refuses_a_duplicate_name():
    with pytest.raises(ValueError, match="exists already"):
        ad.rules.register(RULES["mul"])


def test_rule_card_renders_as_html_and_as_text():
    card = ad.rules.table()
    html = card._repr_html_()
    assert html.count("<tr>") == len(RULES) + 1
    assert r"\bar x \mathrel{+}= \bar v\, y" in html
    text = repr(card)
    assert "x̄ += v̄ y, ȳ += v̄ x" in text and "\\" not in text
    assert len(text.splitlines()) == len(RULES) + 2
    assert repr(ad.rules.table(["exp"])).count("\n") == 2


def _module_imports(package_dir):
    """{module: set of course_ad modules it imports at module level}, read from the source."""
    import ast

    graph = {}
    for path in sorted(package_dir.glob("*.py")):
        name = path.stem
        graph[name] = set()
        for node in ast.parse(path.read_text()).body:  # top level only: no lazy imports
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    graph[name].add(node.module.split(".")[0])
                else:
                    graph[name].update(alias.name for alias in node.names)
    return graph


def test_the_engine_modules_import_each_other_without_a_circle():
    """registry ← ops ← rules: the operations never import the records that call them."""
    from pathlib import Path

    graph = _module_imports(Path(ad.__file__).parent)
    graph.pop("__init__")
    assert "rules" not in graph["ops"] and "rules" not in graph["registry"]
    assert "ops" in graph["rules"] and "registry" in graph["ops"]
    # Kahn's algorithm: a graph is acyclic exactly when every module can be peeled off
    pending = {m: {d for d in deps if d in graph and d != "__init__"} for m, deps in graph.items()}
    while pending:
        free = [m for m, deps in pending.items() if not deps]
        assert free, f"import circle among {sorted(pending)}"
        for m in free:
            del pending[m]
        for deps in pending.values():
            deps.difference_update(free)
