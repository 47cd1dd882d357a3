"""An archc plugin: each op is its meaning (archc.ir.ops.Op: arguments, shape, receptive-field window,
categories) and its PyTorch lowering, registered by the function the `archc.ops` entry point names.

Registering imports no torch: the lowerings import it when a module is built, so `archc validate` stays torch-free.
"""

from fractions import Fraction

import archc
from archc.errors import ShapeError
from archc.ir.ops import ACTIVATION, Op, hull_window
from archc.spec.kinds import Arg, Int


def _mish(attrs, in_shapes):
    from torch import nn

    return nn.Mish()


def _pixel_shuffle_shape(attrs, in_shapes):
    r = attrs["r"]
    c, h, w = in_shapes[0] if len(in_shapes[0]) == 3 else (None, None, None)
    if c is None or c % (r * r):
        raise ShapeError(f"pixel_shuffle by {r} needs [C, H, W] with C divisible by {r * r}, got {list(in_shapes[0])}")
    return (c // (r * r), h * r, w * r)


def _pixel_shuffle_window(attrs, in_shapes):
    """Output pixel o (per axis) is input pixel o // r: a stride of 1/r (an upsampling)."""
    r = attrs["r"]
    return hull_window(lambda axis, o: (o // r, o // r + 1), (r, r), (Fraction(1, r),) * 2)


def _pixel_shuffle(attrs, in_shapes):
    from torch import nn

    return nn.PixelShuffle(attrs["r"])


def register():
    archc.register_op(Op("mish", "Mish: x * tanh(softplus(x)) (Misra 2019).", lambda a, i: i[0],
                         categories=frozenset({ACTIVATION}), act=lambda a: "mish"), _mish)
    archc.register_op(Op("pixel_shuffle", "Sub-pixel upsampling: [C r^2, H, W] -> [C, H r, W r] (Shi et al. 2016).",
                         _pixel_shuffle_shape, {"r": Arg(Int(lo=1), 2, "upscaling factor")},
                         window=_pixel_shuffle_window), _pixel_shuffle)
