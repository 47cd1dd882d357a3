"""Fused depthwise conv2d + per-channel scale/shift + residual + activation, as a direct kernel.

Depthwise: groups == Cin, each output channel c reads the one input channel c // (Cout / Cin) (MobileNet,
EfficientNet, with any channel multiplier). There is no reduction over channels to give a matrix unit, so a
[BLOCK_M pixels, BLOCK_N channels] tile accumulates x * w over the KH*KW taps in fp32 on the CUDA cores; over
channels_last x each tap loads BLOCK_N contiguous channels per pixel. The op moves far more bytes than it
computes: its floor is memory bandwidth.
"""
import triton
import triton.language as tl

from ..shapes import pair
from .common import INTERPRETER_CONFIGS, Plan, autotuned, check_weight, epilogue_flags, fused_epilogue, \
    launcher, output_hw, pixel_origins, vector


def _config(block_m, block_n, warps, stages=2):
    return triton.Config({"BLOCK_M": block_m, "BLOCK_N": block_n}, num_warps=warps, num_stages=stages)


# (BLOCK_M, BLOCK_N, warps): wide channel tiles where channels are many, tall pixel tiles where they are few.
CONFIGS = [_config(*c) for c in [
    (64, 64, 4),
    (128, 32, 4),
    (32, 128, 4),
    (128, 64, 8),
    (64, 128, 8),
    (256, 16, 4),
]]
DEFAULT = _config(64, 64, 4)  # when autotuning is off (ARCHC_KERNELS_TUNE=0)


@triton.jit(do_not_specialize=["M", "H", "W", "OH", "OW"])
def _kernel(
    x_ptr, w_ptr, scale_ptr, shift_ptr, res_ptr, out_ptr,
    M, H, W, OH, OW, COUT, MULT, KH, KW,
    stride_h, stride_w, pad_h, pad_w, dil_h, dil_w,
    sxn, sxc, sxh, sxw,  # x strides (any layout)
    swo, swh, sww,  # weight strides, [Cout, 1, KH, KW]
    HAS_SCALE: tl.constexpr, HAS_SHIFT: tl.constexpr, HAS_RES: tl.constexpr, ACT: tl.constexpr,
    PRECISION: tl.constexpr,  # unused: no dot here; kept so every kernel takes the same epilogue flags
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)  # output pixels (n, oh, ow)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)  # output channels
    row_ok = rows < M
    col_ok = cols < COUT
    n, ih0, iw0 = pixel_origins(rows, OH, OW, stride_h, stride_w, pad_h, pad_w)
    x_tile = x_ptr + n[:, None] * sxn + (cols // MULT)[None, :] * sxc
    w_cols = w_ptr + cols * swo

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for kh in range(KH):
        ih = ih0 + kh * dil_h
        h_ok = row_ok & (ih >= 0) & (ih < H)
        for kw in range(KW):
            iw = iw0 + kw * dil_w
            in_image = h_ok & (iw >= 0) & (iw < W)  # padding reads as zero
            x = tl.load(x_tile + (ih * sxh + iw * sxw)[:, None], mask=in_image[:, None] & col_ok[None, :], other=0.0)
            w = tl.load(w_cols + kh * swh + kw * sww, mask=col_ok, other=0.0)
            acc += x.to(tl.float32) * w.to(tl.float32)[None, :]

    fused_epilogue(acc, rows, cols, row_ok, col_ok, COUT, scale_ptr, shift_ptr, res_ptr, out_ptr,
                   HAS_SCALE, HAS_SHIFT, HAS_RES, ACT)


_tuned = autotuned(_kernel, CONFIGS, key=["M", "COUT", "MULT", "KH", "KW", "stride_h"])
INTERPRETER_CONFIGS[_kernel] = _config(16, 16, 4, 1)


def plan(x, weight, scale=None, shift=None, *, stride=1, padding=0, dilation=1, groups=1, act="relu",
         residual=None, config=None):
    """A Plan for the depthwise case of conv.plan: groups == Cin (weight [Cout, 1, KH, KW])."""
    n, cin, h, w = x.shape
    cout, _, kh, kw = weight.shape
    stride, padding, dilation = pair(stride), pair(padding), pair(dilation)
    check_weight(x, weight, groups)
    if groups != cin:
        raise ValueError(f"depthwise takes groups == Cin ({cin}), got groups={groups}")
    oh, ow = output_hw(x, weight, stride, padding, dilation)
    scale, shift = vector(scale, cout, "scale"), vector(shift, cout, "shift")
    m = n * oh * ow

    def grid(meta):
        return triton.cdiv(m, meta["BLOCK_M"]), triton.cdiv(cout, meta["BLOCK_N"])

    sizes = (m, h, w, oh, ow, cout, cout // cin, kh, kw, *stride, *padding, *dilation, *x.stride(),
             weight.stride(0), weight.stride(2), weight.stride(3))
    return Plan(_kernel, _tuned, grid, (n, cout, oh, ow), (weight, scale, shift), sizes,
                epilogue_flags(x, scale, shift, residual, act), config, DEFAULT)


conv_bn_act = launcher(plan)
