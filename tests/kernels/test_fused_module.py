"""archc.fuse's modules on the Triton path (CUDA, or CPU tensors in Triton's interpreter): the same function as the
eager module at other input sizes than the spec's, batch 1 and 3, contiguous and channels_last, with the kernels'
launches prepared per kind of input and switching back and forth. Small specs: the interpreter is slow."""

import pytest
import torch

import archc

SPECS = {
    "bottleneck_projection": """
      - stem: {conv: {out: 8, k: 3, stride: 2, pad: 1, bias: false}}
      - bn: bn
      - relu: relu
      - block: {residual: {body: [{conv: {out: 4, k: 1, bias: false}}, bn, relu,
                                  {conv: {out: 4, k: 3, stride: 2, pad: 1, bias: false}}, bn, relu,
                                  {conv: {out: 16, k: 1, bias: false}}, bn],
                           shortcut: auto, post: relu}}
    """,
    "grouped_depthwise_concat": """
      - c0: {conv: {out: 16, k: 3, pad: 1}}
      - c1: {conv: {out: 16, k: 3, pad: 1, groups: 4, bias: false}}
      - b1: bn
      - a1: silu
      - dw: {conv: {out: 16, k: 3, pad: 1, groups: 16, bias: false}}
      - b2: bn
      - a2: hardswish
      - mixed: {branches: {p: [{conv: {out: 8, k: 1}}, relu6], q: [{conv: {out: 8, k: 3, pad: 1}}, sigmoid]}}
    """,
}


def build(body, device):
    text = "archc: 1\nname: t\ninput: [3, 12, 12]\ngraph:\n" + "\n".join(
        line[4:] for line in body.strip("\n").splitlines()) + "\n"
    torch.manual_seed(0)
    model = archc.build(archc.loads(text, "t.yaml")).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    return model.to(device)


@pytest.mark.parametrize("name", SPECS)
def test_fused_module_on_the_triton_path_at_other_sizes(name, monkeypatch, device):
    monkeypatch.setenv("ARCHC_KERNELS", "triton")
    model = build(SPECS[name], device)
    fused = archc.fuse(model)
    assert any(n.op == "conv_bn_act" for n in fused.graph.nodes())
    runs = [((12, 12), 1, False), ((7, 9), 3, True), ((16, 13), 1, True), ((12, 12), 3, False), ((7, 9), 1, False)]
    for hw, batch, channels_last in runs:
        x = torch.randn(batch, 3, *hw, device=device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            want = model.double()(x.double())
            model.float()
            got = fused(x)
        err = ((got.double() - want).norm() / want.norm()).item()
        assert got.dtype == torch.float32 and err < 1e-5, (hw, batch, channels_last, err)
    routes = {m.op.describe() for m in fused.modules() if hasattr(m, "op") and hasattr(m.op, "describe")}
    assert all(r.startswith("triton.") for r in routes), routes
