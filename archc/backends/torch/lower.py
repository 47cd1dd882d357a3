"""The lowering table: how PyTorch runs each op of archc/ir/ops.py, as a builder of an nn.Module from the op's
attributes and its input shapes. Every op but the input has one (a test checks)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from archc.backends.torch import PLUGINS, layers
from archc.backends.torch.fused import FusedConvBNAct
from archc.ir.graph import Node
from archc.ir.ops import Shape, pair, slice_range, split_range
from archc_kernels.shapes import pads_past_window


def _conv(a: dict, in_shapes: list[Shape]) -> nn.Module:
    if a.get("table") is not None:
        return layers.TableConv2d(in_shapes[0][0], a["table"], pair(a["k"]), pair(a["stride"]), pair(a["pad"]),
                                  pair(a["dilation"]), a["bias"])
    cls = layers.PaddedConv2d if pads_past_window(a["k"], a["pad"], a["dilation"]) else nn.Conv2d
    return cls(in_shapes[0][0], a["out"], pair(a["k"]), pair(a["stride"]), pair(a["pad"]), pair(a["dilation"]),
               a["groups"], a["bias"])


def _bn(a: dict, in_shapes: list[Shape]) -> nn.Module:
    cls = nn.BatchNorm2d if len(in_shapes[0]) == 3 else nn.BatchNorm1d
    return cls(in_shapes[0][0], eps=a["eps"], momentum=a["momentum"], affine=a["affine"])


def _torch(name: str, **fixed) -> Callable:
    """A parameter-free torch.nn module whose arguments are the op's attributes."""
    return lambda a, in_shapes: getattr(nn, name)(**fixed, **a)


def _tanh(a: dict, in_shapes: list[Shape]) -> nn.Module:
    return nn.Tanh() if a["scale"] == a["slope"] == 1 else layers.ScaledTanh(a["scale"], a["slope"])


def _maxpool(a: dict, in_shapes: list[Shape]) -> nn.Module:
    return nn.MaxPool2d(pair(a["k"]), pair(a["stride"] or a["k"]), pair(a["pad"]), ceil_mode=a["ceil"])


def _avgpool(a: dict, in_shapes: list[Shape]) -> nn.Module:
    return nn.AvgPool2d(pair(a["k"]), pair(a["stride"] or a["k"]), pair(a["pad"]), ceil_mode=a["ceil"],
                        count_include_pad=a["count_include_pad"], divisor_override=a["divisor"])


def _linear(a: dict, in_shapes: list[Shape]) -> nn.Module:
    cls = nn.Linear if len(in_shapes[0]) == 1 else layers.PixelLinear
    return cls(in_shapes[0][0], a["out"], a["bias"])


def _upsample(a: dict, in_shapes: list[Shape]) -> nn.Module:
    size = None if a["size"] is None else pair(a["size"])
    scale = None if a["scale"] is None else float(a["scale"])
    corners = a["align_corners"] if a["mode"] == "bilinear" else None
    return nn.Upsample(size=size, scale_factor=scale, mode=a["mode"], align_corners=corners)


def _conv_transpose(a: dict, in_shapes: list[Shape]) -> nn.Module:
    return nn.ConvTranspose2d(in_shapes[0][0], a["out"], pair(a["k"]), pair(a["stride"]), pair(a["pad"]),
                              pair(a["output_pad"]), a["groups"], a["bias"], pair(a["dilation"]))


def _softmax(a: dict, in_shapes: list[Shape]) -> nn.Module:
    return nn.Softmax(dim=1) if a["over"] == "channels" else layers.Softmax(a["over"], a["groups"])


def _narrow(cut: Callable) -> Callable:
    """A slice or split's part as a view: its axis and range in the input (the op table's rule), batch first."""
    def build(a: dict, in_shapes: list[Shape]) -> nn.Module:
        axis, start, end = cut(a, in_shapes[0])
        return layers.Narrow(axis + 1, start, end - start)

    return build


def _mean(a: dict, in_shapes: list[Shape]) -> nn.Module:
    return layers.Mean(a["drop_path"]) if a["over"] is None else layers.Reduce("mean", a["over"], a["groups"])


def _fused(a: dict, in_shapes: list[Shape]) -> nn.Module:
    """A fused op with fresh weights of the right shapes (archc.fuse builds it from trained modules instead)."""
    return FusedConvBNAct(_conv({**a, "bias": a["bias"] or a["bn"] is not None}, in_shapes[:1]), None, a["act"])


LOWERINGS: dict[str, Callable[[dict, list[Shape]], nn.Module]] = {
    "conv": _conv,
    "bn": _bn,
    "relu": _torch("ReLU"),
    "relu6": _torch("ReLU6"),
    "sigmoid": _torch("Sigmoid"),
    "silu": _torch("SiLU"),
    "gelu": _torch("GELU"),
    "hardswish": _torch("Hardswish"),
    "hardsigmoid": _torch("Hardsigmoid"),
    "leaky_relu": lambda a, i: nn.LeakyReLU(a["slope"]),
    "tanh": _tanh,
    "softmax": _softmax,
    "sum": lambda a, i: layers.Reduce("sum", a["over"], a["groups"]),
    "affine": lambda a, i: layers.Affine(a["scale"], a["shift"]),
    "slice": _narrow(slice_range),
    "split": _narrow(split_range),
    "layernorm": lambda a, i: layers.ChannelLayerNorm(i[0][0], eps=a["eps"]),
    "groupnorm": lambda a, i: nn.GroupNorm(a["groups"], i[0][0], eps=a["eps"]),
    "scale": lambda a, i: layers.Scale(i[0], a["init"]),
    "lrn": _torch("LocalResponseNorm"),
    "maxpool": _maxpool,
    "avgpool": _avgpool,
    "adaptive_avgpool": lambda a, i: nn.AdaptiveAvgPool2d(pair(a["size"])),
    "gap": lambda a, i: nn.AdaptiveAvgPool2d(1),
    "dropout": _torch("Dropout"),
    "drop_path": lambda a, i: layers.DropPath(a["p"], a["mode"]),
    "linear": _linear,
    "flatten": _torch("Flatten"),
    "identity": _torch("Identity"),
    "pad_channels": lambda a, i: layers.PadChannels(a["out"]),
    "rbf": lambda a, i: layers.RBF(i[0][0], a["out"]),
    "chunk": lambda a, i: layers.Chunk(a["chunks"], a["index"]),
    "channel_shuffle": lambda a, i: layers.ChannelShuffle(a["groups"]),
    "upsample": _upsample,
    "conv_transpose": _conv_transpose,
    "crop": lambda a, i: layers.CenterCrop(),
    "concat": lambda a, i: layers.Concat(),
    "add": lambda a, i: layers.Add(),
    "mul": lambda a, i: layers.Mul(),
    "sub": lambda a, i: layers.Sub(),
    "mean": _mean,
    "conv_bn_act": _fused,
}


def lower(node: Node, in_shapes: list[Shape]) -> nn.Module:
    """The module computing a node: from the lowering table, or from the plugin that registered its op."""
    return (LOWERINGS.get(node.op) or PLUGINS[node.op])(node.attrs, in_shapes)
