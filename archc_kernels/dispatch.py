"""Which implementation computes a conv_bn_act call.

``backend_for(x)``: "triton" for CUDA tensors when Triton imports, else "reference";
``ARCHC_KERNELS=reference|triton`` forces one (forced Triton also runs CPU tensors under
``TRITON_INTERPRET=1``). ``route(...)``: on the Triton backend, the kernel for this problem, or
the reference with the reason the kernels decline it. Declining is always safe: the reference
computes every valid call and raises PyTorch's own error for invalid ones.
"""
import dataclasses
import functools
import importlib

import torch

from . import env, reference
from .shapes import conv_output_hw, extent, pair

TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
MIN_GROUP_WIDTH = 16  # tl.dot tiles are at least 16 wide: narrower groups waste most of every tile
MAX_EXTENT = 2**31  # the kernels index elements with int32


@functools.cache
def triton_importable() -> bool:
    try:
        import triton  # noqa: F401
    except Exception:  # not installed, or an install that fails to load
        return False
    return True


def backend_for(x: torch.Tensor) -> str:
    """"triton" or "reference": the backend that computes ops on ``x``, honouring ARCHC_KERNELS."""
    forced = env.forced_backend()
    if forced == "reference":
        return "reference"
    if forced == "triton":
        if not (x.is_cuda or env.interpreting()):
            raise RuntimeError(f"{env.BACKEND}=triton, but x is on {x.device}: Triton runs CUDA tensors, "
                               "or CPU tensors under TRITON_INTERPRET=1")
        if not triton_importable():
            raise RuntimeError(f"{env.BACKEND}=triton, but triton cannot be imported")
        return "triton"
    return "triton" if x.is_cuda and triton_importable() else "reference"


@dataclasses.dataclass(frozen=True)
class _Call:
    x: torch.Tensor
    weight: torch.Tensor
    scale: torch.Tensor | None
    shift: torch.Tensor | None
    residual: torch.Tensor | None
    stride: object
    padding: object
    dilation: object
    groups: int

    def tensors(self):
        return [t for t in (self.x, self.weight, self.scale, self.shift, self.residual) if t is not None]

    @functools.cached_property
    def out_shape(self):
        """The output shape, or None when the arguments do not describe a valid convolution."""
        x, w, groups = self.x, self.weight, self.groups
        if x.dim() != 4 or w.dim() != 4 or not isinstance(groups, int) or groups < 1:
            return None
        try:
            stride, padding, dilation = pair(self.stride), pair(self.padding), pair(self.dilation)
        except ValueError:
            return None  # string padding, or a form the kernels do not take
        if min(stride + dilation) < 1 or min(padding) < 0:
            return None
        if x.shape[1] != w.shape[1] * groups or w.shape[0] % groups:
            return None
        oh, ow = conv_output_hw(x.shape[2:], w.shape[2:], stride, padding, dilation)
        shape = (x.shape[0], w.shape[0], oh, ow)
        if oh < 1 or ow < 1 or any(t is not None and t.shape != (w.shape[0],) for t in (self.scale, self.shift)):
            return None
        if self.residual is not None and tuple(self.residual.shape) != shape:
            return None
        return shape


def _narrow_groups(c: _Call) -> bool:
    return c.groups > 1 and min(c.x.shape[1], c.weight.shape[0]) // c.groups < MIN_GROUP_WIDTH


def _too_large(c: _Call) -> bool:
    n, cout, oh, ow = c.out_shape
    return max([n * cout * oh * ow] + [extent(t) for t in c.tensors()]) >= MAX_EXTENT


# (predicate, reason), in order: the first that holds sends the call to the reference.
DECLINE = (
    (lambda c: c.out_shape is None, "arguments the kernels do not take (the reference raises if invalid)"),
    (lambda c: c.x.dtype not in TRITON_DTYPES, "dtype is not float32, float16 or bfloat16"),
    (lambda c: any(t.dtype != c.x.dtype for t in (c.weight, c.residual) if t is not None), "mixed dtypes"),
    (lambda c: any(t.device != c.x.device for t in c.tensors()), "tensors on different devices"),
    (lambda c: torch.is_grad_enabled() and any(t.requires_grad for t in c.tensors()),
     "autograd: the kernels have no backward"),
    (lambda c: c.x.dtype == torch.bfloat16 and env.interpreting(),
     "the Triton interpreter computes bfloat16 dots wrongly (triton #11584)"),
    (_narrow_groups, f"groups narrower than {MIN_GROUP_WIDTH} channels waste most of each tl.dot tile"),
    (_too_large, "a tensor spans 2**31 elements or more (the kernels index with int32)"),
)


def _is_gemm(c: _Call) -> bool:
    """A 1x1, stride-1, unpadded, ungrouped conv over channels_last x is one GEMM [N*H*W, Cin] x [Cin, Cout]."""
    return (tuple(c.weight.shape[2:]) == (1, 1) and pair(c.stride) == (1, 1) and pair(c.padding) == (0, 0)
            and c.groups == 1 and c.x.is_contiguous(memory_format=torch.channels_last))


def route(x, weight, scale=None, shift=None, *, stride=1, padding=0, dilation=1, groups=1, residual=None):
    """(implementation, why): implementation is "reference", "triton.gemm1x1" or "triton.conv"."""
    backend = backend_for(x)
    if backend == "reference":
        return "reference", "backend is reference"
    call = _Call(x, weight, scale, shift, residual, stride, padding, dilation, groups)
    for declines, reason in DECLINE:
        if declines(call):
            return "reference", reason
    if _is_gemm(call):
        return "triton.gemm1x1", "1x1 stride-1 conv over channels_last input"
    return "triton.conv", "implicit GEMM"


def _implementation(name):
    if name == "reference":
        return reference.conv_bn_act
    return importlib.import_module(f"{__package__}.{name}").conv_bn_act


def conv_bn_act(x, weight, scale=None, shift=None, *, stride=1, padding=0, dilation=1, groups=1,
                act="relu", residual=None):
    """``act(conv2d(x, weight) * scale[c] + shift[c] + residual)``, on the implementation ``route`` picks.

    ``scale=None``: the weight already carries the scale and ``shift`` is a plain bias (None: zero).
    ``act``: "none" (or None), "relu", "relu6", "sigmoid", "tanh". ``residual`` has the output's shape.
    Output dtype is x's. The Triton kernels return channels_last outputs and run fastest on
    channels_last ``x``, ``weight`` and ``residual``; the reference returns what ``F.conv2d`` does.
    """
    act = reference.activation_name(act)
    name, _ = route(x, weight, scale, shift, stride=stride, padding=padding, dilation=dilation,
                    groups=groups, residual=residual)
    return _implementation(name)(x, weight, scale, shift, stride=stride, padding=padding, dilation=dilation,
                                 groups=groups, act=act, residual=residual)
