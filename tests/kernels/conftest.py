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
