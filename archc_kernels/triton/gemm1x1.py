"""Fused 1x1 conv + per-channel scale/shift + residual + activation as one GEMM.

Over channels_last x the conv is out[M, Cout] = x[M, Cin] @ w[Cout, Cin]^T with M = N*OH*OW: at stride 1 row
m of x is pixel m; at stride s (a ResNet downsample) it is pixel (n, s*oh, s*ow), still Cin contiguous values.
"""
import torch
import triton
import triton.language as tl

from ..shapes import pair
from .common import Plan, autotuned, epilogue_flags, fused_epilogue, grouped_tile, launcher, output_hw, \
    pixel_origins, tile_config, vector

# (BLOCK_M, BLOCK_N, BLOCK_K, stages, warps)
CONFIGS = [tile_config(*c) for c in [
    (128, 256, 64, 3, 8),
    (256, 128, 64, 3, 8),
    (128, 128, 64, 4, 8),
    (128, 128, 32, 4, 4),
    (128, 64, 64, 4, 4),
    (64, 128, 64, 4, 4),
    (64, 64, 64, 4, 4),
]]
DEFAULT = tile_config(64, 64, 32, 3, 4)  # when autotuning is off (ARCHC_KERNELS_TUNE=0)


@triton.jit(do_not_specialize=["M", "OH", "OW"])
def _kernel(
    x_ptr, w_ptr, scale_ptr, shift_ptr, res_ptr, out_ptr,
    M, COUT, CIN, OH, OW,
    sxn, sxh, sxw, stride_h, stride_w,  # x strides (channels_last: channels contiguous) and conv stride
    swn, swk,  # weight strides, [Cout, Cin]
    HAS_SCALE: tl.constexpr, HAS_SHIFT: tl.constexpr, HAS_RES: tl.constexpr, ACT: tl.constexpr,
    PRECISION: tl.constexpr, STRIDED: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    pid_m, pid_n = grouped_tile(tl.program_id(0), tl.cdiv(M, BLOCK_M), tl.cdiv(COUT, BLOCK_N), GROUP_M)
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)  # output pixels
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)  # output channels
    row_ok = rows < M
    col_ok = cols < COUT
    ks = tl.arange(0, BLOCK_K)
    if STRIDED:  # output pixel (n, oh, ow) reads input pixel (n, oh * stride_h, ow * stride_w)
        n, ih, iw = pixel_origins(rows, OH, OW, stride_h, stride_w, 0, 0)
        a_ptrs = x_ptr + (n * sxn + ih * sxh + iw * sxw)[:, None] + ks[None, :]
    else:
        a_ptrs = x_ptr + rows[:, None] * CIN + ks[None, :]
    b_ptrs = w_ptr + cols[None, :] * swn + ks[:, None] * swk

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, CIN, BLOCK_K):
        k_ok = k0 + ks < CIN
        a = tl.load(a_ptrs, mask=row_ok[:, None] & k_ok[None, :], other=0.0)
        b = tl.load(b_ptrs, mask=k_ok[:, None] & col_ok[None, :], other=0.0)
        acc = tl.dot(a, b, acc, input_precision=PRECISION)
        a_ptrs += BLOCK_K
        b_ptrs += BLOCK_K * swk

    fused_epilogue(acc, rows, cols, row_ok, col_ok, COUT, scale_ptr, shift_ptr, res_ptr, out_ptr,
                   HAS_SCALE, HAS_SHIFT, HAS_RES, ACT)


_tuned = autotuned(_kernel, CONFIGS, key=["M", "COUT", "CIN"])


def plan(x, weight, scale=None, shift=None, *, stride=1, padding=0, dilation=1, groups=1, act="relu",
         residual=None, config=None):
    """The 1x1 case of conv.plan: channels_last ``x``, padding 0, groups 1, any stride."""
    n, cin, h, w = x.shape
    cout = weight.shape[0]
    if tuple(weight.shape[1:]) != (cin, 1, 1) or weight.dtype != x.dtype or weight.device != x.device:
        raise ValueError(f"weight {weight.dtype} {tuple(weight.shape)} is not a 1x1 conv of x {x.dtype} "
                         f"{tuple(x.shape)}")
    if pair(padding) != (0, 0) or groups != 1:
        raise ValueError("gemm1x1 takes padding 0, groups 1 only")
    if not x.is_contiguous(memory_format=torch.channels_last):
        raise ValueError("gemm1x1 takes channels_last contiguous x")
    stride = pair(stride)
    oh, ow = output_hw(x, weight, stride, (0, 0), (1, 1))
    w2 = weight.reshape(cout, cin)
    scale, shift = vector(scale, cout, "scale"), vector(shift, cout, "shift")
    m = n * oh * ow

    def grid(meta):
        return (triton.cdiv(m, meta["BLOCK_M"]) * triton.cdiv(cout, meta["BLOCK_N"]),)

    sizes = (m, cout, cin, oh, ow, x.stride(0), x.stride(2), x.stride(3), *stride, *w2.stride())
    return Plan(_kernel, _tuned, grid, (n, cout, oh, ow), (w2, scale, shift), sizes,
                {**epilogue_flags(x, scale, shift, residual, act), "STRIDED": stride != (1, 1)}, config, DEFAULT)


conv_bn_act = launcher(plan)
