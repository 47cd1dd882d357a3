"""The schema file and the safe expression evaluator."""

import json
import operator
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from archc.errors import ExprError
from archc.ir.ops import spec_ops
from archc.spec import schema
from archc.spec.expr import evaluate
from conftest import SPECS, spec_id


def test_shipped_schema_is_generated_from_the_grammar_and_op_table():
    shipped = json.loads((Path(schema.__file__).parent / "schema.json").read_text())
    assert shipped == schema.generate(spec_ops()), "run: archc schema > archc/spec/schema.json"
    jsonschema.Draft202012Validator.check_schema(shipped)


@pytest.fixture(scope="module")
def validator():
    return jsonschema.Draft202012Validator(schema.generate(spec_ops()))


@pytest.mark.parametrize("path", SPECS, ids=spec_id)
def test_specs_validate_with_plain_jsonschema(path, validator):
    """Editors use the schema on its own: every spec in specs/ must pass it."""
    validator.validate(yaml.safe_load(path.read_text()))


def test_schema_rejects_unknown_op_for_editors():
    bad = {"archc": 1, "name": "x", "input": [3, 8, 8], "graph": [{"cnov": {"out": 3}}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema.generate(spec_ops()))


OPS = [("+", operator.add), ("-", operator.sub), ("*", operator.mul), ("//", operator.floordiv),
       ("%", operator.mod)]


@st.composite
def int_exprs(draw, depth=3):
    if depth == 0 or draw(st.booleans()):
        v = draw(st.integers(-50, 50))
        return (f"({v})", v)
    (sa, a), (sb, b) = draw(int_exprs(depth - 1)), draw(int_exprs(depth - 1))
    sym, fn = draw(st.sampled_from(OPS))
    if sym in ("//", "%") and b == 0:
        return (sa, a)
    return (f"({sa} {sym} {sb})", fn(a, b))


@settings(max_examples=200, deadline=None)
@given(int_exprs())
def test_integer_arithmetic_matches_python(expr):
    text, value = expr
    assert evaluate(text, {}) == value


@pytest.mark.parametrize("text,env,value", [
    ("planes * width_per_group // 64 * groups", {"planes": 64, "width_per_group": 4, "groups": 32}, 128),
    ("2 if i == 0 else 1", {"i": 0}, 2),
    ("2 if i == 0 else 1", {"i": 3}, 1),
    ("max(1, min(c // 2, 8))", {"c": 40}, 8),
    ("0 < i <= 3 and not last", {"i": 2, "last": False}, True),
    ("2 ** 10", {}, 1024),
])
def test_allowed_expressions(text, env, value):
    assert evaluate(text, env) == value


@pytest.mark.parametrize("text", [
    "__import__('os').system('true')", "x.__class__", "x[0]", "[i for i in (1, 2)]", "lambda: 1",
    "open('f')", "(1).real", "'a' * 3", "{1: 2}", "2 ** 65", "10 ** 30 * 10 ** 30", "1 // 0",
    "x := 3", "f'{x}'", "9" * 401,
])
def test_forbidden_expressions(text):
    with pytest.raises(ExprError):
        evaluate(text, {"x": [1]})
