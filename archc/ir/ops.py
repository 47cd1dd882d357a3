"""The op table: the one place that knows what each op means.

An entry holds the op's arguments (kinds from archc/spec/kinds.py, from which the schema is generated), its
shape rule, its parameter and multiply-accumulate (MAC) counts, its receptive-field window, and the
categories passes ask about (weight layer, activation, join, view, ...) instead of listing op names. How a
backend runs an op lives with the backend (archc/backends/torch/lower.py). Shapes are per sample, without
the batch: [C, H, W] or [F]. Adding an op is one `register(Op(...))` here and one lowering per backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import NamedTuple
from collections.abc import Callable

from archc.errors import ShapeError
from archc.spec.kinds import REQUIRED, Arg, Bool, Choice, Float, Int, List, Pair, Str

Shape = tuple[int, ...]

# Categories: what passes, reports and backends may ask of an op.
WEIGHT = "weight"  # a conv or linear layer: the layers that depth counts
CONV = "conv"  # a 2-D convolution with conv's arguments: what a fused conv_bn_act starts from
AFFINE = "affine"  # a per-channel affine map in eval mode (BatchNorm): folds into the conv before it
NORM = "norm"  # a normalisation
ACTIVATION = "activation"  # pointwise; `Op.act(attrs)` names the standard function it computes, if any
FUSABLE = "fusable"  # an activation a fused conv_bn_act applies (archc_kernels.ACTIVATIONS has its kernels' forms)
SUM = "sum"  # the elementwise sum of its inputs (a residual add)
JOIN = "join"  # combines several inputs into one (concat, add, mean); usable as a `branches` join
CONCAT = "concat"  # lays its inputs side by side along channels: they may be written into their slices of it
VIEW = "view"  # in inference its output aliases its input: no memory of its own
EVAL_IDENTITY = "eval_identity"  # returns its input in eval mode
STATEFUL = "stateful"  # holds parameters or buffers: its name must be unique in its scope
PARAMETER = "parameter"  # its one parameter is keyed by the op's own path (ConvNeXt's `layer_scale`), not path.weight
DISTANCE = "distance"  # outputs are distances, the smallest the best class: a classifier's logits are their negatives
INPUT = "input"  # the network's input
INTERNAL = "internal"  # made by archc itself (the input, fused ops), never written in specs


def _none(*_) -> int:
    return 0


class Window(NamedTuple):
    """A sliding window along (h, w): kernel, stride, dilation, padding. `floor`: the output size follows
    floor arithmetic, so trailing input rows may go unseen (conv and pooling, not adaptive or global).
    Strides may be fractions (upsampling): the receptive-field pass keeps them exact; padding may be a fraction or
    negative (an upsampling's alignment, a crop's offset)."""

    k: tuple
    stride: tuple
    dilation: tuple = (1, 1)
    pad: tuple = (0, 0)
    floor: bool = True


@dataclass(frozen=True)
class Op:
    name: str
    doc: str
    shape: Callable[[dict, list[Shape]], Shape]
    args: dict[str, Arg] = field(default_factory=dict)
    params: Callable[[dict, list[Shape], Shape], int] = _none
    macs: Callable[[dict, list[Shape], Shape], int] = _none
    buffers: Callable[[dict, list[Shape], Shape], int] = _none  # values held beside the parameters (BN statistics)
    window: Callable[[dict, list[Shape]], Window] | None = None
    arity: int | None = 1  # None: one or more inputs
    categories: frozenset = frozenset()
    act: Callable[[dict], str | None] | None = None  # activations: the standard function these attrs compute
    reads: int | None = None  # how many leading inputs it reads values of (None: all); the rest give only a shape

    def __contains__(self, category: str) -> bool:
        return category in self.categories


OPS: dict[str, Op] = {}


def register(op: Op) -> Op:
    if op.name in OPS:
        raise ValueError(f"op {op.name!r} is already registered")
    OPS[op.name] = op
    return op


class OpTable(dict):
    """The ops a spec may write (name -> Op), knowing which package provides an op it lacks."""

    def provider(self, name: str) -> str | None:
        from archc.ir import plugins

        return plugins.provider(name)

    def why_missing(self, package: str) -> str:
        """Why a package's ops are missing: not installed, or its plugin failed to load."""
        from archc.ir import plugins

        if package in plugins.FAILED:
            return f"its plugin failed to load: {plugins.FAILED[package]}"
        return "installed, but it registers no such op" if plugins.installed(package) else \
            f"not installed (pip install {package})"


def spec_ops() -> OpTable:
    """The ops a spec may write: archc's and installed plugins' (loaded the first time this is asked)."""
    from archc.ir import plugins

    plugins.load()
    return OpTable((name, op) for name, op in OPS.items() if INTERNAL not in op)


def pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


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


def _spatial(op: str, in_shapes: list[Shape]) -> Shape:
    s = in_shapes[0]
    if len(s) != 3:
        raise ShapeError(f"{op} needs a [C, H, W] input, got {list(s)}")
    return s


def _sliding(a: dict, in_shapes=None) -> Window:
    return Window(pair(a["k"]), pair(a["stride"] or a["k"]), pair(a.get("dilation", 1)), pair(a["pad"]),
                  not a.get("ceil", False))


def _windowed(op: str, a: dict, in_shapes: list[Shape], out_c: int) -> Shape:
    _, h, w = _spatial(op, in_shapes)
    k, s, d, p, _ = _sliding(a)
    hw = [window_out(n, k[i], s[i], p[i], d[i], a.get("ceil", False)) for i, n in enumerate((h, w))]
    if min(hw) < 1:
        raise ShapeError(
            f"{op} {k[0]}x{k[1]}/{s[0]} pad {p[0]} on {h}x{w} gives an empty output {hw[0]}x{hw[1]}")
    if op != "conv" and any(2 * p[i] > d[i] * (k[i] - 1) + 1 for i in range(2)):
        raise ShapeError(f"{op} pad {list(p)} is more than half the window {list(k)}")
    return (out_c, *hw)


def _same(a, in_shapes):
    return in_shapes[0]


# conv ---------------------------------------------------------------------------------------------------

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


def _conv_buffers(a, in_shapes, out):
    """A connection table's row and column indices."""
    return 2 * _conv_fan_in(a, in_shapes) if a.get("table") is not None else 0


def _conv_macs(a, in_shapes, out):
    kh, kw = pair(a["k"])
    return math.prod(out[1:]) * _conv_fan_in(a, in_shapes) * kh * kw


def _fused_shape(a, in_shapes):
    out = _conv_shape(a, in_shapes[:1])
    if len(in_shapes) > 1 and in_shapes[1] != out:
        raise ShapeError(f"cannot add residual {list(in_shapes[1])} to conv output {list(out)}")
    return out


# pooling, linear, joins ------------------------------------------------------------------------------------

def _adaptive_shape(a, in_shapes):
    return (_spatial("adaptive_avgpool", in_shapes)[0], *pair(a["size"]))


def _adaptive_window(a, in_shapes) -> Window:
    # Exact when the input divides evenly; otherwise the largest window adaptive pooling uses.
    _, h, w = in_shapes[0]
    oh, ow = pair(a["size"])
    return Window((-(-h // oh), -(-w // ow)), (h // oh, w // ow), floor=False)


def _global_window(a, in_shapes) -> Window:
    _, h, w = in_shapes[0]
    return Window((h, w), (h, w), floor=False)


def _map_window(a, in_shapes) -> Window:
    """Every output depends on the whole map (a normalisation over pixels): the map's extent, centred on the map's
    centre pixel (exact there)."""
    _, h, w = in_shapes[0]
    return Window((h, w), (1, 1), pad=(h // 2, w // 2), floor=False)


def _flatten_window(a, in_shapes) -> Window:
    """After flatten every value may mix every position: its field is the whole map."""
    return _global_window(a, in_shapes) if len(in_shapes[0]) == 3 else Window((1, 1), (1, 1), floor=False)


def _linear_shape(a, in_shapes):
    (s,) = in_shapes
    if len(s) != 1:
        raise ShapeError(f"linear needs a flat [F] input, got {list(s)} (add a flatten before it)")
    return (a["out"],)


def _concat_shape(a, in_shapes):
    if len({s[1:] for s in in_shapes}) > 1:
        raise ShapeError("cannot concat " + " and ".join(str(list(s)) for s in in_shapes)
                         + " (sizes other than channels must match)")
    return (sum(s[0] for s in in_shapes), *in_shapes[0][1:])


def _elementwise_shape(name):
    def shape(a, in_shapes):
        if len(set(in_shapes)) > 1:
            raise ShapeError(f"cannot {name} " + " and ".join(str(list(s)) for s in in_shapes))
        return in_shapes[0]

    return shape


def _broadcast_shape(name):
    """Inputs of one rank whose sizes agree or are 1 on every axis ([C, 1, 1] with [C, H, W]: squeeze-excitation)."""
    def shape(a, in_shapes):
        if len({len(s) for s in in_shapes}) == 1:
            out = tuple(max(sizes) for sizes in zip(*in_shapes))
            if all(n in (1, m) for s in in_shapes for n, m in zip(s, out)):
                return out
        raise ShapeError(f"cannot {name} " + " and ".join(str(list(s)) for s in in_shapes))

    return shape


def _linear_shape_pixels(a, in_shapes):
    """linear on [F], or per pixel over the channels of [C, H, W] (ConvNeXt's Linear on NHWC, weight [out, C])."""
    (s,) = in_shapes
    return (a["out"],) if len(s) == 1 else (a["out"], *s[1:])


def _pixel_window(a, in_shapes) -> Window | None:
    return Window((1, 1), (1, 1)) if len(in_shapes[0]) == 3 else None


def _chunk_shape(a, in_shapes):
    c, *rest = in_shapes[0]
    if c % a["chunks"] or a["index"] >= a["chunks"]:
        raise ShapeError(f"chunk {a['index']} of {a['chunks']} needs an index below {a['chunks']} and channels "
                         f"divisible by {a['chunks']}, got {list(in_shapes[0])}")
    return (c // a["chunks"], *rest)


def _groups_shape(op):
    def shape(a, in_shapes):
        c = in_shapes[0][0]
        if c % a["groups"]:
            raise ShapeError(f"{op} groups={a['groups']} must divide the channels {c}")
        return in_shapes[0]

    return shape


def _upsample_shape(a, in_shapes):
    c, h, w = _spatial("upsample", in_shapes)
    if (a["scale"] is None) == (a["size"] is None):
        raise ShapeError("upsample takes either a scale or a size")
    out = (c, *pair(a["size"])) if a["size"] is not None else (c, h * a["scale"], w * a["scale"])
    if out[1] < h or out[2] < w:
        raise ShapeError(f"upsample to {out[1]}x{out[2]} is smaller than its input {h}x{w} (pool to shrink)")
    return out


def hull_window(fields, outs: tuple, strides: tuple) -> Window:
    """The tightest affine window (jump = stride) holding every output's true field, for a fractional stride
    (upsampling), where no window of whole pixels is exact for every output: fields(axis, o) -> (lo, hi), the
    input pixels [lo, hi) that output o reads, or None if it reads none. Relative to o * stride, the fields span
    [a, b): a window of b - a pixels padded by -a."""
    ks, pads = [], []
    for axis, (out, stride) in enumerate(zip(outs, strides)):
        spans = [(f[0] - o * stride, f[1] - o * stride) for o in range(out) if (f := fields(axis, o)) is not None]
        a, b = min(s[0] for s in spans), max(s[1] for s in spans)
        ks.append(b - a)
        pads.append(-a)
    return Window(tuple(ks), tuple(strides), pad=tuple(pads), floor=False)


def _upsample_window(a, in_shapes) -> Window:
    """PyTorch's sampling per axis: output o reads input position p = (o + 1/2) * in / out - 1/2 (with
    align_corners, o * (in - 1) / (out - 1)); nearest takes pixel floor(o * in / out), bilinear floor(p) and the next
    one (where its weight is not 0). Borders, where PyTorch clamps, are left out as a conv's padding is."""
    ins, outs = in_shapes[0][1:], _upsample_shape(a, in_shapes)[1:]
    corners = a["mode"] == "bilinear" and a["align_corners"]
    strides = tuple(Fraction(n - 1, o - 1) if corners and o > 1 else Fraction(n, o) for n, o in zip(ins, outs))

    def fields(axis, o):
        t = strides[axis]
        if a["mode"] == "nearest":
            return math.floor(o * t), math.floor(o * t) + 1
        p = o * t if corners else (o + Fraction(1, 2)) * t - Fraction(1, 2)
        return math.floor(p), math.ceil(p) + 1  # one pixel where the sample falls on a pixel centre

    return hull_window(fields, outs, strides)


def _convt_shape(a, in_shapes):
    c, h, w = _spatial("conv_transpose", in_shapes)
    if c % a["groups"] or a["out"] % a["groups"]:
        raise ShapeError(f"conv_transpose groups={a['groups']} must divide in channels {c} and out channels "
                         f"{a['out']}")
    k, s, p, d, op = (pair(a[x]) for x in ("k", "stride", "pad", "dilation", "output_pad"))
    if any(op[i] >= max(s[i], d[i]) for i in range(2)):
        raise ShapeError(f"conv_transpose output_pad {list(op)} must be below the stride or the dilation")
    hw = [(n - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1 for i, n in enumerate((h, w))]
    if min(hw) < 1:
        raise ShapeError(f"conv_transpose on {h}x{w} gives an empty output {hw[0]}x{hw[1]}")
    return (a["out"], *hw)


def _convt_params(a, in_shapes, out):
    kh, kw = pair(a["k"])
    return in_shapes[0][0] * (a["out"] // a["groups"]) * kh * kw + (a["out"] if a["bias"] else 0)


def _convt_macs(a, in_shapes, out):
    """Every input value times every kernel weight of its group's output channels."""
    c, h, w = in_shapes[0]
    kh, kw = pair(a["k"])
    return h * w * c * (a["out"] // a["groups"]) * kh * kw


def _convt_window(a, in_shapes) -> Window:
    """Output o (per axis) sums the inputs i with i * s - p + j * d = o for kernel taps j < k: the field is the hull
    of those, whose count and alignment vary with o's residue (hull_window)."""
    ks, ss, ps, ds = (pair(a[x]) for x in ("k", "stride", "pad", "dilation"))

    def fields(axis, o):
        k, s, p, d = ks[axis], ss[axis], ps[axis], ds[axis]
        taps = [(o + p - j * d) // s for j in range(k) if (o + p - j * d) % s == 0]
        return (min(taps), max(taps) + 1) if taps else None  # none: k < s leaves outputs with the bias only

    periods = ss  # the fields repeat, one input pixel on, every s outputs
    return hull_window(fields, periods, tuple(Fraction(1, s) for s in ss))


def _crop_shape(a, in_shapes):
    (c, h, w), ref = _spatial("crop", in_shapes[:1]), in_shapes[1]
    if len(ref) != 3 or ref[1] > h or ref[2] > w:
        raise ShapeError(f"cannot crop {list(in_shapes[0])} to the size of {list(ref)}")
    return (c, *ref[1:])


def _crop_window(a, in_shapes) -> Window:
    """A centre crop moves the field's start by the rows and columns it cuts off before."""
    (_, h, w), (_, oh, ow) = in_shapes[0], in_shapes[1]
    return Window((1, 1), (1, 1), pad=(-((h - oh) // 2), -((w - ow) // 2)), floor=False)


def _pad_channels_shape(a, in_shapes):
    (s,) = in_shapes
    if a["out"] < s[0]:
        raise ShapeError(f"pad_channels to {a['out']} would drop channels of {list(s)}")
    return (a["out"], *s[1:])


def _act(name: str):
    return lambda a: name


# constant arithmetic, reductions and softmax over a dimension, slices ----------------------------------------------

OVER = ("channels", "groups", "height", "width", "space")
"""What a reduction or softmax runs over: all channels; across `groups` consecutive groups of channels (the channels
as [groups, C / groups], reduced along the groups: SKNet's paths, split attention's radix); the height, the width,
or both (`space`)."""
_AXES = {"channels": (0,), "height": (1,), "width": (2,), "space": (1, 2)}


def _over(op: str, a: dict, in_shapes: list[Shape]) -> Shape:
    """The one input, checked against `over` (and `groups`, which goes with over: groups)."""
    if len(in_shapes) != 1:
        raise ShapeError(f"{op} over {a['over']} takes one input, got {len(in_shapes)}")
    (s,) = in_shapes
    over, groups = a["over"], a.get("groups")
    if (over == "groups") != (groups is not None):
        raise ShapeError(f"{op}: `groups` goes with `over: groups`" if groups is not None
                         else f"{op} over groups needs `groups`, the number of groups")
    if over == "groups" and s[0] % groups:
        raise ShapeError(f"{op} groups={groups} must divide the channels of {list(s)}")
    if over in ("height", "width", "space") and len(s) != 3:
        raise ShapeError(f"{op} over {over} needs a [C, H, W] input, got {list(s)}")
    return s


def _reduce_shape(op: str):
    def shape(a, in_shapes):
        s = _over(op, a, in_shapes)
        if a["over"] == "groups":
            return (s[0] // a["groups"], *s[1:])
        return tuple(1 if axis in _AXES[a["over"]] else n for axis, n in enumerate(s))

    return shape


def _reduce_window(a, in_shapes) -> Window | None:
    """Each output reads every position along the axes it reduces: the whole extent there (a global pooling)."""
    s = in_shapes[0]
    if len(s) != 3 or a["over"] not in ("height", "width", "space"):
        return None
    axes = _AXES[a["over"]]
    k = tuple(n if axis + 1 in axes else 1 for axis, n in enumerate(s[1:]))
    return Window(k, k, floor=False)


def _softmax_window(a, in_shapes) -> Window | None:
    """A softmax over the height, width or both: each output reads the whole extent there (as a normalisation over
    the map), centred on the map's centre pixel (exact there)."""
    s = in_shapes[0]
    if len(s) != 3 or a["over"] not in ("height", "width", "space"):
        return None
    axes = _AXES[a["over"]]
    k = tuple(n if axis + 1 in axes else 1 for axis, n in enumerate(s[1:]))
    return Window(k, (1, 1), pad=tuple(n // 2 for n in k), floor=False)


def _mean_shape(a, in_shapes):
    if a["over"] is None:
        return _elementwise_shape("mean")(a, in_shapes)
    if a["drop_path"]:
        raise ShapeError("mean over a dimension takes no drop_path (it is the mean of one input)")
    return _reduce_shape("mean")(a, in_shapes)


DIMS = ("channels", "height", "width")
"""The dimension a slice or split cuts: [C, H, W]'s axes (channels only on [F])."""


def _dim(op: str, a: dict, s: Shape) -> int:
    axis = DIMS.index(a["dim"])
    if axis >= len(s):
        raise ShapeError(f"{op} along the {a['dim']} needs a [C, H, W] input, got {list(s)}")
    return axis


def slice_range(a: dict, s: Shape) -> tuple[int, int, int]:
    """A slice's axis and its [start, end) in the input `s`: negative start or end count from the dimension's end, as
    Python's; a slice out of range or empty is an error (Python would clamp it), naming the dimension's size."""
    axis = _dim("slice", a, s)
    n = s[axis]
    start = a["start"] + n if a["start"] < 0 else a["start"]
    end = n if a["end"] is None else a["end"] + n if a["end"] < 0 else a["end"]
    if not 0 <= start < end <= n:
        written = f"{a['start']}:{'' if a['end'] is None else a['end']}"
        raise ShapeError(f"slice {written} of the {a['dim']} is out of range for {list(s)} (the {a['dim']} "
                         f"are 0..{n}; the slice must hold at least one)")
    return axis, start, end


def split_range(a: dict, s: Shape) -> tuple[int, int, int]:
    """A split's axis and the [start, end) of its index-th part."""
    axis = _dim("split", a, s)
    sizes, index = a["sizes"], a["index"]
    if sum(sizes) != s[axis]:
        raise ShapeError(f"split sizes {list(sizes)} add up to {sum(sizes)}, not the {s[axis]} {a['dim']} of "
                         f"{list(s)}")
    if index >= len(sizes):
        raise ShapeError(f"split index {index} is out of range for {len(sizes)} parts")
    start = sum(sizes[:index])
    return axis, start, start + sizes[index]


def _cut_shape(cut):
    def shape(a, in_shapes):
        (s,) = in_shapes
        axis, start, end = cut(a, s)
        return tuple(end - start if i == axis else n for i, n in enumerate(s))

    return shape


def _cut_window(cut):
    def window(a, in_shapes) -> Window | None:
        """A cut along the height or width moves the field's start by the rows or columns cut off before."""
        s = in_shapes[0]
        axis, start, _ = cut(a, s)
        if len(s) != 3:
            return None
        return Window((1, 1), (1, 1), pad=tuple(-start if i + 1 == axis else 0 for i in range(2)), floor=False)

    return window


# arguments ---------------------------------------------------------------------------------------------

def _int(default=REQUIRED, doc="", lo=1):
    return Arg(Int(lo=lo), default, doc)


def _pair(default=REQUIRED, doc="", lo=1):
    return Arg(Pair(Int(lo=lo)), default, doc)


_PROB = Float(0.0, 1.0)
_CONV_ARGS = {
    "out": _int(doc="output channels"), "k": _pair(doc="kernel size"), "stride": _pair(1, "the window's step"),
    "pad": _pair(0, "zeros added before and after, per axis", lo=0),
    "dilation": _pair(1, "the spacing of the kernel's taps"),
    "groups": _int(1, "input and output channels in this many groups, each convolved on its own (depthwise: the "
                      "input channels)"),
    "bias": Arg(Bool(), True, "a learned bias per output channel"),
    "table": Arg(List(List(Int(lo=0, expr=False), min=1), min=1), None,
                 "connection table: row j lists the input channels of output j (LeNet-5's C3)"),
}
_POOL_ARGS = {
    "k": _pair(doc="window size"),
    "stride": _pair(None, doc="default: the window size"),
    "pad": _pair(0, "padding before and after, per axis (at most half the window)", lo=0),
    "ceil": Arg(Bool(), False, "ceil_mode: a last window that starts inside the input may run past it"),
}
_GROUPS = _int(None, doc="with over: groups, the number of groups (divides the channels)")
_DIM = Arg(Choice(DIMS), "channels", "the dimension cut")
_ACT = frozenset({ACTIVATION, FUSABLE})

_OPS = [
    Op("conv", "2-D convolution (grouped, dilated, or with a connection table).", _conv_shape, _CONV_ARGS,
       params=_conv_params, macs=_conv_macs, buffers=_conv_buffers, window=_sliding,
       categories=frozenset({WEIGHT, CONV, STATEFUL})),
    Op("bn", "Batch normalisation (2-D on [C,H,W], 1-D on [F]).", _same,
       {"eps": Arg(Float(lo=0.0), 1e-5, "added to the variance"),
        "momentum": Arg(_PROB, 0.1, "the running statistics' update rate in training"),
        "affine": Arg(Bool(), True, "a learned weight and bias per channel")},
       params=lambda a, i, o: 2 * i[0][0] if a["affine"] else 0, buffers=lambda a, i, o: 2 * i[0][0] + 1,
       categories=frozenset({NORM, AFFINE, STATEFUL})),
    Op("relu", "ReLU.", _same, categories=_ACT, act=_act("relu")),
    Op("relu6", "ReLU6.", _same, categories=_ACT, act=_act("relu6")),
    Op("sigmoid", "Logistic sigmoid.", _same, categories=_ACT, act=_act("sigmoid")),
    Op("tanh", "Hyperbolic tangent, scale * tanh(slope * x) (LeNet-5: 1.7159 tanh(2/3 x)).", _same,
       {"scale": Arg(Float(), 1.0), "slope": Arg(Float(), 1.0)}, categories=_ACT,
       act=lambda a: "tanh" if a["scale"] == a["slope"] == 1 else None),
    Op("silu", "SiLU (swish): x * sigmoid(x) (EfficientNet).", _same, categories=_ACT, act=_act("silu")),
    Op("gelu", "GELU, exact (erf) or its tanh approximation (ConvNeXt: exact).", _same,
       {"approximate": Arg(Choice(("none", "tanh")), "none")}, categories=_ACT,
       act=lambda a: "gelu" if a["approximate"] == "none" else None),
    Op("hardswish", "Hard swish: x * relu6(x + 3) / 6 (MobileNetV3).", _same, categories=_ACT,
       act=_act("hardswish")),
    Op("hardsigmoid", "Hard sigmoid: relu6(x + 3) / 6 (MobileNetV3's squeeze-excitation gate).", _same,
       categories=_ACT, act=_act("hardsigmoid")),
    Op("leaky_relu", "Leaky ReLU: x, or slope * x below 0.", _same, {"slope": Arg(Float(), 0.01)}, categories=_ACT,
       act=lambda a: "leaky_relu" if a["slope"] == 0.01 else None),
    Op("softmax", "Softmax over the channels (default), across groups of channels (the channels as [groups, C / "
       "groups], softmax along the groups: SKNet's attention across its paths, split attention's radix), or over the "
       "height, width or both (`space`); the shape is unchanged. Not fused: it runs as its own module.",
       lambda a, i: _over("softmax", a, i),
       {"over": Arg(Choice(OVER), "channels", "what the softmax normalises over"), "groups": _GROUPS},
       window=_softmax_window),
    Op("sum", "Sum of one input over a dimension: the channels ([1, H, W]), across groups of channels ([C / groups, "
       "H, W]: SKNet's sum of its paths), the height ([C, 1, W]), the width ([C, H, 1]) or both (`space`: [C, 1, 1]). "
       "Several inputs are summed by `add`.", _reduce_shape("sum"),
       {"over": Arg(Choice(OVER), doc="what is summed over"), "groups": _GROUPS}, window=_reduce_window),
    Op("affine", "A constant affine map, scale * x + shift, with fixed numbers (not learned; `scale` is the learned "
       "per-channel one): Inception-ResNet's residual scale `{affine: {scale: 0.17}}`, a negation `{affine: {scale: "
       "-1}}`. Pointwise; not fused: it runs as its own module.", _same,
       {"scale": Arg(Float(), 1.0, "the factor"), "shift": Arg(Float(), 0.0, "the constant added")}),
    Op("slice", "The part [start, end) of one dimension (the channels by default; the height or width), as Python's "
       "x[:, start:end]: a negative start or end counts from the end, end defaults to the end; out of range or empty "
       "is an error (never clamped). A view (GhostNet's out[:, :out_chs], DPN's x[:, :bw]).",
       _cut_shape(slice_range),
       {"start": Arg(Int(), 0, "the first index kept (negative: from the end)"),
        "end": Arg(Int(), None, "the index after the last kept (negative: from the end; default: the end)"),
        "dim": _DIM},
       window=_cut_window(slice_range), categories=frozenset({VIEW})),
    Op("split", "The index-th of parts of the given sizes along one dimension (torch.split with a list of sizes; "
       "the sizes add up to the dimension's size); a view. `chunk` splits into equal parts.",
       _cut_shape(split_range),
       {"sizes": Arg(List(Int(lo=1), min=1, expr=True), doc="the size of each part, in order"),
        "index": _int(doc="which part, from 0", lo=0), "dim": _DIM},
       window=_cut_window(split_range), categories=frozenset({VIEW})),
    Op("layernorm", "Layer normalisation over the channels: per pixel on [C,H,W] (torchvision's LayerNorm2d, "
       "ConvNeXt's LayerNorm on NHWC), over the features on [F]; weight and bias [C].", _same,
       {"eps": Arg(Float(lo=0.0), 1e-5)}, params=lambda a, i, o: 2 * i[0][0],
       categories=frozenset({NORM, STATEFUL})),
    Op("groupnorm", "Group normalisation: channels in `groups` groups, each normalised over its channels and "
       "pixels; weight and bias [C].", _groups_shape("groupnorm"),
       {"groups": _int(doc="number of groups (divides the channels)"), "eps": Arg(Float(lo=0.0), 1e-5)},
       params=lambda a, i, o: 2 * i[0][0], window=lambda a, i: _map_window(a, i) if len(i[0]) == 3 else None,
       categories=frozenset({NORM, STATEFUL})),
    Op("scale", "A learned per-channel scale x * w, w of shape [C, 1, 1] (or [F]) starting at `init` (ConvNeXt's "
       "layer scale); the parameter's state_dict key is the op's own path (`features.1.0.layer_scale`).", _same,
       {"init": Arg(Float(), 1.0, "the initial value of every scale")}, params=lambda a, i, o: i[0][0],
       categories=frozenset({STATEFUL, PARAMETER})),
    Op("lrn", "Local response normalisation across channels (AlexNet).", _same,
       {"size": _int(), "alpha": Arg(Float(), 1e-4), "beta": Arg(Float(), 0.75), "k": Arg(Float(), 1.0)},
       categories=frozenset({NORM})),
    Op("maxpool", "Max pooling.", lambda a, i: _windowed("maxpool", a, i, i[0][0]), _POOL_ARGS,
       window=_sliding),
    Op("avgpool", "Average pooling.", lambda a, i: _windowed("avgpool", a, i, i[0][0]),
       {**_POOL_ARGS, "count_include_pad": Arg(Bool(), True),
        "divisor": _int(None, doc="divide window sums by this instead of the window size (1: sum pooling)")},
       window=_sliding),
    Op("adaptive_avgpool", "Adaptive average pooling to a fixed [h, w].", _adaptive_shape, {"size": _pair()},
       window=_adaptive_window),
    Op("gap", "Global average pooling: [C,H,W] -> [C,1,1].", lambda a, i: (_spatial("gap", i)[0], 1, 1),
       window=_global_window),
    Op("dropout", "Dropout (train mode only).", _same, {"p": Arg(_PROB, 0.5)},
       categories=frozenset({VIEW, EVAL_IDENTITY})),
    Op("drop_path", "Drop the whole input with probability p (train mode only), scaling survivors by 1/(1-p): per "
       "sample (mode row) or for the whole batch (mode batch), as torchvision's StochasticDepth.",
       _same, {"p": Arg(_PROB), "mode": Arg(Choice(("row", "batch")), "row")},
       categories=frozenset({VIEW, EVAL_IDENTITY})),
    Op("linear", "Fully connected layer on [F]; on [C,H,W], applied per pixel over the channels (weight [out, C], "
       "as ConvNeXt's Linear on NHWC).", _linear_shape_pixels,
       {"out": _int(doc="output features"), "bias": Arg(Bool(), True)},
       params=lambda a, i, o: i[0][0] * a["out"] + (a["out"] if a["bias"] else 0),
       macs=lambda a, i, o: math.prod(i[0]) * a["out"], window=_pixel_window, categories=frozenset({WEIGHT, STATEFUL})),
    Op("flatten", "Flatten [C,H,W] to [C*H*W].", lambda a, i: (math.prod(i[0]),), window=_flatten_window,
       categories=frozenset({VIEW})),
    Op("identity", "Pass the input through.", _same, categories=frozenset({VIEW, EVAL_IDENTITY})),
    Op("pad_channels", "Append zero channels up to `out` (a parameter-free shortcut, option A of ResNet).",
       _pad_channels_shape, {"out": _int()}),
    Op("rbf", "Euclidean radial basis output units with fixed +-1 centres: y_i = sum_j (x_j - c_ij)^2 "
       "(LeNet-5's output layer; the centres are a buffer, not trained).",
       _linear_shape, {"out": _int()}, macs=lambda a, i, o: i[0][0] * a["out"],
       buffers=lambda a, i, o: i[0][0] * a["out"], categories=frozenset({STATEFUL, DISTANCE})),
    Op("chunk", "The index-th of `chunks` equal parts of the channels (torch.chunk; ShuffleNetV2's split); a view.",
       _chunk_shape, {"chunks": _int(doc="number of equal parts"), "index": _int(doc="which part, from 0", lo=0)},
       categories=frozenset({VIEW})),
    Op("channel_shuffle", "Channel shuffle (ShuffleNet): the channels as [groups, C / groups], transposed.",
       _groups_shape("channel_shuffle"), {"groups": _int()}),
    Op("upsample", "Upsampling, nearest or bilinear, by an integer `scale` or to a `size` [h, w].", _upsample_shape,
       {"scale": _int(None, "output = input size * scale"), "size": _pair(None, "output size [h, w]"),
        "mode": Arg(Choice(("nearest", "bilinear"), expr=True), "nearest"),
        "align_corners": Arg(Bool(), False, "bilinear: align the corner pixels' centres")},
       window=_upsample_window),
    Op("conv_transpose", "Transposed 2-D convolution (U-Net's up-convolution, Caffe's Deconvolution).", _convt_shape,
       {"out": _int(doc="output channels"), "k": _pair(doc="kernel size"), "stride": _pair(1), "pad": _pair(0, lo=0),
        "output_pad": _pair(0, lo=0), "dilation": _pair(1), "groups": _int(1), "bias": Arg(Bool(), True)},
       params=_convt_params, macs=_convt_macs, window=_convt_window, categories=frozenset({WEIGHT, STATEFUL})),
    Op("crop", "Centre crop of the first input to the height and width of the second (U-Net's skip connections); "
       "a view. The second input gives only its size.", _crop_shape, window=_crop_window, arity=2, reads=1,
       categories=frozenset({VIEW})),
    Op("concat", "Concatenate inputs along channels.", _concat_shape, arity=None,
       categories=frozenset({JOIN, CONCAT})),
    Op("add", "Elementwise sum of inputs, broadcasting sizes of 1 ([C,1,1] + [C,H,W]).", _broadcast_shape("add"),
       arity=None, categories=frozenset({JOIN, SUM})),
    Op("sub", "The first input minus the second, broadcasting sizes of 1 (`{sub: null, from: [a, b]}`: a - b).",
       _broadcast_shape("subtract"), arity=2, categories=frozenset({JOIN})),
    Op("mul", "Elementwise product of inputs, broadcasting sizes of 1 (squeeze-excitation's [C,1,1] gate times "
       "[C,H,W]).", _broadcast_shape("multiply"), arity=None, categories=frozenset({JOIN})),
    Op("mean", "Elementwise mean of inputs; with drop_path > 0, each input is dropped with that probability "
       "in training (at least one kept) and the mean is over survivors (FractalNet's local drop-path). With `over`, "
       "the mean of one input over a dimension, shaped as `sum`'s (`{mean: {over: space}}` is `gap`).",
       _mean_shape, {"drop_path": Arg(_PROB, 0.0, "in training, each input's probability of being left out"),
                     "over": Arg(Choice(OVER), None, "a dimension to average one input over, as sum's"),
                     "groups": _GROUPS},
       window=lambda a, i: _reduce_window(a, i) if a["over"] else None, arity=None, categories=frozenset({JOIN})),
    Op("input", "The network input.", lambda a, i: tuple(a["shape"]), {"shape": Arg(List(Int(lo=1)))}, arity=0,
       categories=frozenset({INPUT, INTERNAL})),
]
_OPS.append(Op(
    "conv_bn_act", "Fused conv [+ BN] [+ residual] [+ activation] (inference passes only): the conv's and BN's "
    "module paths, the activation (none, or an op of category FUSABLE), and the conv's arguments; a second input "
    "is the residual.",
    _fused_shape, {"conv": Arg(Str()), "bn": Arg(Str(), None), "act": Arg(Str()), **_CONV_ARGS},
    params=lambda a, i, o: _conv_params(a, i[:1], o), macs=lambda a, i, o: _conv_macs(a, i[:1], o),
    window=_sliding, arity=None, categories=frozenset({WEIGHT, STATEFUL, INTERNAL})))
for _op in _OPS:
    register(_op)
BUILTIN = tuple(op.name for op in _OPS)  # archc's own ops, in the table's order (plugins register theirs later)


def fusable_activations() -> set[str]:
    """The activations a fused conv_bn_act applies: the ops of category FUSABLE (archc's and plugins'), each
    fused where its `act` names it (its arguments the standard ones). archc_kernels.ACTIVATIONS holds their
    kernels' forms; a test keeps both equal for archc's own."""
    return {name for name, op in OPS.items() if FUSABLE in op}
