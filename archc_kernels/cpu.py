"""conv_bn_act on the CPU as oneDNN runs it: the weight pre-packed once, BN folded, bias, residual add and
activation as oneDNN post-ops, channels_last activations end to end.

PyTorch exposes oneDNN's fused convolutions as ``torch.ops.mkldnn`` ops (what Inductor's freezing calls):
``_reorder_convolution_weight`` packs a weight into oneDNN's blocked layout for one input size,
``_convolution_pointwise`` runs conv + bias + a unary post-op, ``_convolution_pointwise.binary`` adds a residual
(sum post-op) before the unary one, and ``_convolution_pointwise_.binary`` does so in place, into the residual's
own storage. ``Packed`` prepares one such call; ``plan``/``conv_bn_act`` have the reference's signature.
What these ops do not take goes to the reference (``declines``), which stays the specification.
"""
import functools

import torch

from .activations import ACTIVATIONS, activation_name
from .shapes import conv_output_hw, pads_past_window, pair

# The activations the residual (binary) forms fuse after the add (oneDNN's sum post-op then a unary one is
# defined for these only); others run in place afterwards.
BINARY_UNARY = ("none", "relu")


@functools.cache
def available() -> bool:
    """True when this PyTorch has oneDNN and its fused convolution ops."""
    if not torch.backends.mkldnn.is_available():
        return False
    ops = torch.ops.mkldnn
    try:
        return all([ops._reorder_convolution_weight.default, ops._convolution_pointwise.default,
                    ops._convolution_pointwise.binary, ops._convolution_pointwise_.binary])
    except (AttributeError, RuntimeError):
        return False


@functools.cache
def dtypes() -> tuple:
    """Activation dtypes oneDNN computes on this CPU."""
    out = [torch.float32]
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        out.append(torch.bfloat16)
    if torch.ops.mkldnn._is_mkldnn_fp16_supported():
        out.append(torch.float16)
    return tuple(out)


def declines(x, weight, scale, shift, residual, stride, padding, dilation, groups) -> str | None:
    """Why the oneDNN path does not take this call (None: it does). The reference then computes it."""
    if not available():
        return "this PyTorch has no oneDNN fused convolution ops"
    if torch.compiler.is_compiling() or torch.jit.is_tracing():
        return "tracing: traced and exported graphs keep plain convolutions"
    if x.device.type != "cpu" or x.dim() != 4 or weight.dim() != 4 or x.layout != torch.strided:
        return "not a 4-d strided CPU tensor"
    if x.dtype not in dtypes():
        return f"dtype {x.dtype} is not one oneDNN computes here ({', '.join(map(str, dtypes()))})"
    tensors = [t for t in (x, weight, scale, shift, residual) if t is not None]
    if any(t.device != x.device for t in tensors) or any(t.dtype != x.dtype for t in (weight, residual)
                                                         if t is not None):
        return "mixed dtypes or devices"
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return "autograd: oneDNN's fused ops have no backward"
    try:
        conv = [pair(v) for v in (stride, padding, dilation)]
    except ValueError:
        return "arguments the fused ops do not take (the reference raises if invalid)"
    if not isinstance(groups, int) or groups < 1 or min(conv[0] + conv[2]) < 1 or min(conv[1]) < 0:
        return "arguments the fused ops do not take (the reference raises if invalid)"
    if x.shape[1] != weight.shape[1] * groups or weight.shape[0] % groups:
        return "arguments the fused ops do not take (the reference raises if invalid)"
    if any(t is not None and tuple(t.shape) != (weight.shape[0],) for t in (scale, shift)):
        return "arguments the fused ops do not take (the reference raises if invalid)"
    out = (x.shape[0], weight.shape[0], *conv_output_hw(x.shape[2:], weight.shape[2:], *conv))
    if min(out) < 1 or residual is not None and tuple(residual.shape) != out:
        return "arguments the fused ops do not take (the reference raises if invalid)"
    return None


class Packed:
    """One conv_bn_act call prepared for inputs of one shape (``x_shape``) and dtype: the weight, with ``scale``
    folded in (float64, rounded once), packed into oneDNN's layout for that input size; ``shift`` as the bias.

    ``packed(x)`` / ``packed(x, residual)`` return a new channels_last tensor; ``packed.into(residual, x)``
    writes the result over ``residual`` (which must then be channels_last-contiguous and read by no one else).
    Generated code calls the ops directly: ``op(x, *args)``, and, when ``fuses_residual``,
    ``op_binary(x, residual, *binary_args)`` or ``op_inplace(residual, x, *binary_args)`` then ``after``, with
    ``pad_input(x)`` for x where it is not None (windows wholly in the padding: see shapes.pads_past_window).
    """

    op = torch.ops.mkldnn._convolution_pointwise.default if available() else None
    op_binary = torch.ops.mkldnn._convolution_pointwise.binary if available() else None
    op_inplace = torch.ops.mkldnn._convolution_pointwise_.binary if available() else None

    def __init__(self, x_shape, dtype, weight, scale=None, shift=None, *, stride=1, padding=0, dilation=1, groups=1,
                 act="relu"):
        self.act = activation_name(act)
        stride, padding, dilation = (list(pair(v)) for v in (stride, padding, dilation))
        self.out_shape = (x_shape[0], weight.shape[0],
                          *conv_output_hw(x_shape[2:], weight.shape[2:], stride, padding, dilation))
        # Windows wholly in the padding crash oneDNN on some inputs: pad explicitly, convolve unpadded.
        self.pad_input = None
        if pads_past_window(weight.shape[2:], padding, dilation):
            (ph, pw), padding = padding, [0, 0]
            self.pad_input = functools.partial(torch.nn.functional.pad, pad=(pw, pw, ph, ph))
            x_shape = (*x_shape[:2], x_shape[2] + 2 * ph, x_shape[3] + 2 * pw)
        w = weight.detach()
        if scale is not None:
            w = (w.double() * scale.detach().double().view(-1, 1, 1, 1))
        w = w.to(dtype).contiguous(memory_format=torch.channels_last)
        self.weight = torch.ops.mkldnn._reorder_convolution_weight(w, padding, stride, dilation, groups,
                                                                   list(x_shape))
        self.bias = None if shift is None else shift.detach().to(dtype).contiguous()
        activation = ACTIVATIONS[self.act]
        attr, scalars, algorithm = activation.onednn or ("none", [], None)
        conv = (self.weight, self.bias, padding, stride, dilation, groups)
        self.args = (*conv, attr, scalars, algorithm)
        self.applied_after = activation.inplace if activation.onednn is None else None
        # With a residual: the add, then relu (or nothing) fused; any other activation runs in place after.
        # oneDNN fuses the add for ungrouped convs only (PyTorch falls back otherwise, without bf16 support):
        # grouped ones add the residual in place after the conv.
        fused = self.act if self.act in BINARY_UNARY else "none"
        self.binary_args = (*conv, "add", None, None if fused == "none" else fused, [], None)
        self.after = None if self.act in BINARY_UNARY else activation.inplace
        self.fuses_residual = groups == 1
        self.plain_args = (*conv, "none", [], None)

    def __call__(self, x, residual=None):
        if self.pad_input is not None:
            x = self.pad_input(x)
        if residual is None:
            y = self.op(x, *self.args)
            return y if self.applied_after is None else self.applied_after(y)
        if not self.fuses_residual:
            return self._add_after(self.op(x, *self.plain_args), residual)
        y = self.op_binary(x, residual, *self.binary_args)
        return y if self.after is None else self.after(y)

    def into(self, residual, x):
        """The result written over ``residual`` (returned); residual += conv(x) as oneDNN's sum post-op."""
        if self.pad_input is not None:
            x = self.pad_input(x)
        if not self.fuses_residual:
            return self._add_after(residual.add_(self.op(x, *self.plain_args)), None)
        y = self.op_inplace(residual, x, *self.binary_args)
        return y if self.after is None else self.after(y)

    def _add_after(self, y, residual):
        if residual is not None:
            y.add_(residual)
        act = ACTIVATIONS[self.act].inplace
        return y if act is None else act(y)


def plan(x, weight, scale=None, shift=None, *, stride=1, padding=0, dilation=1, groups=1, act="relu",
         residual=None):
    """A callable(x, residual) computing conv_bn_act for inputs like these (ConvBNAct keeps it)."""
    return Packed(x.shape, x.dtype, weight, scale, shift, stride=stride, padding=padding, dilation=dilation,
                  groups=groups, act=act)


def conv_bn_act(x, weight, scale=None, shift=None, *, stride=1, padding=0, dilation=1, groups=1, act="relu",
                residual=None):
    """The reference's function on oneDNN (packing the weight on every call: prepare with ``plan`` instead)."""
    return plan(x, weight, scale, shift, stride=stride, padding=padding, dilation=dilation, groups=groups,
                act=act)(x, residual)
