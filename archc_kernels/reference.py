"""The specification of the fused ops in plain PyTorch; also the CPU implementation.

``conv_bn_act(x, w, scale, shift, ...) = act(conv2d(x, w) * scale[c] + shift[c] + residual)``.
With ``scale=None`` the weight already carries the scale (BN folded into it) and ``shift`` is a
plain bias, so the whole op is one ``F.conv2d`` plus in-place epilogue ops.
"""
import torch
import torch.nn.functional as F

# name -> in-place activation (None: identity). The Triton path has a code for every name.
ACTIVATIONS = {
    "none": None,
    "relu": torch.relu_,
    "relu6": lambda y: y.clamp_(0.0, 6.0),
    "sigmoid": torch.sigmoid_,
    "tanh": torch.tanh_,
}


def activation_name(act) -> str:
    """Canonical activation name; None means "none". Unknown names raise ValueError."""
    name = "none" if act is None else act
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; expected one of {sorted(ACTIVATIONS)}")
    return name


def conv_bn_act(x, weight, scale=None, shift=None, *, stride=1, padding=0, dilation=1, groups=1,
                act="relu", residual=None):
    activation = ACTIVATIONS[activation_name(act)]
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
