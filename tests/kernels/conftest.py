"""Kernel tests run on CUDA when a GPU is present; otherwise the Triton kernels run on CPU
tensors in Triton's interpreter (slow: keep shapes tiny).

Every check compares with the reference computed in float64 by ||out - ref|| / ||ref||, draws
fresh random inputs, and poisons kernel outputs with NaN before the launch.
"""
import os
import zlib

import pytest
import torch

ON_GPU = torch.cuda.is_available()
if not ON_GPU:
    os.environ["TRITON_INTERPRET"] = "1"  # before any kernel module is imported (they are imported lazily)

from archc_kernels import reference  # noqa: E402
from archc_kernels.shapes import conv_output_hw, pair  # noqa: E402

DEVICE = "cuda" if ON_GPU else "cpu"
# Relative-error bounds against float64: fp32 dots run as IEEE (TF32 is switched off below).
TOLERANCE = {torch.float32: 1e-5, torch.float16: 1e-3, torch.bfloat16: 8e-3, torch.float64: 1e-12}
# bf16 dots are wrong in the interpreter (triton #11584): bf16 is checked on GPUs only.
DTYPES = [torch.float32, torch.float16] + ([torch.bfloat16] if ON_GPU else [])

# Awkward shapes every conv path is checked on (the kernel files add their own):
# id: (n, cin, h, w, cout, k, make_inputs options)
AWKWARD = {
    "cin1_cout1": (1, 1, 5, 5, 1, 3, dict(padding=1)),
    "stem_cin3_k7_s2_p3": (1, 3, 9, 11, 16, 7, dict(stride=2, padding=3)),  # K flat over (kh, kw, c)
    "cin17_cout33_batch3_residual": (3, 17, 3, 4, 33, 3, dict(padding=1, residual=True)),
    "cin33_cout17_stride2": (1, 33, 6, 5, 17, 3, dict(stride=2, padding=1)),
    "spatial_1x1_k3": (3, 16, 1, 1, 16, 3, dict(padding=1)),
    "spatial_1x1_k1": (1, 33, 1, 1, 17, 1, {}),
    "odd_nonsquare_pad0": (1, 8, 7, 5, 24, 3, {}),
    "pad3": (1, 4, 3, 4, 8, 3, dict(padding=3)),
    "kernel_3x2_hw_pairs": (2, 8, 7, 6, 16, (3, 2), dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2))),
    "groups2": (1, 32, 4, 5, 32, 3, dict(padding=1, groups=2)),
    "depthwise": (1, 16, 5, 5, 16, 3, dict(padding=1, groups=16)),
    "channels_last_residual": (1, 17, 5, 5, 33, 3, dict(padding=1, channels_last=True, residual=True)),
    "folded_weight_no_scale": (1, 8, 5, 5, 16, 3, dict(padding=1, scale=False)),
    "no_scale_no_shift": (1, 8, 5, 5, 16, 3, dict(padding=1, scale=False, shift=False)),
}


@pytest.fixture(autouse=True)
def _fresh_seed_and_exact_fp32(request, monkeypatch):
    """A per-test seed (reproducible, different for every test), IEEE fp32, one fixed Triton config."""
    torch.manual_seed(zlib.crc32(request.node.nodeid.encode()))
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setenv("ARCHC_KERNELS_TUNE", "0")
    monkeypatch.delenv("ARCHC_KERNELS", raising=False)


@pytest.fixture
def device():
    return DEVICE


@pytest.fixture(params=DTYPES, ids=lambda d: str(d).removeprefix("torch."))
def dtype(request):
    return request.param


@pytest.fixture
def make_inputs():
    """make_inputs(n, cin, h, w, cout, k, ...) -> fresh random conv operands; k, stride, ... may be (h, w) pairs."""

    def make(n, cin, h, w, cout, k, *, groups=1, dtype=torch.float32, stride=1, padding=0, dilation=1,
             scale=True, shift=True, residual=False, channels_last=False):
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        kh, kw = pair(k)
        x = torch.randn(n, cin, h, w, device=DEVICE).to(dtype).contiguous(memory_format=fmt)
        weight = torch.randn(cout, cin // groups, kh, kw, device=DEVICE) / (cin // groups * kh * kw) ** 0.5
        oh, ow = conv_output_hw((h, w), (kh, kw), pair(stride), pair(padding), pair(dilation))
        return dict(
            x=x, weight=weight.to(dtype).contiguous(memory_format=fmt),
            scale=torch.rand(cout, device=DEVICE) + 0.5 if scale else None,
            shift=torch.randn(cout, device=DEVICE) * 0.5 if shift else None,
            residual=torch.randn(n, cout, oh, ow, device=DEVICE).to(dtype) if residual else None,
            stride=stride, padding=padding, dilation=dilation, groups=groups,
        )

    return make


@pytest.fixture
def expected():
    """The reference result in float64 for the same operands."""

    def compute(x, weight, scale=None, shift=None, *, residual=None, **conv):
        wide = [None if t is None else t.double() for t in (x, weight, scale, shift, residual)]
        return reference.conv_bn_act(*wide[:4], residual=wide[4], **conv)

    return compute


@pytest.fixture
def check():
    """check(out, ref): finite, same shape, relative error within the bound for out's dtype."""

    def compare(out, ref, dtype=None):
        dtype = dtype or out.dtype
        assert out.shape == ref.shape
        assert out.dtype == dtype
        assert torch.isfinite(out).all(), "non-finite output (unwritten elements stay NaN)"
        err = ((out.double() - ref).norm() / ref.norm()).item()
        assert err <= TOLERANCE[dtype], f"relative error {err:.2e} > {TOLERANCE[dtype]:.0e} ({dtype})"

    return compare


@pytest.fixture
def poisoned():
    """A NaN-filled channels_last output buffer like the kernels allocate."""

    def make(shape, dtype):
        return torch.full(shape, float("nan"), dtype=dtype, device=DEVICE).contiguous(
            memory_format=torch.channels_last)

    return make
