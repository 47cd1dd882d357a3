"""The fused op's module: conv + BN + activation (+ residual) as one archc_kernels call (Triton on CUDA,
reference PyTorch elsewhere), with BN folded into the conv's weight and bias."""

from __future__ import annotations

import torch
from torch import nn

import archc_kernels


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
        if torch.compiler.is_compiling() or torch.jit.is_tracing():  # tracers see this module's own parameters
            return archc_kernels.conv_bn_act(x, self.weight, None, self.bias, stride=self.stride, padding=self.padding,
                                             dilation=self.dilation, groups=self.groups, act=self.act,
                                             residual=residual)
        return self.op(x, residual)

    def extra_repr(self) -> str:
        o, i, kh, kw = self.weight.shape
        return f"{i * self.groups}, {o}, kernel_size=({kh}, {kw}), stride={self.stride}, act={self.act}"
