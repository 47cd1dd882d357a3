"""The op table: the one place that knows each primitive op.

Each entry holds the op's arguments (from which the JSON Schema fragment is generated),
its shape rule, its parameter and multiply-accumulate (MAC) counts, its receptive-field
rule and its PyTorch builder. Shapes are per sample, without the batch: [C, H, W] or [F].
Adding an op is adding one entry here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from archc.errors import ShapeError

REQUIRED = object()
Shape = tuple[int, ...]


@dataclass(frozen=True)
class Arg:
    """One op argument. kind: int | int2 (int or [h, w]) | float | bool | table (list of int lists)."""

    kind: str
    default: object = REQUIRED
    doc: str = ""
    lo: float | None = None  # inclusive lower bound
    hi: float | None = None  # exclusive upper bound


@dataclass(frozen=True)
class Op:
    name: str
    doc: str
    shape: Callable[[dict, list[Shape]], Shape]
    build: Callable[[dict, list[Shape]], object]
    args: dict[str, Arg] = field(default_factory=dict)
    params: Callable[[dict, list[Shape], Shape], int] = lambda a, i, o: 0
    macs: Callable[[dict, list[Shape], Shape], int] = lambda a, i, o: 0
    window: Callable[[dict, list[Shape]], tuple] | None = None  # -> (k, s, d, p) per axis, for the receptive field
    arity: int | None = 1  # None: any number of inputs >= 1 (joins)
    view: bool = False  # in inference the output aliases its input (flatten, dropout): no activation memory
    internal: bool = False  # created by constructs, not writable as an op in a spec
    stateful: bool = False  # has parameters or buffers: its name must be unique in its scope


def pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _spatial(op: str, in_shapes: list[Shape]) -> Shape:
    (s,) = in_shapes
    if len(s) != 3:
        raise ShapeError(f"{op} needs a [C, H, W] input, got {list(s)}")
    return s


def window_out(size: int, k: int, s: int, p: int, d: int = 1, ceil: bool = False) -> int:
    """PyTorch's output-size arithmetic for conv and pooling along one axis."""
    span = size + 2 * p - d * (k - 1) - 1
    if ceil:
        out = -(-span // s) + 1
        if (out - 1) * s >= size + p:
            out -= 1
    else:
        out = span // s + 1
    return out


def _windowed(op: str, a: dict, in_shapes: list[Shape], out_c: int) -> Shape:
    c, h, w = _spatial(op, in_shapes)
    k, s, p, d = pair(a["k"]), pair(a["stride"] or a["k"]), pair(a["pad"]), pair(a.get("dilation", 1))
    ceil = a.get("ceil", False)
    hw = [window_out(n, k[i], s[i], p[i], d[i], ceil) for i, n in enumerate((h, w))]
    if min(hw) < 1:
        raise ShapeError(
            f"{op} {k[0]}x{k[1]}/{s[0]} pad {p[0]} on {h}x{w} gives an empty output {hw[0]}x{hw[1]}")
    if op != "conv" and any(2 * p[i] > d[i] * (k[i] - 1) + 1 for i in range(2)):
        raise ShapeError(f"{op} pad {list(p)} is more than half the window {list(k)}")
    return (out_c, *hw)


def _window(a: dict, in_shapes: list[Shape]):
    return pair(a["k"]), pair(a["stride"] or a["k"]), pair(a.get("dilation", 1)), pair(a["pad"])


# conv ---------------------------------------------------------------------------------------

def _conv_shape(a, in_shapes):
    c = _spatial("conv", in_shapes)[0]
    g = a["groups"]
    if a.get("table") is not None:
        table = a["table"]
        if g != 1 or len(table) != a["out"]:
            raise ShapeError(f"conv table needs groups=1 and one row per output channel ({a['out']}), "
                             f"got {len(table)} rows")
        if any(not row or min(row) < 0 or max(row) >= c or len(set(row)) != len(row) for row in table):
            raise ShapeError(f"conv table rows must list distinct input channels in 0..{c - 1}")
    if c % g or a["out"] % g:
        raise ShapeError(f"conv groups={g} must divide in channels {c} and out channels {a['out']}")
    return _windowed("conv", a, in_shapes, a["out"])


def _conv_fan_in(a, in_shapes) -> int:
    """Input channels summed over output channels (a connection table connects fewer than all)."""
    if a.get("table") is not None:
        return sum(len(row) for row in a["table"])
    return a["out"] * (in_shapes[0][0] // a["groups"])


def _conv_params(a, in_shapes, out):
    kh, kw = pair(a["k"])
    return _conv_fan_in(a, in_shapes) * kh * kw + (a["out"] if a["bias"] else 0)


def _conv_macs(a, in_shapes, out):
    kh, kw = pair(a["k"])
    return math.prod(out[1:]) * _conv_fan_in(a, in_shapes) * kh * kw


def _conv_build(a, in_shapes):
    import torch.nn as nn

    if a.get("table") is not None:
        from archc.nn.layers import TableConv2d

        return TableConv2d(in_shapes[0][0], a["table"], pair(a["k"]), pair(a["stride"]), pair(a["pad"]),
                           pair(a["dilation"]), a["bias"])
    return nn.Conv2d(in_shapes[0][0], a["out"], pair(a["k"]), pair(a["stride"]), pair(a["pad"]),
                     pair(a["dilation"]), a["groups"], a["bias"])


# normalisation, activations -------------------------------------------------------------------

def _bn_build(a, in_shapes):
    import torch.nn as nn

    cls = nn.BatchNorm2d if len(in_shapes[0]) == 3 else nn.BatchNorm1d
    return cls(in_shapes[0][0], eps=a["eps"], momentum=a["momentum"], affine=a["affine"])


def _module(name: str, **fixed):
    """Builder for a parameter-free torch.nn module whose arguments are the op's arguments."""

    def build(a, in_shapes):
        import torch.nn as nn

        return getattr(nn, name)(**{**fixed, **a})

    return build


def _tanh_build(a, in_shapes):
    import torch.nn as nn

    if a["scale"] == a["slope"] == 1:
        return nn.Tanh()
    from archc.nn.layers import ScaledTanh

    return ScaledTanh(a["scale"], a["slope"])


def _same(a, in_shapes):
    return in_shapes[0]


# pooling --------------------------------------------------------------------------------------

def _pool_build(kind):
    def build(a, in_shapes):
        import torch.nn as nn

        k, s, p = pair(a["k"]), pair(a["stride"] or a["k"]), pair(a["pad"])
        if kind == "max":
            return nn.MaxPool2d(k, s, p, ceil_mode=a["ceil"])
        return nn.AvgPool2d(k, s, p, ceil_mode=a["ceil"], count_include_pad=a["count_include_pad"],
                            divisor_override=a["divisor"])

    return build


def _adaptive_shape(a, in_shapes):
    c = _spatial("adaptive_avgpool", in_shapes)[0]
    return (c, *pair(a["size"]))


def _adaptive_window(a, in_shapes):
    # Exact when the input divides evenly; otherwise the largest window adaptive pooling uses.
    _, h, w = in_shapes[0]
    oh, ow = pair(a["size"])
    k = (-(-h // oh), -(-w // ow))
    return k, (h // oh, w // ow), (1, 1), (0, 0)


def _adaptive_build(a, in_shapes):
    import torch.nn as nn

    return nn.AdaptiveAvgPool2d(pair(a["size"]))


def _global_window(a, in_shapes):
    _, h, w = in_shapes[0]
    return (h, w), (h, w), (1, 1), (0, 0)


# linear, flatten ----------------------------------------------------------------------------------

def _linear_shape(a, in_shapes):
    (s,) = in_shapes
    if len(s) != 1:
        raise ShapeError(f"linear needs a flat [F] input, got {list(s)} (add a flatten before it)")
    return (a["out"],)


def _linear_build(a, in_shapes):
    import torch.nn as nn

    return nn.Linear(in_shapes[0][0], a["out"], a["bias"])


def _flatten_window(a, in_shapes):
    s = in_shapes[0]
    return _global_window(a, in_shapes) if len(s) == 3 else ((1, 1), (1, 1), (1, 1), (0, 0))


# joins ------------------------------------------------------------------------------------------

def _concat_shape(a, in_shapes):
    rest = {s[1:] for s in in_shapes}
    if len(rest) > 1:
        raise ShapeError("cannot concat " + " and ".join(str(list(s)) for s in in_shapes)
                         + " (sizes other than channels must match)")
    return (sum(s[0] for s in in_shapes), *in_shapes[0][1:])


def _elementwise_shape(name):
    def shape(a, in_shapes):
        if len(set(in_shapes)) > 1:
            raise ShapeError(f"cannot {name} " + " and ".join(str(list(s)) for s in in_shapes))
        return in_shapes[0]

    return shape


def _layer(name, *pass_in):
    """Builder for a module of archc.nn.layers taking the op's arguments (and the input size if asked)."""

    def build(a, in_shapes):
        from archc.nn import layers

        extra = {"in_features": in_shapes[0][0]} if pass_in else {}
        return getattr(layers, name)(**extra, **a)

    return build


def _pad_channels_shape(a, in_shapes):
    (s,) = in_shapes
    if a["out"] < s[0]:
        raise ShapeError(f"pad_channels to {a['out']} would drop channels of {list(s)}")
    return (a["out"], *s[1:])


def _drop_path_build(a, in_shapes):
    from archc.nn.layers import DropPath

    return DropPath(a["p"])


def _int(default=REQUIRED, doc="", lo=1):
    return Arg("int", default, doc=doc, lo=lo)


def _int2(default=REQUIRED, doc="", lo=1):
    return Arg("int2", default, doc=doc, lo=lo)


def _float(default=REQUIRED, doc="", lo=None, hi=None):
    return Arg("float", default, doc=doc, lo=lo, hi=hi)


def _prob(default=REQUIRED, doc=""):
    return _float(default, doc, lo=0.0, hi=1.0)


def _bool(default, doc=""):
    return Arg("bool", default, doc=doc)


_POOL_ARGS = {
    "k": _int2(doc="window size"),
    "stride": _int2(None, doc="default: the window size"),
    "pad": _int2(0, lo=0),
    "ceil": _bool(False, doc="ceil_mode"),
}

_OPS = [
    Op("conv", "2-D convolution (grouped, dilated).", _conv_shape, _conv_build,
       args={"out": _int(doc="output channels"), "k": _int2(doc="kernel size"), "stride": _int2(1),
             "pad": _int2(0, lo=0), "dilation": _int2(1), "groups": _int(1), "bias": _bool(True),
             "table": Arg("table", None, doc="connection table: row j lists the input channels of output j "
                                             "(LeNet-5's C3)")},
       params=_conv_params, macs=_conv_macs, window=_window, stateful=True),
    Op("bn", "Batch normalisation (2-D on [C,H,W], 1-D on [F]).", _same, _bn_build,
       args={"eps": _float(1e-5, lo=0.0), "momentum": _prob(0.1), "affine": _bool(True)},
       params=lambda a, i, o: 2 * i[0][0] if a["affine"] else 0, stateful=True),
    Op("relu", "ReLU.", _same, _module("ReLU")),
    Op("relu6", "ReLU6.", _same, _module("ReLU6")),
    Op("sigmoid", "Logistic sigmoid.", _same, _module("Sigmoid")),
    Op("tanh", "Hyperbolic tangent, scale * tanh(slope * x) (LeNet-5: 1.7159 tanh(2/3 x)).", _same, _tanh_build,
       args={"scale": _float(1.0), "slope": _float(1.0)}),
    Op("softmax", "Softmax over channels.", _same, _module("Softmax", dim=1)),
    Op("lrn", "Local response normalisation across channels (AlexNet).", _same, _module("LocalResponseNorm"),
       args={"size": _int(), "alpha": _float(1e-4), "beta": _float(0.75), "k": _float(1.0)}),
    Op("maxpool", "Max pooling.", lambda a, i: _windowed("maxpool", a, i, i[0][0]), _pool_build("max"),
       args=_POOL_ARGS, window=_window),
    Op("avgpool", "Average pooling.", lambda a, i: _windowed("avgpool", a, i, i[0][0]), _pool_build("avg"),
       args={**_POOL_ARGS, "count_include_pad": _bool(True),
             "divisor": _int(None, doc="divide window sums by this instead of the window size (1: sum pooling)")},
       window=_window),
    Op("adaptive_avgpool", "Adaptive average pooling to a fixed [h, w].", _adaptive_shape,
       _adaptive_build, args={"size": _int2()}, window=_adaptive_window),
    Op("gap", "Global average pooling: [C,H,W] -> [C,1,1].",
       lambda a, i: (_spatial("gap", i)[0], 1, 1),
       lambda a, i: _adaptive_build({"size": 1}, i), window=_global_window),
    Op("dropout", "Dropout (train mode only).", _same, _module("Dropout"), args={"p": _prob(0.5)},
       view=True),
    Op("drop_path", "Drop the whole input per sample with probability p (train mode only), scaling survivors.",
       _same, _drop_path_build, args={"p": _prob()}, view=True),
    Op("linear", "Fully connected layer.", _linear_shape, _linear_build,
       args={"out": _int(doc="output features"), "bias": _bool(True)},
       params=lambda a, i, o: i[0][0] * a["out"] + (a["out"] if a["bias"] else 0),
       macs=lambda a, i, o: i[0][0] * a["out"], stateful=True),
    Op("flatten", "Flatten [C,H,W] to [C*H*W].", lambda a, i: (math.prod(i[0]),), _module("Flatten"),
       window=_flatten_window, view=True),
    Op("identity", "Pass the input through.", _same, _module("Identity"), view=True),
    Op("pad_channels", "Append zero channels up to `out` (a parameter-free shortcut, option A of ResNet).",
       _pad_channels_shape, _layer("PadChannels"), args={"out": _int()}),
    Op("rbf", "Euclidean radial basis output units with fixed +-1 centres: y_i = sum_j (x_j - c_ij)^2 "
       "(LeNet-5's output layer; the centres are a buffer, not trained).",
       _linear_shape, _layer("RBF", "in"), args={"out": _int()}, macs=lambda a, i, o: i[0][0] * a["out"],
       stateful=True),
    Op("concat", "Concatenate inputs along channels.", _concat_shape, _layer("Concat"), arity=None),
    Op("add", "Elementwise sum of inputs.", _elementwise_shape("add"), _layer("Add"), arity=None),
    Op("mean", "Elementwise mean of inputs; with drop_path > 0, each input is dropped with that probability "
       "in training (at least one kept) and the mean is over survivors (FractalNet's local drop-path).",
       _elementwise_shape("mean"), _layer("Mean"), args={"drop_path": _prob(0.0)}, arity=None),
    Op("conv_bn_act", "Fused conv [+ BN] [+ residual] [+ activation] (inference passes only).",
       lambda a, i: _conv_shape(a, i[:1]), lambda a, i: None, params=lambda a, i, o: _conv_params(a, i[:1], o),
       macs=lambda a, i, o: _conv_macs(a, i[:1], o), window=lambda a, i: _window(a, i[:1]), arity=None,
       internal=True),
    Op("input", "The network input.", lambda a, i: tuple(a["shape"]), lambda a, i: None, arity=0,
       internal=True),
]

OPS: dict[str, Op] = {op.name: op for op in _OPS}
SPEC_OPS = {name: op for name, op in OPS.items() if not op.internal}
