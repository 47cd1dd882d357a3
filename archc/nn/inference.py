"""An inference module from a trained ArchcModule: eval-mode graph passes, BN folded into conv weights,
conv + BN + activation (+ residual) run by archc_kernels (Triton on CUDA, reference PyTorch elsewhere)."""

from __future__ import annotations

import copy

import torch
from torch import nn

import archc_kernels
from archc.nn.module import ArchcModule
from archc.passes import run
from archc.passes.fuse import INFERENCE


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
        # Routed and prepared once per kind of input; holds the parameters by reference, so .to() is seen.
        self.op = archc_kernels.ConvBNAct(self.weight, None, self.bias, stride=self.stride, padding=self.padding,
                                          dilation=self.dilation, groups=self.groups, act=act)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        return self.op(x, residual)

    def extra_repr(self) -> str:
        o, i, kh, kw = self.weight.shape
        return f"{i * self.groups}, {o}, kernel_size=({kh}, {kw}), stride={self.stride}, act={self.act}"


def fuse(model: ArchcModule) -> ArchcModule:
    """A new eval-only module computing model.eval()'s function with fused ops. `model` is unchanged.

    Fused weights are stored channels_last: the Triton kernels read channels (K) contiguously, and on the
    CPU PyTorch's oneDNN convolutions then run channels_last end to end (measured: bench/cpu_inference.py).
    """
    g = copy.deepcopy(model.graph)
    g.graph["outputs"] = [o for o in g.graph["outputs"] if not o["aux"]]
    g.remove_nodes_from([n for n, d in list(g.nodes(data=True)) if d["aux"]])
    run(g, INFERENCE)
    modules = {}
    for _, d in g.nodes(data=True):
        if d["op"] == "input" or d["module"] in modules:
            continue
        if d["op"] == "conv_bn_act":
            a = d["attrs"]
            bn = model.get_submodule(a["bn"]) if a["bn"] else None
            modules[d["module"]] = FusedConvBNAct(model.get_submodule(a["conv"]), bn, a["act"])
        else:
            modules[d["module"]] = model.get_submodule(d["module"])
    fused = ArchcModule(g, modules).eval().to(memory_format=torch.channels_last)
    fused.analysis = model.analysis
    return fused
