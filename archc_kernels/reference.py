"""The specification of the fused ops in plain PyTorch; also the CPU implementation.

``conv_bn_act(x, w, scale, shift, ...) = act(conv2d(x, w) * scale[c] + shift[c] + residual)``.
With ``scale=None`` the weight already carries the scale (BN folded into it) and ``shift`` is a
plain bias, so the whole op is one ``F.conv2d`` plus in-place epilogue ops.
"""
import torch.nn.functional as F

from .activations import ACTIVATIONS, activation_name
from .shapes import pads_past_window, pair


def conv_bn_act(x, weight, scale=None, shift=None, *, stride=1, padding=0, dilation=1, groups=1,
                act="relu", residual=None):
    activation = ACTIVATIONS[activation_name(act)].inplace
    if pads_past_window(weight.shape[2:], padding, dilation):  # (see shapes.pads_past_window)
        ph, pw = pair(padding)
        x, padding = F.pad(x, (pw, pw, ph, ph)), 0
    if scale is None:
        bias = None if shift is None else shift.to(x.dtype)
        y = F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    else:
        y = F.conv2d(x, weight, None, stride, padding, dilation, groups)
        y.mul_(scale.view(-1, 1, 1))
        if shift is not None:
            y.add_(shift.view(-1, 1, 1))
    if residual is not None:
        y.add_(residual)
    if activation is not None:
        activation(y)
    return y
