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
from archc.spec.kinds import Choice, Float, Int, List, Name, Pair
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
    """Editors use the schema on its own: every spec of the zoo must pass it."""
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


# The reader (archc/spec/read.py) and the schema come from one grammar: they accept the same documents. The
# reader also resolves names the schema cannot know (blocks, block arguments, op or block names in strings).

def reader_agrees_with_schema(text: str, validator) -> None:
    from archc.errors import ArchcError, UnknownNameError
    from archc.spec.load import loads

    try:
        loads(text, str(SPECS[0].parent / "fuzz.yaml"), spec_ops())
        errors = []
    except ArchcError as e:
        errors = e.errors
    if validator.is_valid(yaml.safe_load(text)):
        assert all(isinstance(e, UnknownNameError) for e in errors), [str(e) for e in errors]
    else:
        assert errors, "the schema rejects what the reader accepts"


@pytest.mark.parametrize("seed", range(60))
def test_reader_and_schema_agree_on_mutated_specs(seed, validator):
    import random

    from test_fuzz import mutate

    rng = random.Random(seed)
    data = yaml.safe_load(rng.choice(SPECS).read_text())
    for _ in range(rng.randint(1, 3)):
        data = mutate(data, rng)
    reader_agrees_with_schema(yaml.safe_dump(data), validator)


_KEYS = ["conv", "out", "k", "residual", "body", "repeat", "block", "a", "from", "when", "with", "branches", "join",
         "shortcut", "post", "dense", "layers", "fractal", "aux", "seq", "relu", "add", "drop_path", "auto", "1a",
         "input", "args", "let", "table", "blk", "carry", "0", "slice", "over", "module"]
_DOCS = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 300) | st.floats(-2, 2) | st.sampled_from(
        ["relu", "conv", "x", "i", "a", "identity", "auto", "concat", "in_channels", "blk", "int", "a.0", "{i}",
         "-a", "groups"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(_KEYS), children, max_size=3),
    max_leaves=14)


@settings(max_examples=150, deadline=None)
@given(_DOCS, _DOCS)
def test_reader_and_schema_agree_on_random_documents(graph, block):
    doc = {"archc": 1, "name": "fuzz", "input": [3, 16, 16], "graph": graph, "blocks": {"blk": block}}
    reader_agrees_with_schema(yaml.safe_dump(doc), jsonschema.Draft202012Validator(schema.generate(spec_ops())))


GRAPHS = [  # items the reader accepts, which the schema must accept too (and the reverse for the refused ones)
    ("- '0': {conv: {out: 4, k: 1}}\n- 1x1: relu\n- {relu: null, from: '0'}\n", True),
    ("- repeat: {repeat: 2, body: [c: {conv: {out: 4, k: 1}}]}\n- branches: {seq: [relu]}\n", True),
    ("- repeat: [relu]\n- branches: {branches: [relu, relu], join: add}\n", True),
    ("- g: [a: relu]\n- {repeat: 2, carry: h, join: concat, body: [{add: null, from: [h, g.a, 'g.{i - i}']}]}\n", True),
    ("- {slice: {start: -2, dim: channels}}\n- {softmax: {over: groups, groups: 1}}\n- {sum: {over: space}}\n", True),
    ("- a: relu\n- {relu: null, from: 0}\n", False),
    ("- a: relu\n- {relu: null, from: '-a'}\n", False),
    ("- a: relu\n- {relu: null, from: 'a..b'}\n", False),
    ("- -a: relu\n", False),
    ("- when: relu\n", False),
    ("- {repeat: 2, carry: 'a.b', body: relu}\n", False),
    ("- {sum: null}\n", False),
]


@pytest.mark.parametrize("graph,accepted", GRAPHS)
def test_reader_and_schema_agree_on_the_language_of_round_3(graph, accepted, validator):
    from archc.errors import ArchcError
    from archc.spec.load import loads

    text = "archc: 1\nname: t\ninput: [3, 8, 8]\ngraph:\n" + "".join(f"  {line}\n" for line in graph.splitlines())
    try:
        loads(text, "t.yaml", spec_ops())
        read = True
    except ArchcError:
        read = False
    assert read == accepted == validator.is_valid(yaml.safe_load(text))


@pytest.mark.parametrize("kind,written,problem,value", [
    (Int(lo=1), 3, None, 3),
    (Int(lo=1), 0, "must be >= 1, got 0", None),
    (Int(lo=1), 2.0, None, 2),
    (Int(lo=1), True, "must be an int or an expression, got True", None),
    (Int(lo=1), "n * 2", None, 8),
    (Int(expr=False), "n", "must be an int, got 'n'", None),
    (Float(0.0, 1.0), 1.0, "must be in [0, 1), got 1.0", None),
    (Pair(), [3, 1], None, (3, 1)),
    (Pair(), [3, 3], None, 3),
    (Pair(), "hw", None, (2, 5)),
    (Pair(), [1, 2, 3], "must be an int or [h, w], got [1, 2, 3]", None),
    (Choice(('nearest', 'bilinear')), "bilinear", None, "bilinear"),
    (Choice(('nearest', 'bilinear')), "cubic", "must be one of nearest, bilinear, got 'cubic'", None),
    (List(Int(), min=1, expr=True), [1, "n"], None, (1, 4)),
    (List(Int(), min=1, expr=True), "hw", None, (2, 5)),
    (List(Int(), min=1, expr=True), [], "must be a list of 1 or more values, got []", None),
    (Name(), "layer_1", None, "layer_1"),
    (Name(), "1x1", "'1x1' is not a valid name: it starts with a digit", None),
    (Name(), "a-b", "'a-b' is not a valid name: it has '-'", None),
])
def test_argument_kinds(kind, written, problem, value):
    found = kind.problem(written)
    assert found == problem if problem is None else found.startswith(problem)
    if value is not None:
        assert kind.resolve(written, lambda text: evaluate(text, {"n": 4, "hw": (2, 5)})) == value


def test_the_name_rule_is_written_once():
    """Which strings are names is said once (archc/spec/kinds.py); the reader, the schema, `names:` and `from:`
    templates and register_op use it, so no other module spells a name's characters."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "archc"
    spelled = [str(p.relative_to(root)) for p in root.rglob("*.py") if re.search(r"A-Za-z", p.read_text())]
    assert spelled == ["spec/kinds.py"]
