"""OpInfo-style: one table of samples drives, for every op of the op table, checks of its static rules (shape,
parameters, MACs, receptive field) and categories (view, eval identity, stateful, activation) against a real
forward pass of its PyTorch lowering, and runs every spec-writable op from a spec."""

from dataclasses import dataclass, field
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import archc
from archc.backends.torch.lower import LOWERINGS
from archc.ir.ops import ACTIVATION, BUILTIN, EVAL_IDENTITY, INPUT, INTERNAL, JOIN, OPS, STATEFUL, VIEW
from archc.passes.receptive_field import PIXEL, through

BATCH = 2


@dataclass(frozen=True)
class Sample:
    args: dict  # as written in a spec
    inputs: list  # per-sample input shapes
    macs_counted: bool = True  # torch's flop counter sees the op's multiply-accumulates
    why: str = field(default="", compare=False)


S = Sample
SAMPLES = {
    "conv": [S({"out": 6, "k": 3}, [(4, 9, 11)]),
             S({"out": 6, "k": [3, 1], "stride": 2, "pad": [1, 0], "dilation": 2, "groups": 2}, [(4, 13, 12)]),
             S({"out": 3, "k": 3, "table": [[0], [0, 1], [1, 2, 3]], "bias": False}, [(4, 8, 8)], False,
               "the table conv runs a dense conv with zeros where the table connects nothing")],
    "bn": [S({}, [(4, 5, 5)]), S({"affine": False, "eps": 1e-3}, [(6,)])],
    "relu": [S({}, [(3, 5, 5)])],
    "relu6": [S({}, [(3, 5, 5)])],
    "sigmoid": [S({}, [(3, 5, 5)])],
    "silu": [S({}, [(3, 5, 5)])],
    "gelu": [S({}, [(3, 5, 5)]), S({"approximate": "tanh"}, [(6,)])],
    "hardswish": [S({}, [(3, 5, 5)])],
    "hardsigmoid": [S({}, [(3, 5, 5)])],
    "leaky_relu": [S({}, [(3, 5, 5)]), S({"slope": 0.2}, [(3, 5, 5)])],
    "tanh": [S({}, [(3, 5, 5)]), S({"scale": 1.7159, "slope": 2 / 3}, [(3, 5, 5)])],
    "softmax": [S({}, [(4, 5, 5)]), S({"over": "groups", "groups": 2}, [(6, 5, 5)]),
                S({"over": "groups", "groups": 3}, [(6, 1, 1)]), S({"over": "space"}, [(3, 5, 7)]),
                S({"over": "height"}, [(3, 5, 4)]), S({"over": "width"}, [(3, 4, 5)]), S({}, [(7,)])],
    "sum": [S({"over": "channels"}, [(4, 5, 5)]), S({"over": "groups", "groups": 2}, [(6, 5, 5)]),
            S({"over": "height"}, [(3, 5, 4)]), S({"over": "width"}, [(3, 4, 5)]), S({"over": "space"}, [(3, 5, 7)]),
            S({"over": "groups", "groups": 3}, [(6,)])],
    "affine": [S({"scale": 0.17}, [(3, 5, 5)]), S({"scale": -1}, [(6,)]), S({"scale": 2, "shift": -0.5}, [(3, 4, 4)])],
    "slice": [S({"end": 3}, [(5, 4, 4)]), S({"start": 2}, [(5, 4, 4)]), S({"start": -3, "end": -1}, [(6, 4, 4)]),
              S({"start": 1, "end": 4, "dim": "height"}, [(2, 6, 5)]), S({"start": 2, "dim": "width"}, [(2, 4, 7)]),
              S({"start": 1, "end": 3}, [(5,)])],
    "split": [S({"sizes": [2, 3, 1], "index": 1}, [(6, 4, 4)]), S({"sizes": [4, 3], "index": 1, "dim": "height"},
                                                                [(2, 7, 5)]),
              S({"sizes": [1, 4], "index": 0, "dim": "width"}, [(2, 3, 5)])],
    "lrn": [S({"size": 3}, [(6, 5, 5)])],
    "layernorm": [S({"eps": 1e-6}, [(6, 5, 5)]), S({}, [(7,)])],
    "groupnorm": [S({"groups": 2}, [(6, 5, 5)])],
    "scale": [S({"init": 0.5}, [(4, 5, 5)]), S({"init": 2}, [(5,)])],
    "maxpool": [S({"k": 3, "stride": 2, "ceil": True}, [(3, 10, 10)]), S({"k": 2}, [(3, 8, 9)])],
    "avgpool": [S({"k": 3, "stride": 2, "pad": 1, "count_include_pad": False}, [(3, 11, 11)]),
                S({"k": 2, "divisor": 1}, [(3, 8, 8)])],
    "adaptive_avgpool": [S({"size": [2, 3]}, [(4, 8, 9)])],
    "gap": [S({}, [(4, 7, 7)])],
    "dropout": [S({"p": 0.5}, [(3, 5, 5)])],
    "drop_path": [S({"p": 0.3}, [(3, 5, 5)])],
    "linear": [S({"out": 7}, [(12,)]), S({"out": 3, "bias": False}, [(5,)]), S({"out": 5}, [(3, 4, 6)])],
    "flatten": [S({}, [(3, 4, 5)])],
    "identity": [S({}, [(3, 5, 5)])],
    "pad_channels": [S({"out": 7}, [(4, 5, 5)])],
    "rbf": [S({"out": 5}, [(12,)], False, "RBF units are squared distances, not multiply-accumulates torch counts")],
    "chunk": [S({"chunks": 2, "index": 1}, [(6, 5, 5)]), S({"chunks": 3, "index": 0}, [(6, 5, 5)])],
    "channel_shuffle": [S({"groups": 2}, [(6, 5, 5)]), S({"groups": 3}, [(6, 4, 4)])],
    "upsample": [S({"scale": 2}, [(2, 5, 5)]), S({"scale": 3, "mode": "bilinear"}, [(2, 5, 5)]),
                 S({"size": [9, 7], "mode": "bilinear"}, [(2, 5, 4)]),
                 S({"size": 9, "mode": "bilinear", "align_corners": True}, [(2, 5, 5)]),
                 S({"size": [8, 7]}, [(2, 4, 5)])],
    "conv_transpose": [S({"out": 3, "k": 2, "stride": 2}, [(4, 5, 5)]),
                       S({"out": 4, "k": 3, "stride": 2, "pad": 1, "output_pad": 1, "groups": 2}, [(4, 5, 5)]),
                       S({"out": 2, "k": [4, 3], "stride": [2, 1], "pad": [1, 0], "bias": False}, [(3, 4, 5)]),
                       S({"out": 2, "k": 3, "stride": 3, "dilation": 2}, [(2, 4, 4)])],
    "crop": [S({}, [(3, 9, 8), (5, 4, 5)])],
    "concat": [S({}, [(2, 5, 5), (3, 5, 5), (1, 5, 5)])],
    "add": [S({}, [(3, 5, 5), (3, 5, 5)]), S({}, [(3, 5, 5), (3, 1, 1)])],
    "mul": [S({}, [(3, 5, 5), (3, 1, 1)]), S({}, [(3, 4, 5), (3, 1, 5), (1, 4, 1)])],
    "sub": [S({}, [(3, 5, 5), (3, 5, 5)]), S({}, [(3, 5, 5), (3, 1, 1)])],
    "mean": [S({"drop_path": 0.2}, [(3, 5, 5), (3, 5, 5), (3, 5, 5)]), S({"over": "space"}, [(3, 5, 6)]),
             S({"over": "groups", "groups": 2}, [(4, 3, 3)]), S({"over": "channels"}, [(4, 3, 3)])],
    "conv_bn_act": [S({"conv": "c", "bn": "b", "act": "relu6", "out": 6, "k": 3, "pad": 1}, [(4, 7, 7), (6, 7, 7)]),
                    S({"conv": "c", "act": "none", "out": 4, "k": 1, "stride": 2, "bias": False}, [(4, 8, 8)])],
}
CASES = [(name, i, s) for name, samples in SAMPLES.items() for i, s in enumerate(samples)]
IDS = [f"{name}-{i}" for name, i, _ in CASES]
FUNCTIONS = {"relu": torch.relu, "relu6": F.relu6, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "silu": F.silu,
             "gelu": F.gelu, "hardswish": F.hardswish, "hardsigmoid": F.hardsigmoid, "leaky_relu": F.leaky_relu}


def attrs(op, written: dict) -> dict:
    """The op's attributes from written arguments, defaults filled in, as the expander makes them."""
    return {k: None if (v := written.get(k, a.default)) is None else a.kind.resolve(v, None)
            for k, a in op.args.items()}


def lowered(name: str, sample: Sample):
    torch.manual_seed(0)
    module = LOWERINGS[name](attrs(OPS[name], sample.args), sample.inputs).double().eval()
    xs = [torch.randn(BATCH, *s, dtype=torch.float64) for s in sample.inputs]
    return module, xs


def test_every_op_has_samples():
    assert set(SAMPLES) == {name for name, op in OPS.items() if INPUT not in op}


@pytest.mark.parametrize("name,i,sample", CASES, ids=IDS)
def test_static_rules_match_a_forward_pass(name, i, sample):
    op, a = OPS[name], attrs(OPS[name], sample.args)
    module, xs = lowered(name, sample)
    with FlopCounterMode(display=False) as flops, torch.no_grad():
        out = module(*xs)
    shape = op.shape(a, sample.inputs)
    assert out.shape == (BATCH, *shape)
    assert sum(p.numel() for p in module.parameters()) == op.params(a, sample.inputs, shape)
    if sample.macs_counted:
        assert flops.get_total_flops() == 2 * BATCH * op.macs(a, sample.inputs, shape)
    assert (op.arity is None) == (JOIN in op and name != "sub" or name == "conv_bn_act")
    assert len(xs) == (op.arity or len(xs))
    with torch.no_grad():
        module.train()(*xs)  # train mode runs too (dropout, drop-path, BN statistics)


@pytest.mark.parametrize("name,i,sample", CASES, ids=IDS)
def test_categories_match_the_module(name, i, sample):
    op = OPS[name]
    module, xs = lowered(name, sample)
    with torch.no_grad():
        out = module(*xs)
    assert (VIEW in op) == (out.untyped_storage().data_ptr() == xs[0].untyped_storage().data_ptr())
    assert (EVAL_IDENTITY in op) == (out.shape == xs[0].shape and torch.equal(out, xs[0]))
    assert (STATEFUL in op) == any(True for _ in module.parameters()) | any(True for _ in module.buffers())
    if ACTIVATION in op:
        act = op.act(attrs(op, sample.args))
        assert act is None or torch.equal(out, FUNCTIONS[act](xs[0]))


def measured_fields(module, xs):
    """For every output pixel, the input pixels that move it: each input pixel of xs[0] is pushed (by a different
    amount per channel) in one batch entry of its own. Returns [out_h, out_w, in_h, in_w] booleans."""
    x = xs[0][:1]
    _, c, h, w = x.shape
    pushed = x.repeat(h * w + 1, 1, 1, 1)
    bump = torch.linspace(2, 5, c, dtype=x.dtype)
    for p in range(h * w):
        pushed[p + 1, :, p // w, p % w] += bump
    rest = [t[:1].expand(h * w + 1, *t.shape[1:]) for t in xs[1:]]
    with torch.no_grad():
        out = module(pushed, *rest)
    # moved beyond rounding: an interpolation weight that is 0 in exact arithmetic may come out as 1e-16
    moved = ((out[1:] - out[:1]).abs() > 1e-9).any(1)  # [in_h * in_w, out_h, out_w]
    return moved.reshape(h, w, *out.shape[2:]).permute(2, 3, 0, 1)


def extent(mask_1d) -> tuple[int, int]:
    rows = mask_1d.nonzero().flatten().tolist()
    return min(rows), max(rows) + 1


@pytest.mark.parametrize("name,i,sample", CASES, ids=IDS)
def test_receptive_field_matches_a_forward_pass(name, i, sample):
    """The static field against the input pixels that move each output. With whole-pixel strides the field of the
    central output pixel is exact (size and centre); with fractional strides (upsampling) no window is exact for
    every output, and the field is the tightest window holding each output's field: every output along the
    central row and column lies inside it, and some output reaches each of its edges."""
    op, a = OPS[name], attrs(OPS[name], sample.args)
    shape = op.shape(a, sample.inputs)
    if len(sample.inputs[0]) != 3 or len(shape) != 3:
        pytest.skip("no spatial field: the input or output is flat")
    module, xs = lowered(name, sample)
    window = op.window(a, sample.inputs) if op.window else None
    field_ = through(PIXEL, window) if window else PIXEL
    moved = measured_fields(module, xs)
    oy, ox = shape[1] // 2, shape[2] // 2
    for axis in range(2):
        lines = moved[:, ox].any(2) if axis == 0 else moved[oy].any(1)  # [outputs along the axis, input pixels]
        centre_out = (oy, ox)[axis]
        fields = {o: extent(line) for o, line in enumerate(lines) if line.any()}
        size, jump, start = field_.size[axis], field_.jump[axis], field_.start[axis]
        if Fraction(jump).denominator == 1:
            lo, hi = fields[centre_out]
            assert (hi - lo, Fraction(lo + hi, 2)) == (size, start + centre_out * jump)
            continue
        edges = [(lo - (start + o * jump - Fraction(size, 2)), start + o * jump + Fraction(size, 2) - hi)
                 for o, (lo, hi) in fields.items()]
        assert min(e for pair in edges for e in pair) >= 0, "every output's field lies inside the window"
        assert min(e[0] for e in edges) == 0 and min(e[1] for e in edges) == 0, "the window is the tightest"


SPEC_CASES = [(name, i, s) for name, i, s in CASES
              if INTERNAL not in OPS[name] and all(shape == s.inputs[0] for shape in s.inputs)]


@pytest.mark.parametrize("name,i,sample", SPEC_CASES, ids=[f"{n}-{i}" for n, i, _ in SPEC_CASES])
def test_op_runs_from_a_spec(name, i, sample):
    """Written in a spec, each op analyses to its own rules and runs in the built module."""
    args = ", ".join(f"{k}: {v}" for k, v in sample.args.items())
    modifiers = f", from: [{', '.join(['input'] * len(sample.inputs))}]" if JOIN in OPS[name] else ""
    text = f"archc: 1\nname: t\ninput: {list(sample.inputs[0])}\ngraph:\n  - x: {{{name}: {{{args}}}{modifiers}}}\n"
    analysis = archc.analyze(archc.loads(text, "t.yaml"))
    node, a = analysis.graph["x"], attrs(OPS[name], sample.args)
    assert node.attrs == a and node.shape == OPS[name].shape(a, sample.inputs)
    module = archc.build(analysis).eval()
    assert module(torch.randn(BATCH, *sample.inputs[0])).shape == (BATCH, *node.shape)


FUSE_CASES = [(name, i, s) for name, i, s in SPEC_CASES if len(s.inputs[0]) == 3]


@pytest.mark.parametrize("name,i,sample", FUSE_CASES, ids=[f"{n}-{i}" for n, i, _ in FUSE_CASES])
def test_fused_equals_eager(name, i, sample):
    """Between a conv+BN (which archc.fuse fuses) and a conv, each op computes in the fused module's generated CPU
    forward (through its module, or the codegen's own form) what it computes eagerly."""
    c = sample.inputs[0][0]
    args = ", ".join(f"{k}: {v}" for k, v in sample.args.items())
    reads = f", from: [{', '.join(['b'] * len(sample.inputs))}]" if JOIN in OPS[name] else ""
    shape = OPS[name].shape(attrs(OPS[name], sample.args), sample.inputs)
    tail = "  - d: {conv: {out: 3, k: 1}}\n" if len(shape) == 3 else ""
    text = (f"archc: 1\nname: t\ninput: {list(sample.inputs[0])}\ngraph:\n  - c: {{conv: {{out: {c}, k: 1}}}}\n"
            f"  - b: bn\n  - x: {{{name}: {{{args}}}{reads}}}\n{tail}")
    torch.manual_seed(0)
    model = archc.build(archc.loads(text, "t.yaml")).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 1.5)
        x = torch.randn(2, *sample.inputs[0])
        fused = archc.fuse(model)
        torch.testing.assert_close(fused(x), model(x), rtol=1e-5, atol=1e-5)
        assert fused.generated(x) is not None, "the generated CPU forward computes it"


def test_ops_doc_is_generated_from_the_op_table():
    from pathlib import Path

    from archc.ir.opdoc import markdown

    committed = (Path(__file__).resolve().parent.parent / "docs" / "ops.md").read_text()
    assert committed == markdown(), "run: python tools/ops_doc.py > docs/ops.md"
    assert [line[4:-1] for line in committed.splitlines() if line.startswith("## ")] == \
        [name for name in BUILTIN if INTERNAL not in OPS[name]]
