"""The inference module: eval-mode graph passes, BN folded into conv weights, conv + BN + activation
(+ residual) run by archc_kernels (Triton on CUDA, reference PyTorch elsewhere)."""

from __future__ import annotations

import torch
from torch import nn

import archc_kernels
from archc.passes import INFERENCE, run


class FusedConvBNAct(nn.Module):
    """act(conv(x, weight) + bias [+ residual]) with BN already folded into weight and bias."""

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d | None, act: str):
        super().__init__()
        weight, bias = conv.weight.detach(), conv.bias
        if bn is not None:
            scale, shift = archc_kernels.fold_bn(bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.eps,
                                                 conv_bias=bias, dtype=torch.float64)
            weight, bias = archc_kernels.fold_weight(weight, scale), shift.to(weight.dtype)
        self.weight = nn.Parameter(weight.clone(), requires_grad=False)
        self.bias = nn.Parameter(bias.detach().clone(), requires_grad=False) if bias is not None else None
        self.stride, self.padding, self.dilation, self.groups = conv.stride, conv.padding, conv.dilation, conv.groups
        self.act = act

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        return archc_kernels.conv_bn_act(x, self.weight, None, self.bias, stride=self.stride, padding=self.padding,
                                         dilation=self.dilation, groups=self.groups, act=self.act,
                                         residual=residual)

    def extra_repr(self) -> str:
        o, i, kh, kw = self.weight.shape
        return f"{i * self.groups}, {o}, kernel_size=({kh}, {kw}), stride={self.stride}, act={self.act}"


def fuse(model):
    """A new eval-only module computing model.eval()'s function with fused ops. `model` is unchanged.

    Fused weights are stored channels_last: the Triton kernels read channels (K) contiguously, and on the
    CPU PyTorch's oneDNN convolutions then run channels_last end to end (measured: bench/cpu_inference.py).
    """
    from archc.backends.torch.executor import ArchcModule

    g = model.graph.copy()
    g.outputs = [o for o in g.outputs if not o.aux]
    for n in reversed(g.order()):
        if g[n].meta["aux"]:
            g.erase(n)
    run(g, INFERENCE)
    modules = {}
    for node in g.nodes():
        if node.name == g.input or node.module in modules:
            continue
        if node.op == "conv_bn_act":
            a = node.attrs
            bn = model.get_submodule(a["bn"]) if a["bn"] else None
            modules[node.module] = FusedConvBNAct(model.get_submodule(a["conv"]), bn, a["act"])
        else:
            modules[node.module] = model.get_submodule(node.module)
    fused = ArchcModule(g, modules).eval().to(memory_format=torch.channels_last)
    fused.analysis = model.analysis
    return fused
