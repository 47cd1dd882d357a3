"""archc export: ONNX (checked by onnx.checker, run in onnxruntime against the module within 1e-4 relative, the
spec's names on initializers and nodes), torch.export programs and TorchScript, of built and fused modules, over
a spec that writes every op. ONNX tests skip where the onnx extra is not installed."""

import pytest
import torch

import archc
from archc.export import OPSET, TOLERANCE, export, relative_error
from archc.ir.ops import spec_ops

EVERY_OP = """archc: 1
name: every_op
input: [4, 12, 12]
graph:
  - c: {conv: {out: 8, k: 3, pad: 1, groups: 2}}
  - t: {conv: {out: 3, k: 3, table: [[0], [0, 1], [1, 2, 3]], bias: false}}
  - b: bn
  - r6: relu6
  - p: {pad_channels: {out: 6}}
  - l: {lrn: {size: 3}}
  - s: sigmoid
  - th: {tanh: {scale: 1.7159, slope: 0.6667}}
  - mp: {maxpool: {k: 3, stride: 2, ceil: true}}
  - a1: {avgpool: {k: 3, stride: 1, pad: 1, count_include_pad: false}}
  - a2: {avgpool: {k: 3, stride: 1, pad: 1, divisor: 4}, from: mp}
  - sm: {softmax: null, from: mp}
  - id: {identity: null, from: mp}
  - cat: {concat: null, from: [a1, a2]}
  - sum: {add: null, from: [sm, id]}
  - mn: {mean: {drop_path: 0.2}, from: [a1, sum]}
  - r: relu
  - cat2: {concat: null, from: [cat, r]}
  - up: {upsample: {scale: 2, mode: bilinear}}
  - ct: {conv_transpose: {out: 18, k: 3, stride: 2, pad: 1, output_pad: 1}, from: cat2}
  - big: {upsample: {size: [12, 12]}, from: ct}
  - cr: {crop: null, from: [big, up]}
  - sh: {channel_shuffle: {groups: 3}}
  - ch: {chunk: {chunks: 2, index: 1}, from: sh}
  - af: {affine: {scale: -0.5, shift: 0.25}}
  - df: {sub: null, from: [ch, af]}
  - sg: {softmax: {over: groups, groups: 3}}
  - sv: {sum: {over: groups, groups: 3}, from: df}
  - mv: {mean: {over: space}, from: df}
  - sl: {slice: {start: 1, end: -1, dim: height}, from: df}
  - sp: {split: {sizes: [8, 2], index: 0, dim: width}}
  - up2: {upsample: {size: [10, 10]}}
  - j: {add: null, from: [sg, up2]}
  - j2: {mul: null, from: [j, mv]}
  - j3: {concat: null, from: [j2, sv]}
  - ch2: {slice: {end: 9}}
  - ln: {layernorm: {eps: 1.0e-6}}
  - gn: {groupnorm: {groups: 3}}
  - sc: {scale: {init: 0.5}}
  - hs: hardswish
  - si: silu
  - ge: {gelu: {approximate: tanh}}
  - lr: {leaky_relu: {slope: 0.2}}
  - pl: {linear: {out: 9}}
  - gate: {adaptive_avgpool: {size: [1, 1]}}
  - hsg: hardsigmoid
  - se: {mul: null, from: [pl, hsg]}
  - down: {adaptive_avgpool: {size: [5, 5]}}
  - cat3: {concat: null, from: [cat2, down]}
  - ad: {adaptive_avgpool: {size: [2, 3]}}
  - dp: {drop_path: {p: 0.1}}
  - do: {dropout: {p: 0.2}}
  - g: gap
  - f: flatten
  - bn1: bn
  - fc: {linear: {out: 12}}
  - rb: {rbf: {out: 5}}
"""


SMALL = """archc: 1
name: small
input: [3, 16, 16]
blocks:
  cbr:
    args: {out: int, k: 3, stride: 1}
    seq: [conv: {conv: {out: out, k: k, stride: stride, pad: k // 2, bias: false}}, bn: bn, relu: relu]
graph:
  - stem: {block: cbr, with: {out: 8}}
  - res:
      residual:
        body: [{block: cbr, with: {out: 16, stride: 2}}, c: {conv: {out: 16, k: 3, pad: 1, bias: false}}, b: bn]
        shortcut: {auto: downsample}
        post: {relu: relu}
  - mix: {branches: {a: {block: cbr, with: {out: 4, k: 1}}, p: [{maxpool: {k: 3, stride: 1, pad: 1}}]}}
  - gap: gap
  - flatten: flatten
  - fc: {linear: {out: 10}}
"""


def trained(text: str, file: str):
    """The spec's module in eval mode after one training-mode batch (BatchNorm statistics not the identity)."""
    torch.manual_seed(0)
    m = archc.build(archc.loads(text, file))
    with torch.no_grad():
        m.train()(torch.randn(8, *m.analysis.input_shape))
    return m.eval()


def small():
    return trained(SMALL, "small.yaml")


@pytest.fixture(scope="module")
def every_op():
    return trained(EVERY_OP, "every_op.yaml")


def test_the_spec_writes_every_op(every_op):
    assert set(spec_ops()) <= {n.op for n in every_op.graph.nodes()}


def test_onnx_every_op_matches_pytorch(every_op, tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    f = tmp_path / "every_op.onnx"
    result = export(every_op, "onnx", f)
    assert result.error is not None and result.error <= TOLERANCE and "onnxruntime" in result.checked
    model = onnx.load(str(f))
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [OPSET]
    assert [i.name for i in model.graph.input] == ["input"] and [o.name for o in model.graph.output] == ["out"]
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    # The state_dict under its keys: BatchNorm stays as written. Not: a training counter; the table conv's kernel
    # (scattered into a dense one); what the exporter folds into new constants (the layer scale, GroupNorm's affine
    # decomposed, the per-pixel linear's weight transposed).
    folded = {"t.weight", "sc", "gn.weight", "gn.bias", "pl.weight"}
    for key, value in every_op.state_dict().items():
        if not key.endswith("num_batches_tracked") and key not in folded:
            assert (inits[key] == value.numpy()).all(), key
    names = {n.name for n in model.graph.node}
    assert {"c", "fc", "mp", "a2/AveragePool", "a2/Mul"} <= names  # module paths (a2 made two nodes)
    session = ort.InferenceSession(str(f), providers=["CPUExecutionProvider"])
    for batch in (1, 5):  # the batch dimension is dynamic
        x = torch.randn(batch, 4, 12, 12)
        with torch.no_grad():
            want = every_op(x)
        assert relative_error(session.run(None, {"input": x.numpy()})[0], want) <= TOLERANCE


def test_fused_module_exports_everywhere(tmp_path):
    model = small()
    fused = archc.fuse(model)
    convs = [n.name for n in fused.graph.nodes() if n.op == "conv_bn_act"]
    assert len(convs) == 5 and sum(len(fused.graph.inputs(n)) == 2 for n in convs) == 1  # one adds the residual
    for fmt in ("pt2", "torchscript"):  # ONNX: test_export_command
        result = export(fused, fmt, tmp_path / f"fused.{fmt}")
        assert result.error <= TOLERANCE, fmt
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        want = model(x)
    program = torch.export.load(str(tmp_path / "fused.pt2")).module()
    assert relative_error(program(x), want) <= 1e-5  # the fused export computes the trained module's function
    assert relative_error(torch.jit.load(str(tmp_path / "fused.torchscript"))(x), want) <= 1e-5


@pytest.mark.parametrize("fmt", ["pt2", "torchscript"])
def test_pt2_and_torchscript_every_op(every_op, tmp_path, fmt):
    result = export(every_op, fmt, tmp_path / f"m.{fmt}")
    assert result.error == 0.0 or result.error <= 1e-6


def test_export_command(tmp_path, capfd):
    """The fused module of a trained network to ONNX, from the command line."""
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from archc import cli

    spec = tmp_path / "small.yaml"
    spec.write_text(SMALL)
    weights = tmp_path / "trained.pt"
    torch.save(small().state_dict(), weights)
    out = tmp_path / "small.onnx"
    argv = ["export", str(spec), "--format", "onnx", "--fused", "--weights", str(weights), "-o", str(out)]
    assert cli.main(argv) == 0
    captured = capfd.readouterr()  # at the file descriptors: the exporters' and onnxruntime's chatter stays out
    assert captured.out.splitlines()[-1].startswith(f"wrote {out} (ONNX opset {OPSET}; onnx.checker passed; "
                                                    "onnxruntime: max relative difference ")
    assert "32 of the module's 32 tensors loaded" in captured.out and captured.err == ""
    model = onnx.load(str(out))
    assert sum(n.op_type == "Conv" for n in model.graph.node) == 5 and not any(
        n.op_type == "BatchNormalization" for n in model.graph.node)  # folded
    assert {"stem.conv", "res.c"} <= {n.name.split("/")[0] for n in model.graph.node}


def test_export_errors(tmp_path, capsys):
    from archc import cli

    assert cli.main(["export", "lenet5", "--format", "pt2", "--weights", str(tmp_path / "no.pt")]) == 2
    assert "cannot read weights" in capsys.readouterr().err
