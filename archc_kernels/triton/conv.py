"""Fused conv2d + per-channel scale/shift + residual + activation as an implicit GEMM.

GEMM view, per group g: M = N*OH*OW output pixels, N = Cout/groups output channels,
K = KH*KW*Cin/groups, reduced in (kh, kw, Cin block) order with an fp32 accumulator.
Any input strides work; channels_last input and weight make the K (channel) loads contiguous.
With few input channels (a stem's 3) a K block per tap would be mostly padding: then K runs flat over
(kh, kw, channel), so that a 7x7 stem reduces 147 values in 5 blocks of 32 instead of 49 blocks of 3.
"""
import torch
import triton
import triton.language as tl

from ..shapes import pair
from .common import Plan, autotuned, check_weight, epilogue_flags, fused_epilogue, grouped_tile, launcher, \
    output_hw, pixel_origins, tile_config, vector

# (BLOCK_M, BLOCK_N, BLOCK_K, stages, warps). Inductor's conv template caps non-1x1 kernels at 4 warps after
# silent wrong results at 8 (pytorch #173068); here every config is checked on a GPU against the float64
# reference (tests/kernels, bench/gpu_check.py), and Hopper's wgmma wants two warpgroups for wide tiles.
CONFIGS = [tile_config(*c) for c in [
    (128, 128, 32, 3, 4),
    (128, 128, 64, 3, 4),
    (128, 64, 64, 4, 4),
    (64, 128, 64, 4, 4),
    (256, 64, 32, 3, 4),
    (64, 64, 64, 4, 4),
    (128, 256, 64, 3, 8),
    (256, 128, 64, 3, 8),
]]
FLAT_BELOW = 16  # input channels per group under which K runs flat over (kh, kw, channel)
DEFAULT = tile_config(64, 64, 32, 3, 4)  # when autotuning is off (ARCHC_KERNELS_TUNE=0)


@triton.jit(do_not_specialize=["M", "H", "W", "OH", "OW"])
def _kernel(
    x_ptr, w_ptr, scale_ptr, shift_ptr, res_ptr, out_ptr,
    M, H, W, OH, OW, CIN_G, COUT_G, COUT, KH, KW,
    stride_h, stride_w, pad_h, pad_w, dil_h, dil_w,
    sxn, sxc, sxh, sxw,  # x strides (any layout)
    swo, swi, swh, sww,  # weight strides, [Cout, Cin/groups, KH, KW]
    HAS_SCALE: tl.constexpr, HAS_SHIFT: tl.constexpr, HAS_RES: tl.constexpr, ACT: tl.constexpr,
    PRECISION: tl.constexpr, FLAT_K: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    pid_m, pid_n = grouped_tile(tl.program_id(0), tl.cdiv(M, BLOCK_M), tl.cdiv(COUT_G, BLOCK_N), GROUP_M)
    group = tl.program_id(1)

    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)  # output pixels (n, oh, ow)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)  # output channels within the group
    row_ok = rows < M
    col_ok = cols < COUT_G
    n, ih0, iw0 = pixel_origins(rows, OH, OW, stride_h, stride_w, pad_h, pad_w)
    x_rows = x_ptr + n * sxn + group * CIN_G * sxc
    w_cols = w_ptr + (group * COUT_G + cols) * swo
    ks = tl.arange(0, BLOCK_K)

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    if FLAT_K:  # k = (kh * KW + kw) * CIN_G + c: every tap's few channels packed into full K blocks
        for k0 in range(0, KH * KW * CIN_G, BLOCK_K):
            k = k0 + ks
            c = k % CIN_G
            tap = k // CIN_G
            kh = tap // KW
            kw = tap % KW
            k_ok = tap < KH * KW
            ih = ih0[:, None] + (kh * dil_h)[None, :]
            iw = iw0[:, None] + (kw * dil_w)[None, :]
            in_image = row_ok[:, None] & k_ok[None, :] & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
            a = tl.load(x_rows[:, None] + ih * sxh + iw * sxw + (c * sxc)[None, :], mask=in_image, other=0.0)
            b = tl.load(w_cols[None, :] + (kh * swh + kw * sww + c * swi)[:, None],
                        mask=k_ok[:, None] & col_ok[None, :], other=0.0)
            acc = tl.dot(a, b, acc, input_precision=PRECISION)
    else:  # per tap, blocks of Cin/groups channels (contiguous over channels_last x)
        k_blocks = tl.cdiv(CIN_G, BLOCK_K)
        for step in range(KH * KW * k_blocks):  # one flat loop, so the pipeliner sees every (kh, kw, block)
            tap = step // k_blocks
            kh = tap // KW
            kw = tap % KW
            k = (step % k_blocks) * BLOCK_K + ks
            k_ok = k < CIN_G
            ih = ih0 + kh * dil_h
            iw = iw0 + kw * dil_w
            in_image = row_ok & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)  # padding reads as zero
            a = tl.load(x_rows[:, None] + (ih * sxh + iw * sxw)[:, None] + k[None, :] * sxc,
                        mask=in_image[:, None] & k_ok[None, :], other=0.0)
            b = tl.load(w_cols[None, :] + kh * swh + kw * sww + k[:, None] * swi,
                        mask=k_ok[:, None] & col_ok[None, :], other=0.0)
            acc = tl.dot(a, b, acc, input_precision=PRECISION)

    fused_epilogue(acc, rows, group * COUT_G + cols, row_ok, col_ok, COUT, scale_ptr, shift_ptr, res_ptr, out_ptr,
                   HAS_SCALE, HAS_SHIFT, HAS_RES, ACT)


_tuned = autotuned(_kernel, CONFIGS, key=["M", "CIN_G", "COUT_G", "KH", "KW", "stride_h"])


def plan(x, weight, scale=None, shift=None, *, stride=1, padding=0, dilation=1, groups=1, act="relu",
         residual=None, config=None):
    """A Plan computing ``act(conv2d(x, weight) * scale + shift + residual)`` for inputs shaped and strided as
    ``x`` (and ``residual``, None or not), into channels_last outputs (see dispatch)."""
    n, cin, h, w = x.shape
    cout, cin_g, kh, kw = weight.shape
    stride, padding, dilation = pair(stride), pair(padding), pair(dilation)
    check_weight(x, weight, groups)
    oh, ow = output_hw(x, weight, stride, padding, dilation)
    weight = weight.contiguous(memory_format=torch.channels_last)  # K (channels) contiguous
    scale, shift = vector(scale, cout, "scale"), vector(shift, cout, "shift")
    m, cout_g = n * oh * ow, cout // groups

    def grid(meta):
        return triton.cdiv(m, meta["BLOCK_M"]) * triton.cdiv(cout_g, meta["BLOCK_N"]), groups

    sizes = (m, h, w, oh, ow, cin_g, cout_g, cout, kh, kw, *stride, *padding, *dilation, *x.stride(),
             *weight.stride())
    return Plan(_kernel, _tuned, grid, (n, cout, oh, ow), (weight, scale, shift), sizes,
                {**epilogue_flags(x, scale, shift, residual, act), "FLAT_K": cin_g < FLAT_BELOW}, config, DEFAULT)


conv_bn_act = launcher(plan)
