"""Extending the language: an op is one entry in the op table plus one lowering; a construct is one grammar
entry plus its expansion function. Shown with a toy op and a toy construct, registered for one test."""

from fractions import Fraction

import jsonschema
import pytest
import torch
import yaml
from torch import nn

import archc
from archc.backends.torch.lower import LOWERINGS
from archc.ir import expand
from archc.ir.ops import OPS, Op, Window
from archc.ir.ops import register as register_op
from archc.spec import grammar
from archc.spec.kinds import Arg, Choice, Int
from archc.spec.schema import generate

HEAD = "archc: 1\nname: t\ninput: [2, 4, 4]\ngraph:\n"


@pytest.fixture
def zoom(monkeypatch):
    """Nearest or bilinear upsampling by an integer scale: a choice-of-strings argument and a fractional stride."""
    op = Op("zoom", "Upsample by `scale`.", lambda a, i: (i[0][0], i[0][1] * a["scale"], i[0][2] * a["scale"]),
            {"scale": Arg(Int(lo=1), 2), "mode": Arg(Choice(("nearest", "bilinear")), "nearest")},
            window=lambda a, i: Window((1, 1), (Fraction(1, a["scale"]),) * 2, floor=False))
    register_op(op)
    monkeypatch.setitem(LOWERINGS, "zoom", lambda a, i: nn.Upsample(scale_factor=a["scale"], mode=a["mode"]))
    yield op
    del OPS["zoom"]


def schema_accepts(text: str) -> bool:
    from archc.ir.ops import spec_ops

    return jsonschema.Draft202012Validator(generate(spec_ops())).is_valid(yaml.safe_load(text))


def test_an_op_is_one_table_entry_and_one_lowering(zoom):
    good, bad = HEAD + "  - z: {zoom: {scale: 2, mode: bilinear}}\n", HEAD + "  - z: {zoom: {mode: bicubic}}\n"
    assert schema_accepts(good) and not schema_accepts(bad)
    a = archc.analyze(archc.loads(good, "t.yaml"))
    assert a.outputs[0]["shape"] == [2, 8, 8]
    assert a.receptive_field["jump"] == [0.5, 0.5]  # upsampling: a fractional jump, kept exact
    assert archc.build(a)(torch.randn(1, 2, 4, 4)).shape == (1, 2, 8, 8)
    with pytest.raises(archc.SpecError) as e:
        archc.loads(bad, "t.yaml")
    assert str(e.value) == "t.yaml:5:22: graph.0.z.zoom.mode: zoom mode must be one of nearest, bilinear, got 'bicubic'"


@pytest.fixture
def twice(monkeypatch):
    """`twice: node` applies the node two times in a row."""
    def expansion(ex, item, env, x, scope, name):
        for _ in range(2):
            x = ex.emit(item.value, env, x, scope) or x
        return x

    construct = grammar.Construct("twice", "Apply a node twice.", grammar.NODE)
    monkeypatch.setitem(grammar.CONSTRUCTS, "twice", construct)
    monkeypatch.setitem(expand.EXPANSIONS, "twice", expansion)
    return construct


def test_a_construct_is_one_grammar_entry_and_one_expansion(twice):
    text = HEAD + "  - t: {twice: [{conv: {out: 2, k: 3, pad: 1}}, relu]}\n"
    assert schema_accepts(text) and not schema_accepts(HEAD + "  - t: {twice: 3}\n")
    a = archc.analyze(archc.loads(text, "t.yaml"))
    assert [n.name for n in a.nodes()] == ["input", "t.0", "t.1", "t.2", "t.3"]
    with pytest.raises(archc.SpecError, match="unknown op 'twise' \\(did you mean 'twice'\\?\\)"):
        archc.loads(HEAD + "  - {twise: 3}\n", "t.yaml")


@pytest.fixture
def mish(monkeypatch):
    """Mish, x * tanh(softplus(x)), added with fusion: (1) its op, of category FUSABLE; (2) its lowering;
    (3) its kernels' forms in archc_kernels.ACTIVATIONS — here no Triton code and no oneDNN post-op, so the
    generated CPU forward applies it in place after the conv and the Triton path leaves it to the reference.
    (4) would be a branch in archc_kernels/triton/common.activate with its code, (5) a sample row in
    tests/test_ops.py."""
    import archc_kernels
    from archc.ir.ops import ACTIVATION, FUSABLE

    op = Op("mish", "Mish.", lambda a, i: i[0], categories=frozenset({ACTIVATION, FUSABLE}), act=lambda a: "mish")
    register_op(op)
    monkeypatch.setitem(LOWERINGS, "mish", lambda a, i: nn.Mish())
    monkeypatch.setitem(archc_kernels.ACTIVATIONS, "mish", archc_kernels.Activation(
        "mish", lambda y: torch.nn.functional.mish(y, inplace=True), None, None, None))
    yield op
    del OPS["mish"]


def test_an_activation_with_fusion_is_three_entries(mish, monkeypatch):
    from test_fuse import randomise_bn

    from archc_kernels import route

    text = HEAD + "  - c: {conv: {out: 8, k: 3, pad: 1}}\n  - b: bn\n  - m: mish\n  - c2: {conv: {out: 4, k: 1}}\n"
    model = randomise_bn(archc.build(archc.loads(text, "t.yaml"))).eval()
    fused = archc.fuse(model)
    assert [(n.op, n.attrs.get("act")) for n in fused.graph.nodes()][1:] == [("conv_bn_act", "mish"), ("conv", None)]
    x = torch.randn(2, 2, 6, 5) * 3
    with torch.inference_mode():
        assert torch.allclose(fused(x), model(x), rtol=1e-5, atol=1e-6)
    monkeypatch.setenv("ARCHC_KERNELS", "triton")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert route(x, torch.randn(8, 2, 3, 3), act="mish") == (
        "reference", "the activation has no Triton form (archc_kernels.ACTIVATIONS)")
