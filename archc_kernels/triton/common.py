"""What the Triton kernels share: tile order, the fused epilogue, and the launch plumbing."""
import torch
import triton
import triton.language as tl
import triton.testing

from .. import env
from ..activations import ACTIVATIONS
from ..shapes import conv_output_hw

# Activation name -> the ACT code the epilogue switches on (archc_kernels.ACTIVATIONS: the one table).
ACT_CODES = {name: a.code for name, a in ACTIVATIONS.items() if a.code is not None}


@triton.jit
def grouped_tile(pid, num_m, num_n, GROUP_M: tl.constexpr):
    """(pid_m, pid_n) of program ``pid``: GROUP_M row tiles sweep all column tiles before moving on,
    so programs running together share their column (weight) tiles in L2."""
    per_band = GROUP_M * num_n
    first_m = (pid // per_band) * GROUP_M
    band_rows = tl.minimum(num_m - first_m, GROUP_M)
    pid_m = first_m + (pid % per_band) % band_rows
    pid_n = (pid % per_band) // band_rows
    return pid_m, pid_n


@triton.jit
def pixel_origins(rows, OH, OW, stride_h, stride_w, pad_h, pad_w):
    """(n, ih0, iw0) of output pixels ``rows`` (n, oh, ow flattened): their image and the top-left input
    position of their window."""
    ow = rows % OW
    oh = (rows // OW) % OH
    return rows // (OW * OH), oh * stride_h - pad_h, ow * stride_w - pad_w


@triton.jit
def activate(y, ACT: tl.constexpr):
    if ACT == 1:
        y = tl.maximum(y, 0.0)
    elif ACT == 2:
        y = tl.minimum(tl.maximum(y, 0.0), 6.0)
    elif ACT == 3:
        y = tl.sigmoid(y)
    elif ACT == 4:
        y = 2.0 * tl.sigmoid(2.0 * y) - 1.0
    elif ACT == 5:  # silu
        y = y * tl.sigmoid(y)
    elif ACT == 6:  # hardswish
        y = y * tl.minimum(tl.maximum(y + 3.0, 0.0), 6.0) / 6.0
    elif ACT == 7:  # hardsigmoid
        y = tl.minimum(tl.maximum(y + 3.0, 0.0), 6.0) / 6.0
    elif ACT == 8:  # gelu (erf)
        y = 0.5 * y * (1.0 + tl.erf(y * 0.7071067811865476))
    elif ACT == 9:  # leaky_relu, slope 0.01
        y = tl.where(y >= 0.0, y, 0.01 * y)
    return y


@triton.jit
def fused_epilogue(acc, rows, cols, row_ok, col_ok, COUT, scale_ptr, shift_ptr, res_ptr, out_ptr,
                   HAS_SCALE: tl.constexpr, HAS_SHIFT: tl.constexpr, HAS_RES: tl.constexpr, ACT: tl.constexpr):
    """out[rows, cols] = act(acc * scale[cols] + shift[cols] + res[rows, cols]) in fp32, stored in out's dtype.

    ``rows`` index output pixels (n, oh, ow) and ``cols`` output channels; ``out`` and ``res`` are
    channels_last contiguous, so element (row, col) sits at row * COUT + col.
    """
    if HAS_SCALE:
        acc = acc * tl.load(scale_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    if HAS_SHIFT:
        acc = acc + tl.load(shift_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    offsets = rows[:, None] * COUT + cols[None, :]
    mask = row_ok[:, None] & col_ok[None, :]
    if HAS_RES:
        acc = acc + tl.load(res_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
    acc = activate(acc, ACT)
    tl.store(out_ptr + offsets, acc.to(out_ptr.dtype.element_ty), mask=mask)


def tile_config(block_m, block_n, block_k, stages, warps, group_m=8):
    return triton.Config({"BLOCK_M": block_m, "BLOCK_N": block_n, "BLOCK_K": block_k, "GROUP_M": group_m},
                         num_stages=stages, num_warps=warps)


# The interpreter runs programs one by one: few, small tiles; BLOCK_K = 16 exercises the K loop.
INTERPRETER_CONFIG = tile_config(32, 32, 16, 1, 4, group_m=2)
INTERPRETER_CONFIGS = {}  # kernel -> its own interpreter config, for kernels whose tiles differ


def quick_bench(fn, quantiles):
    """The autotuner's timer: a shorter run than Triton's default, to keep first calls cheap."""
    return triton.testing.do_bench(fn, warmup=5, rep=25, quantiles=quantiles)


def autotuned(kernel, configs, key):
    return triton.autotune(configs=configs, key=key, do_bench=quick_bench)(kernel)


class Plan:
    """One kernel launch with everything but the tensors' data fixed: a host launcher's checks, derived operands,
    sizes and flags are computed once, the tile config is chosen on the first call and kept.

    ``plan(x, residual=None, out=None)`` runs it on an ``x`` with the shape and strides it was prepared for.
    ``config`` None: the interpreter's config, the autotuner's choice (kept after the first call), or ``default``.
    """

    def __init__(self, kernel, tuned, grid, out_shape, operands, sizes, flags, config, default):
        self.kernel, self.tuned, self.grid_of = kernel, tuned, grid
        self.out_shape, self.operands, self.sizes, self.flags = out_shape, operands, sizes, flags
        if config is None and env.interpreting():
            config = INTERPRETER_CONFIGS.get(kernel, INTERPRETER_CONFIG)
        if config is None and not env.tuning():
            config = default
        self.config = None
        if config is not None:
            self.fix(config)

    def fix(self, config):
        self.config, self.grid = config, self.grid_of(config.kwargs)
        self.options = {**self.flags, **config.kwargs, "num_warps": config.num_warps,
                        "num_stages": config.num_stages}

    def __call__(self, x, residual=None, out=None):
        out = output(x, self.out_shape, out)
        if out.numel() == 0:
            return out
        args = (x, self.operands[0], self.operands[1], self.operands[2], residual_operand(residual, out), out,
                *self.sizes)
        if self.config is None:  # first call on a GPU: the autotuner times every config, then we keep its pick
            self.tuned[self.grid_of](*args, **self.flags)
            self.fix(self.tuned.best_config)
            return out
        self.kernel[self.grid](*args, **self.options)
        return out


def launcher(plan):
    """The one-call form of a kernel module's ``plan``: prepare, then run on the same tensors."""

    def conv_bn_act(x, weight, scale=None, shift=None, *, stride=1, padding=0, dilation=1, groups=1, act="relu",
                    residual=None, out=None, config=None):
        return plan(x, weight, scale, shift, stride=stride, padding=padding, dilation=dilation, groups=groups,
                    act=act, residual=residual, config=config)(x, residual, out)

    conv_bn_act.__doc__ = f"``act(conv2d(x, weight) * scale + shift + residual)`` into a channels_last output " \
                          f"(``out`` if given), as {plan.__module__}.plan prepares it."
    return conv_bn_act


def epilogue_flags(x, scale, shift, residual, act):
    return dict(HAS_SCALE=scale is not None, HAS_SHIFT=shift is not None, HAS_RES=residual is not None,
                ACT=ACT_CODES[act], PRECISION=dot_precision(x.dtype))


def dot_precision(dtype) -> str:
    """fp32 dots follow PyTorch's conv policy: IEEE unless torch.backends.cudnn.allow_tf32 allows TF32.
    fp16 / bf16 dots ignore the setting; they get Triton's default ("tf32")."""
    return "ieee" if dtype == torch.float32 and not torch.backends.cudnn.allow_tf32 else "tf32"


def check_weight(x, weight, groups):
    """A [Cout, Cin/groups, KH, KW] weight of x's dtype and device, Cout divisible by groups."""
    cin, (cout, cin_g) = x.shape[1], weight.shape[:2]
    if cin != cin_g * groups or cout % groups or weight.dtype != x.dtype or weight.device != x.device:
        raise ValueError(f"weight {weight.dtype} {tuple(weight.shape)} does not fit x {x.dtype} {tuple(x.shape)} "
                         f"with groups={groups}")


def output_hw(x, weight, stride, padding, dilation):
    """(OH, OW) of the conv; raises when the kernel does not fit the padded input."""
    oh, ow = conv_output_hw(x.shape[2:], weight.shape[2:], stride, padding, dilation)
    if oh < 1 or ow < 1:
        raise ValueError(f"output would be {oh}x{ow}: the kernel does not fit the padded "
                         f"{x.shape[2]}x{x.shape[3]} input")
    return oh, ow


def vector(t, cout, name):
    """A per-output-channel scale or shift as a contiguous 1-d operand (None stays None)."""
    if t is None:
        return None
    if t.shape != (cout,):
        raise ValueError(f"{name} has shape {tuple(t.shape)}, expected ({cout},)")
    return t.contiguous()


def output(x, shape, out):
    """A channels_last output of ``shape`` in x's dtype: ``out`` checked, or a new one."""
    if out is None:
        return torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
    if tuple(out.shape) != tuple(shape) or out.dtype != x.dtype or out.device != x.device \
            or not out.is_contiguous(memory_format=torch.channels_last):
        raise ValueError(f"out must be a channels_last {x.dtype} tensor of shape {tuple(shape)} on {x.device}")
    return out


def residual_operand(residual, out):
    """The residual in the output's layout (a copy only when it is not channels_last already)."""
    if residual is None:
        return None
    if residual.shape != out.shape or residual.dtype != out.dtype:
        raise ValueError(f"residual is {residual.dtype} {tuple(residual.shape)}, expected {out.dtype} "
                         f"{tuple(out.shape)}")
    return residual.contiguous(memory_format=torch.channels_last)
