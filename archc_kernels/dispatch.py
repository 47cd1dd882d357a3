"""Which implementation computes a conv_bn_act call.

``backend_for(x)``: "triton" for CUDA tensors when Triton imports, "cpu" (oneDNN, ``archc_kernels.cpu``) for CPU
tensors when this PyTorch has oneDNN's fused convolution ops, else "reference";
``ARCHC_KERNELS=reference|triton|cpu`` forces one (forced Triton also runs CPU tensors under
``TRITON_INTERPRET=1``). ``route(...)``: the kernel for this problem, or the reference with the reason
the kernels decline it. Declining is always safe: the reference computes every valid call and raises
PyTorch's own error for invalid ones.
"""
import dataclasses
import functools
import importlib

import torch

from . import cpu, env, reference
from .activations import ACTIVATIONS, activation_name
from .shapes import conv_output_hw, extent, pair

TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# Grouped convs with fewer output channels per group than the implicit GEMM's narrowest tile (64) run the kernel
# whose tiles span whole groups instead of masking most of each tile.
MIN_GROUP_WIDTH = 64
MAX_EXTENT = 2**31  # the kernels index elements with int32


@functools.cache
def triton_importable() -> bool:
    try:
        import triton  # noqa: F401
    except Exception:  # not installed, or an install that fails to load
        return False
    return True


def backend_for(x: torch.Tensor) -> str:
    """"triton", "cpu" or "reference": the backend that computes ops on ``x``, honouring ARCHC_KERNELS."""
    forced = env.forced_backend()
    if forced == "reference":
        return "reference"
    if forced == "cpu":
        if x.device.type != "cpu" or not cpu.available():
            raise RuntimeError(f"{env.BACKEND}=cpu, but x is on {x.device} or this PyTorch lacks oneDNN's fused "
                               "convolution ops")
        return "cpu"
    if forced == "triton":
        if not (x.is_cuda or env.interpreting()):
            raise RuntimeError(f"{env.BACKEND}=triton, but x is on {x.device}: Triton runs CUDA tensors, "
                               "or CPU tensors under TRITON_INTERPRET=1")
        if not triton_importable():
            raise RuntimeError(f"{env.BACKEND}=triton, but triton cannot be imported")
        return "triton"
    if x.is_cuda and triton_importable():
        return "triton"
    if x.device.type != "cpu" or torch.compiler.is_compiling():  # a compiler fuses the reference ops its own way
        return "reference"
    return "cpu" if cpu.available() else "reference"


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
    act: str = "none"

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
    (lambda c: ACTIVATIONS[c.act].code is None, "the activation has no Triton form (archc_kernels.ACTIVATIONS)"),
    (lambda c: c.x.dtype == torch.bfloat16 and env.interpreting(),
     "the Triton interpreter computes bfloat16 dots wrongly (triton #11584)"),
    (_too_large, "a tensor spans 2**31 elements or more (the kernels index with int32)"),
)


def _is_gemm(c: _Call) -> bool:
    """A 1x1, unpadded, ungrouped conv over channels_last x is one GEMM [N*OH*OW, Cin] x [Cin, Cout]."""
    return (tuple(c.weight.shape[2:]) == (1, 1) and pair(c.padding) == (0, 0) and c.groups == 1
            and c.x.is_contiguous(memory_format=torch.channels_last))


def _is_depthwise(c: _Call) -> bool:
    return c.groups > 1 and c.groups == c.x.shape[1]


def _narrow_groups(c: _Call) -> bool:
    return c.groups > 1 and c.weight.shape[0] // c.groups < MIN_GROUP_WIDTH


# (predicate, kernel, why), in order, for calls no DECLINE rule sent to the reference; the last always holds.
KERNELS = (
    (_is_gemm, "triton.gemm1x1", "1x1 conv over channels_last input"),
    (_is_depthwise, "triton.depthwise", "depthwise: direct kernel"),
    (_narrow_groups, "triton.grouped", f"fewer than {MIN_GROUP_WIDTH} output channels per group: tiles span groups"),
    (lambda c: True, "triton.conv", "implicit GEMM"),
)


def route(x, weight, scale=None, shift=None, *, stride=1, padding=0, dilation=1, groups=1, residual=None,
          act="none"):
    """(implementation, why): "reference", "cpu" (oneDNN) or the Triton kernel module ("triton.gemm1x1",
    "triton.depthwise", "triton.grouped", "triton.conv") that computes this call."""
    backend = backend_for(x)
    if backend == "reference":
        return "reference", "backend is reference"
    if backend == "cpu":
        reason = cpu.declines(x, weight, scale, shift, residual, stride, padding, dilation, groups)
        return ("reference", reason) if reason else ("cpu", "oneDNN: pre-packed weight, fused post-ops")
    call = _Call(x, weight, scale, shift, residual, stride, padding, dilation, groups, activation_name(act))
    for declines, reason in DECLINE:
        if declines(call):
            return "reference", reason
    return next((name, why) for applies, name, why in KERNELS if applies(call))


def _implementation(name):
    if name == "reference":
        return reference.conv_bn_act
    return importlib.import_module(f"{__package__}.{name}").conv_bn_act


def conv_bn_act(x, weight, scale=None, shift=None, *, stride=1, padding=0, dilation=1, groups=1,
                act="relu", residual=None):
    """``act(conv2d(x, weight) * scale[c] + shift[c] + residual)``, on the implementation ``route`` picks.

    ``scale=None``: the weight already carries the scale and ``shift`` is a plain bias (None: zero).
    ``act``: "none" (or None) or a name in ``archc_kernels.ACTIVATIONS``. ``residual`` has the output's shape.
    Output dtype is x's. The Triton and oneDNN kernels return channels_last outputs and run fastest on
    channels_last ``x``, ``weight`` and ``residual``; the reference returns what ``F.conv2d`` does.
    """
    act = reference.activation_name(act)
    name, _ = route(x, weight, scale, shift, stride=stride, padding=padding, dilation=dilation,
                    groups=groups, residual=residual, act=act)
    return _implementation(name)(x, weight, scale, shift, stride=stride, padding=padding, dilation=dilation,
                                 groups=groups, act=act, residual=residual)


class ConvBNAct:
    """``conv_bn_act`` with its weight, scale, shift, conv arguments and activation fixed, routed once per kind
    of input rather than on every call.

    The first call with a new kind of input — shape, strides, dtype, device, residual, grad mode,
    ``ARCHC_KERNELS`` — picks the implementation as ``route`` does and prepares its launch (on a GPU the
    autotuner's pick is then kept); later calls with such an input allocate the output and launch.
    Tensors are held by reference: in-place changes to them, and new data given to them (``.data = ``, as
    ``module.to(...)`` does), prepare the launch again. Under torch.compile, torch.export and tracing the call
    routes each time, as ``conv_bn_act`` does.
    """

    MAX_PLANS = 64  # kinds of input kept; more (say, every batch size) starts the cache afresh

    def __init__(self, weight, scale=None, shift=None, *, stride=1, padding=0, dilation=1, groups=1, act="relu"):
        self.weight, self.scale, self.shift = weight, scale, shift
        self.conv = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        self.act = reference.activation_name(act)
        self._plans = {}

    def route(self, x, residual=None):
        """(implementation, why) for this input, as ``route``."""
        return route(x, self.weight, self.scale, self.shift, residual=residual, act=self.act, **self.conv)

    def __call__(self, x, residual=None):
        if torch.compiler.is_compiling() or torch.jit.is_tracing():  # tracers see through: route on each call
            return conv_bn_act(x, self.weight, self.scale, self.shift, act=self.act, residual=residual, **self.conv)
        key = (env.raw_backend(), torch.is_grad_enabled(), x.shape, x.stride(), x.dtype, x.device, x.requires_grad,
               *(None if t is None else (t.data_ptr(), t._version, t.requires_grad)
                 for t in (self.weight, self.scale, self.shift)),
               None if residual is None else (residual.shape, residual.stride(), residual.dtype, residual.device,
                                              residual.requires_grad))
        prepared = self._plans.get(key)
        if prepared is None:
            if len(self._plans) >= self.MAX_PLANS:
                self._plans.clear()
            prepared = self._plans[key] = self._prepare(x, residual)
        return prepared[1](x, residual)

    def describe(self) -> str:
        """The implementations prepared so far, with the tile configs the Triton ones run."""
        def one(name, plan):
            config = getattr(plan, "config", None)
            if config is None:
                return name
            tiles = " ".join(f"{k}={v}" for k, v in config.kwargs.items())
            return f"{name} {tiles} warps={config.num_warps} stages={config.num_stages}"

        return "; ".join(sorted({one(*prepared) for prepared in self._plans.values()}))

    def __getstate__(self):  # copies and pickles prepare their own launches
        return {**self.__dict__, "_plans": {}}

    def _prepare(self, x, residual):
        """(implementation name, callable(x, residual))."""
        name, _ = self.route(x, residual)
        if name == "reference":
            return name, self._reference
        module = importlib.import_module(f"{__package__}.{name}")
        return name, module.plan(x, self.weight, self.scale, self.shift, act=self.act, residual=residual,
                                 **self.conv)

    def _reference(self, x, residual):
        return reference.conv_bn_act(x, self.weight, self.scale, self.shift, act=self.act, residual=residual,
                                     **self.conv)

    def __repr__(self):
        o, i, kh, kw = self.weight.shape
        return f"ConvBNAct({i * self.conv['groups']}, {o}, kernel_size=({kh}, {kw}), act={self.act}, {self.conv})"
