"""Every error a user can cause is typed and located: file:line:column, node path, message."""

import pytest

import archc
from archc.errors import ExpectError, ExprError, LimitError, ShapeError, SpecError

HEAD = "archc: 1\nname: bad\ninput: [3, 32, 32]\n"


def check(tmp_path, body: str, cls, where: str, path: str | None, words: str, **params):
    f = tmp_path / "bad.yaml"
    f.write_text(HEAD + body)
    with pytest.raises(cls) as info:
        archc.analyze(archc.load(f, **params))
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
     SpecError, "5:35", "graph.0.conv1.conv.strid", "unknown key 'strid'"),
    ("unknown-op", "graph:\n  - conv1: {cnov: {out: 16, k: 3}}\n",
     SpecError, "5:13", "graph.0.conv1.cnov", "did you mean 'conv'"),
    ("unknown-op-string", "graph:\n  - rleu\n",
     SpecError, "5:5", "graph.0", "unknown op or block 'rleu' (did you mean 'relu'?)"),
    ("missing-arg", "graph:\n  - conv1: {conv: {k: 3}}\n",
     SpecError, "5:19", "graph.0.conv1.conv", "missing key 'out'"),
    ("unknown-top-key", "grahp: []\n",
     SpecError, "4:1", "grahp", "unknown key 'grahp'"),
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
    ("linear-needs-flat", "graph:\n  - fc: {linear: {out: 10}}\n",
     ShapeError, "5:9", "fc", "add a flatten"),
    ("unknown-name", "graph:\n  - conv1: {conv: {out: width * 2, k: 3}}\n",
     ExprError, "5:25", "conv1", "unknown name 'width'"),
    ("forbidden-expr", "params: {w: 2}\ngraph:\n  - conv1: {conv: {out: \"__import__('os').getpid()\", k: 3}}\n",
     ExprError, "6:25", "conv1", "not allowed in an expression"),
    ("big-exponent", "params: {w: 2}\ngraph:\n  - conv1: {conv: {out: w ** 1000, k: 3}}\n",
     ExprError, "6:25", "conv1", "exponent 1000 too large"),
    ("not-int", "graph:\n  - conv1: {conv: {out: 7 / 2, k: 3}}\n",
     SpecError, "5:25", "conv1", "expected an int, got 3.5"),
    ("negative-pad", "graph:\n  - conv1: {conv: {out: 8, k: 3, pad: -1}}\n",
     SpecError, "5:39", "conv1", "pad must be >= 0"),
    ("unknown-block", "graph:\n  - {block: blk}\n",
     SpecError, "5:5", "graph.0", "unknown block 'blk'"),
    ("block-arg", "blocks:\n  blk:\n    args: {planes: int}\n    seq: [relu]\n"
     "graph:\n  - x: {block: blk, with: {plans: 3}}\n",
     SpecError, "9:28", "x", "has no argument 'plans'"),
    ("block-arg-missing", "blocks:\n  blk:\n    args: {planes: int}\n    seq: [relu]\n"
     "graph:\n  - x: {block: blk}\n",
     SpecError, "9:8", "x", "needs argument 'planes'"),
    ("duplicate-name", "graph:\n  - a: {conv: {out: 8, k: 3}}\n  - a: {conv: {out: 8, k: 3}}\n",
     SpecError, "6:8", "a", "already used"),
    ("duplicate-key", "graph:\n  - {conv: {out: 8, out: 9, k: 3}}\n",
     SpecError, "5:21", None, "duplicate key 'out'"),
    ("yaml-tag", "graph:\n  - !!python/object/apply:os.system [\"true\"]\n",
     SpecError, "5:5", None, "not allowed"),
    ("yaml-syntax", "graph:\n  - {conv: {out: 8, k: 3}\n",
     SpecError, "6:1", None, "YAML"),
    ("from-unknown", "graph:\n  - a: {conv: {out: 8, k: 3}}\n  - {add: null, from: [a, b]}\n",
     SpecError, "6:23", "graph.1.from", "no earlier item named 'b'"),
    ("recursion", "blocks:\n  loop:\n    seq: [loop]\n graph: []\n".replace(" graph: []", "graph:\n  - loop"),
     LimitError, "6:11", "blocks.loop.seq.0", "nest deeper"),
    ("huge-repeat", "graph:\n  - {repeat: 100000, body: relu}\n",
     LimitError, "5:14", "graph.0.repeat", "outside 0..10000"),
    ("expect", "expect: {params: 5}\ngraph:\n  - conv1: {conv: {out: 8, k: 3}}\n",
     ExpectError, "4:18", "expect", "params is 224 but the spec expects 5"),
    ("misspelt-op-without-args", "graph:\n  - {seq: [{cnov: {}}]}\n",
     SpecError, "5:13", "graph.0.seq.0.cnov", "unknown op or construct 'cnov' (did you mean 'conv'?)"),
    ("reserved-name", "graph:\n  - input: relu\n",
     SpecError, "5:5", "graph.0", "'input' is reserved and cannot name an item"),
    ("aux-named-aux", "graph:\n  - aux: {aux: [gap]}\n",
     SpecError, "5:5", "0", "an aux head cannot be an aux itself"),
    ("residual-needs-settings", "graph:\n  - residual: [relu]\n",
     SpecError, "5:15", "graph.0.residual", "is not of type 'object'"),
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
