"""Every error a user can cause is typed and located: file:line:column, node path, message; every independent
error of a file is reported, first one first."""

import pytest

import archc
from archc.errors import MAX_ERRORS, ArchcErrors, ExpectError, ExprError, LimitError, ShapeError, SpecError
from archc.ir.ops import spec_ops

HEAD = "archc: 1\nname: bad\ninput: [3, 32, 32]\n"


def check(tmp_path, body: str, cls, where: str, path: str | None, words: str, **params):
    f = tmp_path / "bad.yaml"
    f.write_text(HEAD + body)
    with pytest.raises(cls) as info:
        archc.validate(archc.load(f, **params))
    e = info.value
    assert f"{e.loc.line}:{e.loc.col}" == where, str(e)
    assert e.loc.file == str(f)
    assert e.path == path, str(e)
    assert words in e.message, str(e)
    assert "\n" not in str(e)
    return e


CASES = [
    # (id, spec body after the header, error class, line:col, node path, words in the message)
    ("unknown-arg", "graph:\n  - conv1: {conv: {out: 16, k: 3, strid: 2}}\n",
     SpecError, "5:35", "graph.0.conv1.conv.strid", "conv has no argument 'strid' (did you mean 'stride'?)"),
    ("unknown-op", "graph:\n  - conv1: {cnov: {out: 16, k: 3}}\n",
     SpecError, "5:13", "graph.0.conv1.cnov", "unknown op 'cnov' (did you mean 'conv'?)"),
    ("unknown-op-string", "graph:\n  - rleu\n",
     SpecError, "5:5", "graph.0", "unknown op or block 'rleu' (did you mean 'relu'?)"),
    ("missing-arg", "graph:\n  - conv1: {conv: {k: 3}}\n",
     SpecError, "5:19", "graph.0.conv1.conv", "conv needs argument 'out'"),
    ("unknown-top-key", "grahp: []\n",
     SpecError, "4:1", "grahp", "unknown key 'grahp' (did you mean 'graph'?)"),
    ("concat-shapes", "graph:\n  - b:\n      branches:\n        - {conv: {out: 8, k: 3, stride: 2}}\n"
     "        - {conv: {out: 8, k: 3}}\n",
     ShapeError, "6:7", "b.~concat", "cannot concat [8, 15, 15] and [8, 30, 30]"),
    ("add-shapes", "graph:\n  - conv1: {conv: {out: 16, k: 3}}\n  - a: {conv: {out: 8, k: 1}}\n"
     "  - sum: {add: null, from: [conv1, a]}\n",
     ShapeError, "7:10", "sum", "cannot add [16, 30, 30] and [8, 30, 30]"),
    ("groups", "blocks:\n  blk:\n    args: {planes: int}\n    seq:\n      - c: {conv: {out: planes, k: 3, groups: 2}}\n"
     "graph:\n  - x: {block: blk, with: {planes: 3}}\n",
     ShapeError, "8:12", "x.c", "groups=2 must divide"),
    ("empty-output", "graph:\n  - p: {maxpool: {k: 64}}\n",
     ShapeError, "5:8", "p", "empty output"),
    ("rbf-needs-flat", "graph:\n  - out: {rbf: {out: 10}}\n",
     ShapeError, "5:10", "out", "add a flatten"),
    ("unknown-name", "graph:\n  - conv1: {conv: {out: width * 2, k: 3}}\n",
     ExprError, "5:25", "conv1", "unknown name 'width'"),
    ("forbidden-expr", "params: {w: 2}\ngraph:\n  - conv1: {conv: {out: \"__import__('os').getpid()\", k: 3}}\n",
     ExprError, "6:25", "conv1", "not allowed in an expression"),
    ("big-exponent", "params: {w: 2}\ngraph:\n  - conv1: {conv: {out: w ** 1000, k: 3}}\n",
     ExprError, "6:25", "conv1", "exponent 1000 too large"),
    ("not-int", "graph:\n  - conv1: {conv: {out: 7 / 2, k: 3}}\n",
     SpecError, "5:25", "conv1", "conv out must be an int, got 3.5"),
    ("negative-pad", "graph:\n  - conv1: {conv: {out: 8, k: 3, pad: -1}}\n",
     SpecError, "5:39", "graph.0.conv1.conv.pad", "conv pad must be >= 0, got -1"),
    ("negative-pad-expression", "graph:\n  - conv1: {conv: {out: 8, k: 3, pad: 1 - 2}}\n",
     SpecError, "5:39", "conv1", "conv pad must be >= 0, got -1"),
    ("unknown-block", "graph:\n  - {block: blk}\n",
     SpecError, "5:13", "graph.0.block", "unknown block 'blk'"),
    ("block-arg", "blocks:\n  blk:\n    args: {planes: int}\n    seq: [relu]\n"
     "graph:\n  - x: {block: blk, with: {plans: 3}}\n",
     SpecError, "9:28", "graph.0.x.with.plans", "block 'blk' has no argument 'plans' (did you mean 'planes'?)"),
    ("block-arg-missing", "blocks:\n  blk:\n    args: {planes: int}\n    seq: [relu]\n"
     "graph:\n  - x: {block: blk}\n",
     SpecError, "9:8", "graph.0.x", "block 'blk' needs argument 'planes'"),
    ("duplicate-name", "graph:\n  - a: {conv: {out: 8, k: 3}}\n  - a: {conv: {out: 8, k: 3}}\n",
     SpecError, "6:8", "a", "already used"),
    ("duplicate-key", "graph:\n  - {conv: {out: 8, out: 9, k: 3}}\n",
     SpecError, "5:21", None, "duplicate key 'out'"),
    ("yaml-tag", "graph:\n  - !!python/object/apply:os.system [\"true\"]\n",
     SpecError, "5:5", None, "not allowed"),
    ("yaml-syntax", "graph:\n  - {conv: {out: 8, k: 3}\n",
     SpecError, "6:1", None, "YAML"),
    ("from-unknown", "graph:\n  - a: {conv: {out: 8, k: 3}}\n  - {add: null, from: [a, b]}\n",
     SpecError, "6:27", "graph.1.from.1", "no earlier item named 'b' here (visible: input, a)"),
    ("recursion", "blocks:\n  loop:\n    seq: [loop]\n graph: []\n".replace(" graph: []", "graph:\n  - loop"),
     LimitError, "6:5", "blocks.loop", "items nest deeper than 100"),
    ("huge-repeat", "graph:\n  - {repeat: 100000, body: relu}\n",
     LimitError, "5:14", "graph.0.repeat",
     "outside 0..10,000 (the repeat limit is 10,000: raise it with --limit repeat=N)"),
    ("expect", "expect: {params: 5}\ngraph:\n  - conv1: {conv: {out: 8, k: 3}}\n",
     ExpectError, "4:18", "expect", "params is 224 but the spec expects 5"),
    ("misspelt-op-without-args", "graph:\n  - {seq: [{cnov: {}}]}\n",
     SpecError, "5:13", "graph.0.seq.0.cnov", "unknown op 'cnov' (did you mean 'conv'?)"),
    ("reserved-name", "graph:\n  - input: relu\n",
     SpecError, "5:5", "graph.0.input", "'input' is reserved and cannot name an item"),
    ("aux-named-aux", "graph:\n  - aux: {aux: [gap]}\n",
     SpecError, "5:10", "graph.0.aux", "an aux head cannot be an aux itself"),
    ("residual-needs-settings", "graph:\n  - residual: 3\n",
     SpecError, "5:15", "graph.0.residual", "residual must be a mapping of residual settings, got 3"),
    ("two-ops-in-one-item", "graph:\n  - conv1: {conv: {out: 8, k: 3}, bn: {}}\n",
     SpecError, "5:12", "graph.0.conv1", "one item holds 'conv' and 'bn'"),
    ("repeat-needs-body", "graph:\n  - {repeat: 3}\n",
     SpecError, "5:5", "graph.0", "exactly one of `block:` or `body:`"),
    ("from-skips-node", "graph:\n  - a: {conv: {out: 8, k: 3}}\n  - b: {conv: {out: 8, k: 3}}\n"
     "  - c: {relu: {}, from: a}\n",
     SpecError, "6:8", "b", "feeds no output"),
]


@pytest.mark.parametrize("body,cls,where,path,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_located_error(tmp_path, body, cls, where, path, words):
    check(tmp_path, body, cls, where, path, words)


def test_unknown_parameter_override(tmp_path):
    e = check(tmp_path, "params: {classes: 10}\ngraph:\n  - relu\n", SpecError, "4:9", None,
              "unknown parameter 'clases'", clases=3)
    assert "classes" in e.message


def test_missing_file():
    with pytest.raises(SpecError, match="cannot read spec"):
        archc.load("does/not/exist.yaml")


def test_alias_bomb_is_limited(tmp_path):
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 7)]
    f = tmp_path / "bomb.yaml"
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(SpecError, match="YAML nodes"):
        archc.load(f)


def errors_of(tmp_path, body: str) -> list[tuple[str, str, str]]:
    """(line:col, path, message) of every error, in the order reported."""
    f = tmp_path / "bad.yaml"
    f.write_text(HEAD + body)
    with pytest.raises(SpecError) as info:
        archc.validate(archc.load(f))
    assert all(e.loc.file == str(f) for e in info.value.errors)
    return [(f"{e.loc.line}:{e.loc.col}", e.path, e.message) for e in info.value.errors]


OPS_LIST = f"(ops: {', '.join(spec_ops())})"
DIAGNOSTICS = [
    # (id, spec body after the header, line:col, path, message (start))
    ("unknown-op-null", "graph:\n  - {frob: null}\n", "5:6", "graph.0.frob", "unknown op 'frob' " + OPS_LIST),
    ("unknown-op-with-args", "graph:\n  - {cnov: {out: 8, k: 3}}\n", "5:6", "graph.0.cnov",
     "unknown op 'cnov' (did you mean 'conv'?)"),
    ("unknown-op-args-not-ops", "graph:\n  - {whiten: {eps: 1e-6}}\n", "5:6", "graph.0.whiten",
     "unknown op 'whiten' " + OPS_LIST),
    ("when-beside-a-name", "graph:\n  - {a: {conv: {out: 8, k: 3}}, when: 'true'}\n", "5:33", "graph.0.when",
     "`when:` stands inside the named item, beside its op or construct: `a: {conv: ..., when: ...}`"),
    ("from-beside-a-name", "graph:\n  - a: relu\n  - {b: relu, from: a}\n", "6:15", "graph.1.from",
     "`from:` stands inside the named item, beside its op or construct: `b: {relu: ..., from: ...}`"),
    ("name-starts-with-a-dash", "graph:\n  - -conv: {conv: {out: 8, k: 3}}\n", "5:5", "graph.0.-conv",
     "'-conv' is not a valid name: it starts with '-' (names are letters, digits, _ and -, not starting with -)"),
    ("block-called-as-an-op", "blocks:\n  unit: {seq: [relu]}\ngraph:\n  - {unit: null}\n", "7:6", "graph.0.unit",
     "'unit' is a block: call it as `- unit` or `{block: unit, with: {...}}`"),
    ("misspelt-construct", "graph:\n  - {reapet: 2, body: relu}\n", "5:6", "graph.0.reapet",
     "unknown op 'reapet' (did you mean 'repeat'?)"),
    ("op-and-group-share-a-name", "graph:\n  - a: {conv: {out: 8, k: 3}}\n  - a: [relu]\n", "6:9", "a.0",
     "'a' names both an op and a group of ops (first at 5:8): rename one"),
    ("module-attribute-name", "graph:\n  - x: [state_dict: relu]\n", "5:21", "x.state_dict",
     "'state_dict' is an attribute of nn.Module: a module cannot take this name"),
    ("archc-module-attribute-name", "graph:\n  - name: {conv: {out: 8, k: 3}}\n", "5:11", "name",
     "'name' is an attribute of ArchcModule: a module cannot take this name"),
]


@pytest.mark.parametrize("body,where,path,message", [c[1:] for c in DIAGNOSTICS], ids=[c[0] for c in DIAGNOSTICS])
def test_diagnostic(tmp_path, body, where, path, message):
    (error,) = errors_of(tmp_path, body)
    assert error[:2] == (where, path) and error[2].startswith(message), error


def test_every_independent_mistake_is_reported_in_file_order(tmp_path):
    body = ("graph:\n  - a: {conv: {out: 8, k: 3, strid: 2}}\n  - rleu\n"
            "  - b: {conv: {out: 8, k: 3, bais: false}}\n")
    assert errors_of(tmp_path, body) == [
        ("5:30", "graph.0.a.conv.strid", "conv has no argument 'strid' (did you mean 'stride'?)"),
        ("6:5", "graph.1", "unknown op or block 'rleu' (did you mean 'relu'?)"),
        ("7:30", "graph.2.b.conv.bais", "conv has no argument 'bais' (did you mean 'bias'?)")]


def test_independent_expansion_errors_are_all_reported(tmp_path):
    body = ("graph:\n  - a: {conv: {out: wdith, k: 3}}\n  - b: {conv: {out: 8, k: 3, groups: 2}, from: input}\n"
            "  - c: {maxpool: {k: 64}, from: input}\n  - s: {concat: null, from: [a, b, c]}\n")
    errors = errors_of(tmp_path, body)
    assert [e[:2] for e in errors] == [("5:21", "a"), ("6:8", "b"), ("7:8", "c")]
    assert errors[0][2].startswith("unknown name 'wdith'") and "groups=2" in errors[1][2] and \
        "empty output" in errors[2][2]


def test_what_depends_on_a_failed_item_is_not_reported_again(tmp_path):
    """After conv `a` fails, `b` (whose input channels are unknown) and the block reading in_channels are
    skipped quietly, while an independent mistake further on is still found."""
    body = ("blocks:\n  half:\n    seq: [{conv: {out: in_channels // 2, k: 1}}]\n"
            "graph:\n  - a: {conv: {out: wdith, k: 3}}\n  - b: {conv: {out: 8, k: 3, groups: 3}}\n"
            "  - h: half\n  - c: {conv: {out: 8, k: 3, pad: 2 - 3}}\n")
    assert [e[:2] for e in errors_of(tmp_path, body)] == [("8:21", "a"), ("11:35", "c")]


def test_an_error_in_a_block_is_reported_once(tmp_path):
    body = ("blocks:\n  unit:\n    seq: [{conv: {out: wdith, k: 1}}]\n"
            "graph:\n  - {repeat: 4, block: unit}\n")
    assert [e[:2] for e in errors_of(tmp_path, body)] == [("6:24", "0")]


def test_errors_are_capped(tmp_path):
    body = "graph:\n" + "".join(f"  - {{conv: {{out: 8, k: 3, strid{i}: 1}}}}\n" for i in range(MAX_ERRORS + 5))
    f = tmp_path / "bad.yaml"
    f.write_text(HEAD + body)
    with pytest.raises(ArchcErrors) as info:
        archc.load(f)
    e = info.value
    assert len(e.errors) == MAX_ERRORS and e.more == 5
    assert str(e) == str(e.errors[0]) + f" (and {MAX_ERRORS + 4} more errors)"
    assert [x.loc.line for x in e.errors] == list(range(5, 5 + MAX_ERRORS))
