"""The lowering table: how PyTorch runs each op of archc/ir/ops.py, as a builder of an nn.Module from the op's
attributes and its input shapes. Every op but the input has one (a test checks)."""

from __future__ import annotations

from typing import Callable

from torch import nn

from archc.backends.torch import layers
from archc.backends.torch.fused import FusedConvBNAct
from archc.ir.graph import Node
from archc.ir.ops import Shape, pair


def _conv(a: dict, in_shapes: list[Shape]) -> nn.Module:
    if a.get("table") is not None:
        return layers.TableConv2d(in_shapes[0][0], a["table"], pair(a["k"]), pair(a["stride"]), pair(a["pad"]),
                                  pair(a["dilation"]), a["bias"])
    return nn.Conv2d(in_shapes[0][0], a["out"], pair(a["k"]), pair(a["stride"]), pair(a["pad"]),
                     pair(a["dilation"]), a["groups"], a["bias"])


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


def _fused(a: dict, in_shapes: list[Shape]) -> nn.Module:
    """A fused op with fresh weights of the right shapes (archc.fuse builds it from trained modules instead)."""
    return FusedConvBNAct(_conv({**a, "bias": a["bias"] or a["bn"] is not None}, in_shapes[:1]), None, a["act"])


LOWERINGS: dict[str, Callable[[dict, list[Shape]], nn.Module]] = {
    "conv": _conv,
    "bn": _bn,
    "relu": _torch("ReLU"),
    "relu6": _torch("ReLU6"),
    "sigmoid": _torch("Sigmoid"),
    "tanh": _tanh,
    "softmax": _torch("Softmax", dim=1),
    "lrn": _torch("LocalResponseNorm"),
    "maxpool": _maxpool,
    "avgpool": _avgpool,
    "adaptive_avgpool": lambda a, i: nn.AdaptiveAvgPool2d(pair(a["size"])),
    "gap": lambda a, i: nn.AdaptiveAvgPool2d(1),
    "dropout": _torch("Dropout"),
    "drop_path": lambda a, i: layers.DropPath(a["p"]),
    "linear": lambda a, i: nn.Linear(i[0][0], a["out"], a["bias"]),
    "flatten": _torch("Flatten"),
    "identity": _torch("Identity"),
    "pad_channels": lambda a, i: layers.PadChannels(a["out"]),
    "rbf": lambda a, i: layers.RBF(i[0][0], a["out"]),
    "concat": lambda a, i: layers.Concat(),
    "add": lambda a, i: layers.Add(),
    "mean": lambda a, i: layers.Mean(a["drop_path"]),
    "conv_bn_act": _fused,
}


def lower(node: Node, in_shapes: list[Shape]) -> nn.Module:
    return LOWERINGS[node.op](node.attrs, in_shapes)
