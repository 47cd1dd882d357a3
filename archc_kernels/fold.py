"""Batch-norm folding: pure tensor math, computed in float64.

In eval mode ``bn(conv(x) + conv_bias) == conv(x) * scale + shift`` per output channel, and
``conv(x, w) * scale == conv(x, fold_weight(w, scale))``.
"""
import torch

_F64 = torch.float64


def fold_bn(running_mean, running_var, weight=None, bias=None, eps=1e-5, conv_bias=None, dtype=torch.float32):
    """(scale, shift) with scale = gamma / sqrt(var + eps), shift = beta + (conv_bias - mean) * scale,
    computed in float64 and returned as ``dtype`` (float32 by default; float64 to fold without rounding).

    ``weight`` / ``bias`` are BN's gamma / beta (None: 1 / 0, as with ``affine=False``).
    """
    scale = torch.rsqrt(running_var.to(_F64) + eps)
    if weight is not None:
        scale = scale * weight.to(_F64)
    centred = -running_mean.to(_F64) if conv_bias is None else conv_bias.to(_F64) - running_mean.to(_F64)
    shift = centred * scale
    if bias is not None:
        shift = shift + bias.to(_F64)
    return scale.to(dtype), shift.to(dtype)


def fold_weight(weight, scale):
    """The conv weight with the per-output-channel ``scale`` folded in, rounded once to weight's dtype."""
    return (weight.to(_F64) * scale.to(_F64).view(-1, 1, 1, 1)).to(weight.dtype)
