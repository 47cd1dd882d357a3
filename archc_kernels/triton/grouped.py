"""Fused grouped conv2d (ResNeXt's 4 and 8 channels per group) + scale/shift + residual + activation, as an
implicit GEMM whose tiles span whole groups.

A tile takes G consecutive groups: GN = G * Cout/groups output channels, fed by the GK = G * Cin/groups input
channels of those groups, one contiguous run per pixel over channels_last x. Its weight is block-diagonal —
entry (k, n) is zero unless input channel k is in output channel n's group — and is packed once per plan into
dense [BLOCK_K, BLOCK_N] blocks per (tile, tap), so the kernel streams it like any GEMM operand. G is the fewest
groups that fill a tl.dot (K and N at least 16): the matrix unit then does about G times the useful work, which
it can afford, since these convs are bound by memory, not arithmetic.
"""
import math

import triton
import triton.language as tl

from ..shapes import pair
from .common import INTERPRETER_CONFIGS, Plan, autotuned, check_weight, epilogue_flags, fused_epilogue, \
    launcher, output_hw, pixel_origins, vector

MIN_DOT = 16  # tl.dot needs K and N of at least 16
MAX_BLOCK_K = 64  # a tile's input channels beyond this are reduced in several K blocks


def _config(block_m, warps, stages):
    return triton.Config({"BLOCK_M": block_m}, num_warps=warps, num_stages=stages)


# (BLOCK_M, warps, stages): the tile's channel sizes follow from the groups (see tiling).
CONFIGS = [_config(*c) for c in [(64, 4, 3), (128, 4, 3), (128, 8, 3), (256, 8, 3), (256, 4, 4), (64, 2, 4)]]
DEFAULT = _config(128, 4, 3)  # when autotuning is off (ARCHC_KERNELS_TUNE=0)


def tiling(cin_g: int, cout_g: int) -> dict:
    """The constexpr tile shape for groups of cin_g -> cout_g channels: G groups per tile, GN / GK real output /
    input channels, BLOCK_N / BLOCK_K their power-of-two tiles, K_BLOCKS blocks of input channels per tap."""
    g = max(1, math.ceil(MIN_DOT / cin_g), math.ceil(MIN_DOT / cout_g)) if max(cin_g, cout_g) < MIN_DOT else 1
    gn, gk = g * cout_g, g * cin_g
    block_k = min(triton.next_power_of_2(gk), MAX_BLOCK_K)
    return dict(GN=gn, GK=gk, BLOCK_N=max(MIN_DOT, triton.next_power_of_2(gn)), BLOCK_K=max(MIN_DOT, block_k),
                K_BLOCKS=triton.cdiv(gk, block_k))


def pack(weight, groups: int, t: dict):
    """[tiles, KH*KW, K_BLOCKS*BLOCK_K, BLOCK_N]: each tile's block-diagonal weight per tap, zero-padded."""
    cout, cin_g, kh, kw = weight.shape
    cout_g, gn = cout // groups, t["GN"]
    tiles = triton.cdiv(cout, gn)
    packed = weight.new_zeros(tiles, kh * kw, t["K_BLOCKS"] * t["BLOCK_K"], t["BLOCK_N"])
    taps = weight.permute(0, 2, 3, 1).reshape(cout, kh * kw, cin_g)  # [Cout, tap, Cin/groups]
    for g in range(groups):  # group g: output channels [g*cout_g, ...), its inputs at k = (g % G) * cin_g in its tile
        tile, slot = divmod(g * cout_g, gn)
        k0 = (slot // cout_g) * cin_g
        packed[tile, :, k0:k0 + cin_g, slot:slot + cout_g] = taps[g * cout_g:(g + 1) * cout_g].permute(1, 2, 0)
    return packed


@triton.jit(do_not_specialize=["M", "H", "W", "OH", "OW"])
def _kernel(
    x_ptr, w_ptr, scale_ptr, shift_ptr, res_ptr, out_ptr,
    M, H, W, OH, OW, CIN, COUT, KH, KW,
    stride_h, stride_w, pad_h, pad_w, dil_h, dil_w,
    sxn, sxc, sxh, sxw,  # x strides (any layout)
    HAS_SCALE: tl.constexpr, HAS_SHIFT: tl.constexpr, HAS_RES: tl.constexpr, ACT: tl.constexpr,
    PRECISION: tl.constexpr,
    GN: tl.constexpr, GK: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, K_BLOCKS: tl.constexpr,
    BLOCK_M: tl.constexpr,
):
    tile = tl.program_id(0)  # tiles vary fastest: programs running together read adjacent channels of a pixel
    rows = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)  # output pixels (n, oh, ow)
    ns = tl.arange(0, BLOCK_N)
    cols = tile * GN + ns  # output channels of this tile's groups
    row_ok = rows < M
    col_ok = (ns < GN) & (cols < COUT)
    n, ih0, iw0 = pixel_origins(rows, OH, OW, stride_h, stride_w, pad_h, pad_w)
    x_rows = x_ptr + n * sxn + (tile * GK) * sxc
    ks = tl.arange(0, BLOCK_K)
    w_tile = w_ptr + tile * (KH * KW * K_BLOCKS * BLOCK_K * BLOCK_N) + ks[:, None] * BLOCK_N + ns[None, :]

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for step in range(KH * KW * K_BLOCKS):  # (kh, kw, K block); step also indexes the packed weight's blocks
        tap = step // K_BLOCKS
        kh = tap // KW
        kw = tap % KW
        k = (step % K_BLOCKS) * BLOCK_K + ks  # input channel within the tile's groups
        k_ok = (k < GK) & (tile * GK + k < CIN)
        ih = ih0 + kh * dil_h
        iw = iw0 + kw * dil_w
        in_image = row_ok & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)  # padding reads as zero
        a = tl.load(x_rows[:, None] + (ih * sxh + iw * sxw)[:, None] + k[None, :] * sxc,
                    mask=in_image[:, None] & k_ok[None, :], other=0.0)
        b = tl.load(w_tile + step * (BLOCK_K * BLOCK_N))
        acc = tl.dot(a, b, acc, input_precision=PRECISION)

    fused_epilogue(acc, rows, cols, row_ok, col_ok, COUT, scale_ptr, shift_ptr, res_ptr, out_ptr,
                   HAS_SCALE, HAS_SHIFT, HAS_RES, ACT)


_tuned = autotuned(_kernel, CONFIGS, key=["M", "CIN", "COUT", "KH", "KW", "stride_h", "GN", "GK"])
INTERPRETER_CONFIGS[_kernel] = _config(16, 4, 1)


def plan(x, weight, scale=None, shift=None, *, stride=1, padding=0, dilation=1, groups=1, act="relu",
         residual=None, config=None):
    """A Plan for a grouped conv whose tiles span whole groups (any groups; meant for narrow ones)."""
    n, cin, h, w = x.shape
    cout, cin_g, kh, kw = weight.shape
    stride, padding, dilation = pair(stride), pair(padding), pair(dilation)
    check_weight(x, weight, groups)
    oh, ow = output_hw(x, weight, stride, padding, dilation)
    t = tiling(cin_g, cout // groups)
    packed = pack(weight, groups, t)
    scale, shift = vector(scale, cout, "scale"), vector(shift, cout, "shift")
    m, tiles = n * oh * ow, triton.cdiv(cout, t["GN"])

    def grid(meta):
        return tiles, triton.cdiv(m, meta["BLOCK_M"])

    sizes = (m, h, w, oh, ow, cin, cout, kh, kw, *stride, *padding, *dilation, *x.stride())
    return Plan(_kernel, _tuned, grid, (n, cout, oh, ow), (packed, scale, shift), sizes,
                {**epilogue_flags(x, scale, shift, residual, act), **t}, config, DEFAULT)


conv_bn_act = launcher(plan)
