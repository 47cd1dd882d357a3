"""The inference path: eval-mode passes and conv+BN+activation(+residual) fusion compute model.eval()'s
function, on every spec, with BN statistics that are not the identity."""

import pytest
import torch

import archc
from conftest import FORWARD, SPECS, spec_id


def randomise_bn(model):
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.data.copy_(torch.rand(n, generator=g) - 0.5)
    return model


@pytest.mark.parametrize("path", SPECS, ids=spec_id)
def test_fused_equals_eager_in_float64(path):
    torch.manual_seed(0)
    model = randomise_bn(archc.build(path, **FORWARD.get(path.stem, {}))).double().eval()
    fused = archc.fuse(model)
    x = torch.randn(1, *model.analysis.input_shape, dtype=torch.float64)
    with torch.no_grad():
        want, got = model(x), fused(x)
    assert got.dtype == torch.float64
    assert ((got - want).norm() / want.norm()).item() < 1e-12


def test_resnet50_fuses_every_conv_with_its_bn_relu_and_residual():
    model = archc.build("resnet50")
    g = archc.fuse(model).graph
    fused = {n.name: n for n in g.nodes() if n.op == "conv_bn_act"}
    assert len(fused) == 53 and not any(n.op in ("conv", "bn", "add") for n in g.nodes())
    conv3 = fused["layer1.0.conv3"]
    assert g.inputs("layer1.0.conv3") == ["layer1.0.conv2", "layer1.0.downsample.0"]
    assert (conv3.attrs["bn"], conv3.attrs["act"]) == ("layer1.0.bn3", "relu")
    assert fused["layer1.0.downsample.0"].attrs["act"] == "none"
    assert g.inputs("layer1.1.conv3") == ["layer1.1.conv2", "layer1.0.conv3"]
    assert model.graph["layer1.0.bn1"].op == "bn", "the trained module's graph is left alone"


def test_producer_read_twice_is_not_fused():
    text = ("archc: 1\nname: t\ninput: [4, 8, 8]\ngraph:\n  - c: {conv: {out: 4, k: 3, pad: 1}}\n"
            "  - b: bn\n  - r: relu\n  - s: {add: null, from: [b, r]}\n  - d: {dropout: {p: 0.5}}\n")
    model = randomise_bn(archc.build(archc.loads(text, "t.yaml"))).eval()
    fused = archc.fuse(model)
    ops = {n.name: n.op for n in fused.graph.nodes()}
    assert ops == {"input": "input", "c": "conv_bn_act", "r": "relu", "s": "add"}  # bn read twice: act not fused
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), model(x), rtol=1e-5, atol=1e-5)


def test_fused_state_dict_holds_folded_weights():
    model = randomise_bn(archc.build("resnext50_32x4d")).eval()
    fused = archc.fuse(model)
    keys = set(fused.state_dict())
    assert "layer1.0.conv1.weight" in keys and "layer1.0.conv1.bias" in keys
    assert not any(".bn" in k for k in keys)
    bn = model.get_submodule("layer1.0.bn1")
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    torch.testing.assert_close(fused.state_dict()["layer1.0.conv1.weight"],
                               model.get_submodule("layer1.0.conv1").weight * scale.view(-1, 1, 1, 1))


def test_modules_export():
    """Built and fused modules trace and export like any nn.Module (the executor is plain Python over a
    static plan), so archc models deploy through TorchScript or torch.export."""
    model = randomise_bn(archc.build("resnet18")).eval()
    fused = archc.fuse(model)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        want = model(x)
        exported = torch.export.export(fused, (x,)).module()
        torch.testing.assert_close(exported(x), want, rtol=1e-4, atol=1e-4)
        traced = torch.jit.trace(model, x)
        torch.testing.assert_close(traced(x), want)
