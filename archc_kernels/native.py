"""Small CPU kernels that PyTorch has not in the form archc needs, compiled on first use with the system's C
compiler (as Inductor compiles its C++ kernels) and called through ctypes:

- ``maxpool``: max pooling over channels_last data without the indices PyTorch's CPU max pooling computes
  (``max_pool2d_with_indices``, even in inference), reading and writing strided data — an output may be its
  slice of a concatenation (DenseNet's first pooling);
- ``affine_act``: ``act(x * scale[c] + shift[c])`` in one pass (BN without a conv before it, as DenseNet's
  pre-activations), reading a concatenation's prefix where it lies, writing a channels_last output.

Each computes exactly what PyTorch's ops compute (max pooling's -inf padding and NaN propagation included) and
is tested against them. float32 only; without a C compiler, or with ``ARCHC_NATIVE=0``, ``available()`` is
False and callers use PyTorch's ops. The library is cached under ``$XDG_CACHE_HOME/archc`` (or ~/.cache/archc),
named by a hash of its source and compiler command. Threads: OpenMP, shared with PyTorch's runtime
(``torch.get_num_threads()`` threads per call).
"""
import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from .activations import ACTIVATIONS
from .shapes import conv_output_hw

ENV = "ARCHC_NATIVE"
ACTS = {name: a.native for name, a in ACTIVATIONS.items() if a.native is not None}  # what affine_act computes

SOURCE = r"""
#include <stdint.h>
#include <math.h>

/* Strided [N, H, W, C] float32 tensors whose channels are contiguous; strides in elements. */

void archc_maxpool_f32(const float *x, float *y, int64_t N, int64_t H, int64_t W, int64_t C,
                       int64_t xn, int64_t xh, int64_t xw, int64_t OH, int64_t OW, int64_t yn, int64_t yh,
                       int64_t yw, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                       int64_t dh, int64_t dw, int threads) {
    #pragma omp parallel for collapse(2) schedule(static) num_threads(threads)
    for (int64_t n = 0; n < N; n++) {
        for (int64_t oh = 0; oh < OH; oh++) {
            for (int64_t ow = 0; ow < OW; ow++) {
                float *out = y + n * yn + oh * yh + ow * yw;
                int64_t h0 = oh * sh - ph, w0 = ow * sw - pw;
                for (int64_t c = 0; c < C; c++) out[c] = -INFINITY;
                for (int64_t i = 0; i < kh; i++) {
                    int64_t h = h0 + i * dh;
                    if (h < 0 || h >= H) continue;
                    for (int64_t j = 0; j < kw; j++) {
                        int64_t w = w0 + j * dw;
                        if (w < 0 || w >= W) continue;
                        const float *in = x + n * xn + h * xh + w * xw;
                        for (int64_t c = 0; c < C; c++) {
                            float v = in[c], m = out[c];
                            out[c] = (v > m || v != v) ? v : m;  /* NaN propagates, as in PyTorch */
                        }
                    }
                }
            }
        }
    }
}

void archc_affine_act_f32(const float *x, float *y, const float *scale, const float *shift, int64_t N,
                          int64_t H, int64_t W, int64_t C, int64_t xn, int64_t xh, int64_t xw, int64_t yn,
                          int64_t yh, int64_t yw, int act, int threads) {
    #pragma omp parallel for collapse(2) schedule(static) num_threads(threads)
    for (int64_t n = 0; n < N; n++) {
        for (int64_t h = 0; h < H; h++) {
            for (int64_t w = 0; w < W; w++) {
                const float *in = x + n * xn + h * xh + w * xw;
                float *out = y + n * yn + h * yh + w * yw;
                if (act == 1) {
                    for (int64_t c = 0; c < C; c++) {
                        float v = in[c] * scale[c] + shift[c];
                        out[c] = v > 0.0f ? v : (v != v ? v : 0.0f);
                    }
                } else if (act == 2) {
                    for (int64_t c = 0; c < C; c++) {
                        float v = in[c] * scale[c] + shift[c];
                        out[c] = v != v ? v : (v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v));
                    }
                } else {
                    for (int64_t c = 0; c < C; c++) out[c] = in[c] * scale[c] + shift[c];
                }
            }
        }
    }
}
"""

FLAGS = ["-O3", "-march=native", "-fopenmp", "-fPIC", "-shared", "-fno-math-errno"]


def _compiler() -> str | None:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    return None


def _machine() -> str:
    """What -march=native compiles for: a library built on another CPU (a shared home) is not reused."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith("flags")), "")
    except OSError:
        import platform

        return platform.processor() + platform.machine()


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "archc"


@functools.cache
def _library():
    """The compiled library, or None (no compiler, a failed build, or ARCHC_NATIVE=0)."""
    cc = _compiler()
    if cc is None:
        return None
    command = [cc, *FLAGS]
    digest = hashlib.sha256("\n".join([SOURCE, *command, _machine()]).encode()).hexdigest()[:16]
    path = _cache_dir() / f"native-{digest}.so"
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
                src, out = Path(tmp) / "native.c", Path(tmp) / "native.so"
                src.write_text(SOURCE)
                subprocess.run([*command, str(src), "-o", str(out)], check=True, capture_output=True, timeout=120)
                os.replace(out, path)  # atomic: another process may be building the same library
        except (OSError, subprocess.SubprocessError):
            return None
    try:
        lib = ctypes.CDLL(str(path))
    except OSError:
        return None
    i64, ptr, cint = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
    lib.archc_maxpool_f32.argtypes = [ptr, ptr] + [i64] * 20 + [cint]
    lib.archc_maxpool_f32.restype = None
    lib.archc_affine_act_f32.argtypes = [ptr, ptr, ptr, ptr] + [i64] * 10 + [cint, cint]
    lib.archc_affine_act_f32.restype = None
    return lib


def available() -> bool:
    """The kernels are compiled and loaded, and not turned off (ARCHC_NATIVE=0)."""
    return os.environ.get(ENV, "1") != "0" and _library() is not None


def takes(x: torch.Tensor) -> bool:
    """A float32 CPU tensor [N, C, H, W] whose channels are contiguous (channels_last data, or a slice of it; any
    layout of one channel)."""
    return x.dtype == torch.float32 and x.device.type == "cpu" and x.dim() == 4 \
        and (x.stride(1) == 1 or x.shape[1] == 1)


def _extent_ok(t: torch.Tensor) -> bool:
    """Every element of t lies inside its storage (non-negative strides): the bytes a kernel may touch."""
    if any(s < 0 for s in t.stride()):
        return False
    last = t.storage_offset() + sum((n - 1) * s for n, s in zip(t.shape, t.stride())) if t.numel() else -1
    return t.storage_offset() >= 0 and (last + 1) * t.element_size() <= t.untyped_storage().nbytes()


def _check(what: str, t: torch.Tensor, shape: tuple) -> None:
    """The C kernels trust the sizes and strides they are given: each call checks them here first, so a wrong
    shape is an error, never a write outside a tensor."""
    if not (isinstance(t, torch.Tensor) and takes(t) and tuple(t.shape) == tuple(shape) and _extent_ok(t)):
        got = f"{list(t.shape)} {t.dtype} strides {list(t.stride())}" if isinstance(t, torch.Tensor) else type(t)
        raise ValueError(f"archc native kernel: {what} must be a channels-contiguous float32 CPU tensor "
                         f"{list(shape)} inside its storage, got {got}")


def _check_vector(what: str, t: torch.Tensor, c: int) -> None:
    if not (isinstance(t, torch.Tensor) and t.dtype == torch.float32 and t.device.type == "cpu" and t.dim() == 1
            and t.numel() == c and t.is_contiguous() and _extent_ok(t)):
        raise ValueError(f"archc native kernel: {what} must be a contiguous float32 CPU tensor [{c}]")


def maxpool(x, k, s, p, d=(1, 1), ceil=False, out=None):
    """F.max_pool2d(x, k, s, p, d, ceil) for channels-contiguous float32 x, into ``out`` when given (any
    channels-contiguous [N, C, OH, OW] tensor, such as a slice of a concatenation). Sizes are checked against
    the tensors before the kernel runs (ValueError)."""
    k, s, p, d = (tuple(map(int, v)) for v in (k, s, p, d))
    if x.dim() != 4 or min(*k, *s, *d) < 1 or min(p) < 0 or any(2 * pp > kk for kk, pp in zip(k, p)):
        raise ValueError(f"archc native maxpool: arguments k={k} s={s} p={p} d={d} do not apply to {list(x.shape)}")
    n, c, h, w = x.shape
    _check("maxpool input", x, (n, c, h, w))
    oh, ow = conv_output_hw((h, w), k, s, p, d, ceil)
    if oh < 1 or ow < 1:
        raise ValueError(f"archc native maxpool: {list(x.shape)} gives an empty output {oh}x{ow}")
    if out is None:
        out = torch.empty((n, c, oh, ow), dtype=x.dtype, memory_format=torch.channels_last)
    _check("maxpool output", out, (n, c, oh, ow))
    _library().archc_maxpool_f32(x.data_ptr(), out.data_ptr(), n, h, w, c, x.stride(0), x.stride(2), x.stride(3),
                                 oh, ow, out.stride(0), out.stride(2), out.stride(3), k[0], k[1], s[0], s[1],
                                 p[0], p[1], d[0], d[1], torch.get_num_threads())
    return out


def affine_act(x, scale, shift, act="none", out=None):
    """act(x * scale[c] + shift[c]) for channels-contiguous float32 x; scale and shift contiguous float32 [C].
    Sizes are checked against the tensors before the kernel runs (ValueError)."""
    if x.dim() != 4:
        raise ValueError(f"archc native affine_act: input must be [N, C, H, W], got {list(x.shape)}")
    n, c, h, w = x.shape
    _check("affine_act input", x, (n, c, h, w))
    _check_vector("affine_act scale", scale, c)
    _check_vector("affine_act shift", shift, c)
    if out is None:
        out = torch.empty((n, c, h, w), dtype=x.dtype, memory_format=torch.channels_last)
    _check("affine_act output", out, (n, c, h, w))
    _library().archc_affine_act_f32(x.data_ptr(), out.data_ptr(), scale.data_ptr(), shift.data_ptr(), n, h, w, c,
                                    x.stride(0), x.stride(2), x.stride(3), out.stride(0), out.stride(2),
                                    out.stride(3), ACTS[act], torch.get_num_threads())
    return out
