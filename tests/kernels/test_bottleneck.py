"""bottleneck() against a torchvision-layout (v1.5) ResNet/ResNeXt block of nn modules, in float64."""
import pytest
import torch
from torch import nn

from archc_kernels import bottleneck, fold_bn, fold_weight
from archc_kernels.dispatch import triton_importable

F64 = torch.float64


def _bn(channels):
    bn = nn.BatchNorm2d(channels).to(F64).eval()
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2.0)
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.normal_(0.0, 0.1)
    return bn


class Block(nn.Module):
    """torchvision's Bottleneck: stride on the 3x3, optional 1x1 projection shortcut."""

    def __init__(self, cin, width, cout, stride, groups):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, width, 1, bias=False), _bn(width)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False), _bn(width)
        self.conv3, self.bn3 = nn.Conv2d(width, cout, 1, bias=False), _bn(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), _bn(cout))
        self.to(F64)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return torch.relu(y + (x if self.downsample is None else self.downsample(x)))

    def params(self, dtype, folded):
        """{"conv1", ...} -> (weight, scale, shift); folded: BN in the weight, scale None."""
        pairs = {"conv1": (self.conv1, self.bn1), "conv2": (self.conv2, self.bn2), "conv3": (self.conv3, self.bn3)}
        if self.downsample is not None:
            pairs["downsample"] = tuple(self.downsample)
        params = {}
        for name, (conv, bn) in pairs.items():
            scale, shift = fold_bn(bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.eps)
            weight = conv.weight.detach()
            if folded:
                weight, scale = fold_weight(weight, scale), None
            params[name] = (weight.to(dtype).contiguous(memory_format=torch.channels_last), scale, shift)
        return params


# id: (cin, width, cout, stride, groups)
BLOCKS = {
    "projection": (16, 16, 32, 1, 1),
    "identity_shortcut": (32, 16, 32, 1, 1),
    "stride2_groups2": (32, 32, 64, 2, 2),
    "resnext_narrow_groups": (16, 32, 32, 1, 8),  # conv2 runs the multi-group kernel
}


def _run(block_case, dtype, folded, device, check):
    cin, width, cout, stride, groups = block_case
    block = Block(cin, width, cout, stride, groups).to(device)
    x = torch.randn(2, cin, 6, 5, device=device, dtype=F64)
    with torch.no_grad():
        expect = block(x)
        out = bottleneck(x.to(dtype).contiguous(memory_format=torch.channels_last), block.params(dtype, folded),
                         stride=stride, groups=groups)
    check(out, expect, dtype)


@pytest.mark.parametrize("folded", [False, True], ids=["scale_shift", "folded"])
@pytest.mark.parametrize("case", BLOCKS.values(), ids=BLOCKS.keys())
def test_reference_backend(case, folded, monkeypatch, device, check):
    monkeypatch.setenv("ARCHC_KERNELS", "reference")
    _run(case, torch.float32, folded, device, check)


@pytest.mark.skipif(not triton_importable(), reason="triton is not importable")
@pytest.mark.parametrize("case", BLOCKS.values(), ids=BLOCKS.keys())
def test_triton_backend(case, dtype, monkeypatch, device, check):
    monkeypatch.setenv("ARCHC_KERNELS", "triton")
    _run(case, dtype, True, device, check)
