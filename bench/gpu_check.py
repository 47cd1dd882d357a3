#!/usr/bin/env python3
"""GPU check for archc_kernels, in one command from the repository root: python bench/gpu_check.py

1. tests: runs tests/kernels on CUDA (pytest in a subprocess, with a time limit);
2. convs: times the fused conv+BN+ReLU kernel on every distinct ResNet-50 conv shape (batch 128
   and 32, fp16 and bf16, channels_last) against cuDNN conv + BN + ReLU in eager, cuDNN's own fused
   torch.cudnn_convolution_relu / _add_relu, and torch.compile(mode="max-autotune") of the eager
   block (without CUDA graphs by default: see --compile-mode); the expanding 1x1 convs are timed
   once more with the residual add;
3. blocks: bottleneck blocks and a ResNet-50 body (stem to layer4) end to end, fused vs eager; then the
   whole compiler path: archc.fuse(archc.build("specs/resnet50.yaml")) vs the eager archc module.

Times are medians of triton.testing.do_bench (CUDA events, L2 flushed, after warm-up) on random
data. Each row carries its floor, max(FLOPs / 790 TFLOP/s, bytes / 4.3 TB/s) (H200, measured
here), and a correctness check of the fused output against an fp32 computation. The table is
printed last and written, with the date, GPU and versions, to bench/results/ (markdown + json).

A time budget (default 420 s) keeps the run under 8 minutes: phases skip what no longer fits, and
the max-autotune compiles, the slowest part, run last and are the first to go.
Exit status: 0 when everything that ran passed, 1 when a test or a correctness check failed,
2 without CUDA. --smoke runs the script itself on CPU (reference backend) to check it.
"""
import argparse
import datetime
import json
import math
import platform
import statistics
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from archc_kernels import bottleneck, conv_bn_act, fold_bn, fold_weight, route  # noqa: E402

PEAK_FLOPS = 790e12  # dense fp16/bf16 matrix rate of an H200, measured here
PEAK_BYTES = 4.3e12  # device copy bandwidth of an H200 (bytes read + written), measured here
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
TOLERANCE = {torch.float16: 2e-3, torch.bfloat16: 1.2e-2, torch.float32: 1e-4}  # vs fp32, ||.|| relative
METHODS = ("fused", "eager", "cudnn", "compile")  # columns; ratios are baseline ms / fused ms

# Every distinct conv of torchvision's ResNet-50 (v1.5, stride on the 3x3) at 224x224:
# name: (cin, cout, kernel, stride, input size). layer1's projection has l1.expand's shape.
RESNET50_CONVS = {
    "stem.7x7.s2": (3, 64, 7, 2, 224),
    "l1.reduce.first": (64, 64, 1, 1, 56),
    "l1.reduce": (256, 64, 1, 1, 56),
    "l1.3x3": (64, 64, 3, 1, 56),
    "l1.expand": (64, 256, 1, 1, 56),
    "l2.reduce.first": (256, 128, 1, 1, 56),
    "l2.3x3.s2": (128, 128, 3, 2, 56),
    "l2.expand": (128, 512, 1, 1, 28),
    "l2.downsample": (256, 512, 1, 2, 56),
    "l2.reduce": (512, 128, 1, 1, 28),
    "l2.3x3": (128, 128, 3, 1, 28),
    "l3.reduce.first": (512, 256, 1, 1, 28),
    "l3.3x3.s2": (256, 256, 3, 2, 28),
    "l3.expand": (256, 1024, 1, 1, 14),
    "l3.downsample": (512, 1024, 1, 2, 28),
    "l3.reduce": (1024, 256, 1, 1, 14),
    "l3.3x3": (256, 256, 3, 1, 14),
    "l4.reduce.first": (1024, 512, 1, 1, 14),
    "l4.3x3.s2": (512, 512, 3, 2, 14),
    "l4.expand": (512, 2048, 1, 1, 7),
    "l4.downsample": (1024, 2048, 1, 2, 14),
    "l4.reduce": (2048, 512, 1, 1, 7),
    "l4.3x3": (512, 512, 3, 1, 7),
}
WITH_RESIDUAL = ("l1.expand", "l2.expand", "l3.expand", "l4.expand")  # the bottleneck's last conv

# name: (cin, width, cout, stride, groups, input size)
BLOCKS = {
    "resnet50.layer1.0": (64, 64, 256, 1, 1, 56),
    "resnet50.layer2.0": (256, 128, 512, 2, 1, 56),
    "resnet50.layer3.1": (1024, 256, 1024, 1, 1, 14),
    "resnet50.layer4.1": (2048, 512, 2048, 1, 1, 7),
    "resnext50_32x4d.layer3.1": (1024, 512, 1024, 1, 32, 14),
}
RESNET50_STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # (width, blocks, stride)


# ----------------------------------------------------------------------------------------- budget

class Budget:
    def __init__(self, seconds):
        self.start = time.monotonic()
        self.deadline = self.start + seconds

    def left(self):
        return self.deadline - time.monotonic()

    def elapsed(self):
        return time.monotonic() - self.start


# ----------------------------------------------------------------------------------------- models

def random_bn(channels):
    bn = nn.BatchNorm2d(channels).eval()
    with torch.no_grad():
        bn.running_mean.normal_(0.0, 0.1)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.normal_(0.0, 0.1)
    return bn


def folded(conv, bn, dtype):
    """(weight, None, shift): BN folded into a channels_last weight, as archc's compiler passes it."""
    scale, shift = fold_bn(bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.eps)
    weight = fold_weight(conv.weight.detach().double(), scale).to(dtype)
    return weight.contiguous(memory_format=torch.channels_last), None, shift.to(conv.weight.device)


class ConvBN(nn.Module):
    """Eager conv -> BN -> (+ residual) -> ReLU, the block cuDNN and torch.compile are timed on."""

    def __init__(self, cin, cout, kernel, stride=1, groups=1, relu=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = random_bn(cout)
        self.relu = relu

    def forward(self, x, residual=None):
        y = self.bn(self.conv(x))
        if residual is not None:
            y = y + residual
        return F.relu(y, inplace=True) if self.relu else y

    def fused_params(self, dtype):
        return folded(self.conv, self.bn, dtype)


class Bottleneck(nn.Module):
    """torchvision's Bottleneck (v1.5) in eager ops."""

    def __init__(self, cin, width, cout, stride, groups):
        super().__init__()
        self.stride, self.groups = stride, groups
        self.conv1 = ConvBN(cin, width, 1)
        self.conv2 = ConvBN(width, width, 3, stride, groups)
        self.conv3 = ConvBN(width, cout, 1)
        self.downsample = ConvBN(cin, cout, 1, stride, relu=False) if stride != 1 or cin != cout else None

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.conv3(self.conv2(self.conv1(x)), shortcut)

    def fused_params(self, dtype):
        names = ("conv1", "conv2", "conv3") + (("downsample",) if self.downsample is not None else ())
        return {name: getattr(self, name).fused_params(dtype) for name in names}

    def fused(self, params):
        return lambda x: bottleneck(x, params, stride=self.stride, groups=self.groups)

    def cudnn(self, params):
        """The same block on cuDNN's fused conv+bias+ReLU and conv+bias+add+ReLU."""
        (w1, b1), (w2, b2), (w3, b3) = ((params[n][0], params[n][2].to(params[n][0].dtype))
                                        for n in ("conv1", "conv2", "conv3"))
        down = None
        if "downsample" in params:
            down = params["downsample"][0], params["downsample"][2].to(params["downsample"][0].dtype)
        s, g = self.stride, self.groups

        def run(x):
            shortcut = x if down is None else F.conv2d(x, down[0], down[1], s)
            y = torch.cudnn_convolution_relu(x, w1, b1, (1, 1), (0, 0), (1, 1), 1)
            y = torch.cudnn_convolution_relu(y, w2, b2, (s, s), (1, 1), (1, 1), g)
            return torch.cudnn_convolution_add_relu(y, w3, shortcut, 1.0, b3, (1, 1), (0, 0), (1, 1), 1)

        return run


class ResNet50Body(nn.Module):
    """Stem, max-pool and the 16 bottlenecks of ResNet-50 (no pooling head)."""

    def __init__(self):
        super().__init__()
        self.stem = ConvBN(3, 64, 7, 2)
        blocks, cin = [], 64
        for width, count, stride in RESNET50_STAGES:
            for i in range(count):
                blocks.append(Bottleneck(cin, width, width * 4, stride if i == 0 else 1, 1))
                cin = width * 4
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x):
        return self.blocks(F.max_pool2d(self.stem(x), 3, 2, 1))

    def fused(self, dtype):
        stem = self.stem.fused_params(dtype)
        blocks = [(b, b.fused_params(dtype)) for b in self.blocks]

        def run(x):
            y = F.max_pool2d(conv_bn_act(x, *stem, stride=2, padding=3, act="relu"), 3, 2, 1)
            for block, params in blocks:
                y = bottleneck(y, params, stride=block.stride, groups=block.groups)
            return y

        return run


def conv_cost(n, cin, cout, kernel, stride, size, groups=1, residual=False, elem=2):
    """(FLOPs, bytes) of one fused conv: each operand read once, the output written once."""
    out = (size + 2 * (kernel // 2) - kernel) // stride + 1
    flops = 2 * n * out * out * cout * (cin // groups) * kernel * kernel
    tensors = n * cin * size * size + cout * (cin // groups) * kernel * kernel + n * cout * out * out
    if residual:
        tensors += n * cout * out * out
    return flops, tensors * elem, out


def block_cost(n, cin, width, cout, stride, groups, size, elem=2):
    parts = [conv_cost(n, cin, width, 1, 1, size, elem=elem),
             conv_cost(n, width, width, 3, stride, size, groups, elem=elem)]
    out = parts[-1][2]
    parts.append(conv_cost(n, width, cout, 1, 1, out, residual=True, elem=elem))
    if stride != 1 or cin != cout:
        parts.append(conv_cost(n, cin, cout, 1, stride, size, elem=elem))
    return sum(p[0] for p in parts), sum(p[1] for p in parts)


def resnet50_cost(n, elem=2):
    flops, nbytes, _ = conv_cost(n, 3, 64, 7, 2, 224, elem=elem)
    cin, size = 64, 56
    for width, count, stride in RESNET50_STAGES:
        for i in range(count):
            s = stride if i == 0 else 1
            f, b = block_cost(n, cin, width, width * 4, s, 1, size, elem=elem)
            flops, nbytes, cin, size = flops + f, nbytes + b, width * 4, size // s
    return flops, nbytes


# ----------------------------------------------------------------------------------------- timing

@dataclass
class Row:
    section: str
    name: str
    batch: int
    dtype: str
    gflop: float
    mbyte: float
    floor_ms: float
    ms: dict = field(default_factory=dict)  # method -> median ms, or an "error: ..." / "skip: ..." string
    err: float | None = None  # fused output vs fp32, relative
    eager_err: float | None = None  # eager output (same dtype) vs fp32: the error the dtype itself costs
    kernel: str = ""
    note: str = ""

    def failed(self):
        """The fused output is missing, or less accurate than max(the dtype's bound, twice eager's error)."""
        bound = max(TOLERANCE[DTYPES[self.dtype]], 2 * (self.eager_err or 0.0))
        return self.err is None or not self.err <= bound or not isinstance(self.ms.get("fused"), float)

    def ratio(self, method):
        fused, other = self.ms.get("fused"), self.ms.get(method)
        if isinstance(fused, float) and isinstance(other, float) and fused > 0:
            return other / fused
        return None


def make_row(section, name, batch, dtype_name, flops, nbytes):
    floor = max(flops / PEAK_FLOPS, nbytes / PEAK_BYTES) * 1e3
    return Row(section, name, batch, dtype_name, flops / 1e9, nbytes / 1e6, floor)


class Timer:
    def __init__(self, device):
        self.device, self.shown = device, set()

    def median_ms(self, fn, rep_ms):
        if self.device.type == "cuda":
            import triton.testing

            return float(triton.testing.do_bench(fn, warmup=10, rep=rep_ms, return_mode="median"))
        times = []
        for _ in range(3):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1e3)
        return statistics.median(times)

    def measure(self, row, method, fn, rep_ms=40):
        """Time fn into row.ms[method]; an exception is recorded (its first traceback shown)."""
        try:
            with torch.no_grad():
                row.ms[method] = self.median_ms(fn, rep_ms)
        except Exception as e:  # one failing method must not lose the others
            row.ms[method] = f"error: {type(e).__name__}"
            if (method, type(e).__name__) not in self.shown:
                self.shown.add((method, type(e).__name__))
                print(f"  [{method}] {row.name} failed:\n" + traceback.format_exc(limit=6), flush=True)


def rel_err(out, ref):
    return ((out.float() - ref.float()).norm() / ref.float().norm()).item()


def cudnn_fused_available(device):
    return device.type == "cuda" and hasattr(torch, "cudnn_convolution_relu") \
        and hasattr(torch, "cudnn_convolution_add_relu")


def tuned_config(kernel_name):
    """The config the autotuner picked last for the kernel, as BMxBNxBK/stages/warps (diagnostic only)."""
    if not kernel_name.startswith("triton."):
        return kernel_name
    try:
        import importlib

        tuned = importlib.import_module(f"archc_kernels.{kernel_name}")._tuned
        c = tuned.best_config
        k = c.kwargs
        return f"{kernel_name[7:]} {k['BLOCK_M']}x{k['BLOCK_N']}x{k['BLOCK_K']}/s{c.num_stages}/w{c.num_warps}"
    except Exception:
        return kernel_name


# ----------------------------------------------------------------------------------------- phases

def run_tests(timeout, env_extra):
    """pytest tests/kernels in a subprocess: (passed, summary line)."""
    import os

    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/kernels"]
    env = {**os.environ, "PYTHONPATH": str(REPO), **env_extra}
    print(f"$ {' '.join(cmd)}   (limit {timeout:.0f} s)", flush=True)
    try:
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        tail = (e.stdout or b"")[-2000:]
        print(tail.decode(errors="replace") if isinstance(tail, bytes) else tail)
        return False, f"timed out after {timeout:.0f} s"
    lines = (done.stdout + done.stderr).strip().splitlines()
    print("\n".join(lines[-25:]), flush=True)
    return done.returncode == 0, (lines[-1] if lines else f"exit {done.returncode}")


def conv_row(name, batch, dtype_name, residual, device, timer):
    cin, cout, kernel, stride, size = RESNET50_CONVS[name]
    dtype = DTYPES[dtype_name]
    flops, nbytes, out = conv_cost(batch, cin, cout, kernel, stride, size, residual=residual,
                                   elem=torch.finfo(dtype).bits // 8)
    row = make_row("conv", name + (" +res" if residual else ""), batch, dtype_name, flops, nbytes)
    block = ConvBN(cin, cout, kernel, stride).to(device)
    x = torch.randn(batch, cin, size, size, device=device).to(dtype).contiguous(memory_format=torch.channels_last)
    z = None
    if residual:
        z = torch.randn(batch, cout, out, out, device=device).to(dtype).contiguous(memory_format=torch.channels_last)
    weight, _, shift = block.fused_params(dtype)  # folded from the fp32 parameters
    pad = kernel // 2
    args = (z,) if residual else ()

    with torch.no_grad():
        expect = block(x.float(), *(a.float() for a in args))  # fp32 reference (TF32 is off)
        eager = block.to(dtype).to(memory_format=torch.channels_last)
        row.eager_err = rel_err(eager(x, *args), expect)
        row.kernel = route(x, weight, None, shift, stride=stride, padding=pad, residual=z)[0]

        def fused():
            return conv_bn_act(x, weight, None, shift, stride=stride, padding=pad, act="relu", residual=z)

        try:
            start = time.monotonic()
            out_fused = fused()  # autotunes (and compiles) on first use
            if device.type == "cuda":
                torch.cuda.synchronize()
            row.note = f"tune {time.monotonic() - start:.1f}s"
            row.err = rel_err(out_fused, expect)
            row.kernel = tuned_config(row.kernel)
        except Exception:
            print(f"  [fused] {row.name} failed:\n" + traceback.format_exc(limit=8), flush=True)
    timer.measure(row, "fused", fused)
    timer.measure(row, "eager", lambda: eager(x, *args))
    if cudnn_fused_available(device):
        bias = shift.to(dtype)
        if residual:
            timer.measure(row, "cudnn", lambda: torch.cudnn_convolution_add_relu(
                x, weight, z, 1.0, bias, (stride, stride), (pad, pad), (1, 1), 1))
        else:
            timer.measure(row, "cudnn", lambda: torch.cudnn_convolution_relu(
                x, weight, bias, (stride, stride), (pad, pad), (1, 1), 1))
    return row, (eager, (x, *args))


def block_row(name, batch, dtype_name, device, timer):
    cin, width, cout, stride, groups, size = BLOCKS[name]
    dtype = DTYPES[dtype_name]
    flops, nbytes = block_cost(batch, cin, width, cout, stride, groups, size, elem=torch.finfo(dtype).bits // 8)
    row = make_row("block", name, batch, dtype_name, flops, nbytes)
    block = Bottleneck(cin, width, cout, stride, groups).to(device)
    x = torch.randn(batch, cin, size, size, device=device).to(dtype).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        expect = block(x.float())
        params = block.fused_params(dtype)  # folded from the fp32 parameters, before the cast below
        fused = block.fused(params)
        eager = block.to(dtype).to(memory_format=torch.channels_last)
        row.eager_err = rel_err(eager(x), expect)
        row.kernel = route(x, params["conv2"][0], stride=stride, padding=1, groups=groups)[0] + " (3x3)"
        try:
            row.err = rel_err(fused(x), expect)
        except Exception:
            print(f"  [fused] {name} failed:\n" + traceback.format_exc(limit=8), flush=True)
    timer.measure(row, "fused", lambda: fused(x))
    timer.measure(row, "eager", lambda: eager(x))
    if cudnn_fused_available(device):
        cudnn = block.cudnn(params)
        timer.measure(row, "cudnn", lambda: cudnn(x))
    return row, (eager, (x,))


def archc_row(batch, dtype_name, device, timer):
    """The product end to end: the ResNet-50 spec built by archc, fused by archc.fuse, vs its eager module."""
    import archc

    dtype = DTYPES[dtype_name]
    flops, nbytes = resnet50_cost(batch, elem=torch.finfo(dtype).bits // 8)
    row = make_row("model", "archc specs/resnet50.yaml", batch, dtype_name, flops, nbytes)
    torch.manual_seed(0)
    model = archc.build(REPO / "specs" / "resnet50.yaml").eval().to(device)
    x = torch.randn(batch, 3, 224, 224, device=device)
    with torch.no_grad():
        expect = model(x)
        fused = archc.fuse(model).to(dtype=dtype)  # BN folded from the fp32 parameters, then cast
        eager = model.to(dtype=dtype, memory_format=torch.channels_last)
        xd = x.to(dtype).contiguous(memory_format=torch.channels_last)
    check_and_time_model(row, fused, eager, xd, expect, timer)
    return row


def check_and_time_model(row, fused, eager, x, expect, timer):
    """Errors of both against the fp32 output, then times (~20 ms a call: enough samples for a median)."""
    with torch.no_grad():
        row.eager_err = rel_err(eager(x), expect)
        try:
            row.err = rel_err(fused(x), expect)
        except Exception:
            print(f"  [fused] {row.name} failed:\n" + traceback.format_exc(limit=8), flush=True)
    timer.measure(row, "fused", lambda: fused(x), rep_ms=400)
    timer.measure(row, "eager", lambda: eager(x), rep_ms=400)
    if isinstance(row.ms.get("fused"), float):
        row.note = f"{x.shape[0] / row.ms['fused'] * 1e3:.0f} img/s fused"


def resnet_row(batch, dtype_name, device, timer):
    dtype = DTYPES[dtype_name]
    flops, nbytes = resnet50_cost(batch, elem=torch.finfo(dtype).bits // 8)
    row = make_row("model", "resnet50.body", batch, dtype_name, flops, nbytes)
    model = ResNet50Body().to(device)
    x = torch.randn(batch, 3, 224, 224, device=device).to(dtype).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        expect = model(x.float())
        fused = model.fused(dtype)  # folded from the fp32 parameters, before the cast below
        eager = model.to(dtype).to(memory_format=torch.channels_last)
    check_and_time_model(row, fused, eager, x, expect, timer)
    return row, (eager, (x,))


def time_compiled(row, eager, inputs, mode, timer):
    """Compile the eager block with torch.compile(mode) and time it; returns the compile seconds."""
    import torch._dynamo

    torch._dynamo.reset()  # a fresh cache per block: the recompile limit would silently fall back to eager
    start = time.monotonic()
    try:
        compiled = torch.compile(eager, mode=mode, dynamic=False)
        with torch.no_grad():
            compiled(*inputs)
        if timer.device.type == "cuda":
            torch.cuda.synchronize()
    except Exception as e:
        row.ms["compile"] = f"error: {type(e).__name__}"
        print(f"  [compile] {row.name} failed:\n" + traceback.format_exc(limit=6), flush=True)
        return time.monotonic() - start
    seconds = time.monotonic() - start
    timer.measure(row, "compile", lambda: compiled(*inputs))
    return seconds


# ----------------------------------------------------------------------------------------- report

def fmt_ms(value):
    if isinstance(value, float):
        return f"{value:.3f}"
    return "-" if value is None else str(value)


def fmt_ratio(value):
    return "-" if value is None else f"{value:.2f}x"


def geomean(values):
    values = [v for v in values if v is not None and v > 0]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


def table(rows):
    head = ["section", "name", "N", "dtype", "GFLOP", "floor ms", "fused ms", "TFLOP/s", "floor/fused",
            "eager ms", "cudnn ms", "compile ms", "eager/fused", "cudnn/fused", "compile/fused", "rel err (eager)",
            "kernel", "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        fused = r.ms.get("fused")
        tflops = f"{r.gflop / fused:.1f}" if isinstance(fused, float) else "-"
        eff = f"{r.floor_ms / fused:.0%}" if isinstance(fused, float) else "-"
        err = "-" if r.err is None else f"{r.err:.1e}" + (" FAIL" if r.failed() else "")
        err += "" if r.eager_err is None else f" ({r.eager_err:.1e})"
        cells = [r.section, r.name, r.batch, r.dtype, f"{r.gflop:.2f}", f"{r.floor_ms:.3f}", fmt_ms(fused), tflops,
                 eff, fmt_ms(r.ms.get("eager")), fmt_ms(r.ms.get("cudnn")), fmt_ms(r.ms.get("compile")),
                 fmt_ratio(r.ratio("eager")), fmt_ratio(r.ratio("cudnn")), fmt_ratio(r.ratio("compile")), err,
                 r.kernel, r.note]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def summary(rows):
    """Geomeans of baseline/fused over the conv rows (conv+BN+ReLU only), per dtype and batch."""
    lines = ["| dtype | N | rows | eager/fused | cudnn/fused | compile/fused |", "|---|---|---|---|---|---|"]
    groups = sorted({(r.dtype, r.batch) for r in rows if r.section == "conv"}, key=lambda k: (k[0], -k[1]))
    for dtype, batch in groups:
        picked = [r for r in rows if r.section == "conv" and (r.dtype, r.batch) == (dtype, batch)
                  and not r.name.endswith("+res")]
        cells = [fmt_ratio(geomean([r.ratio(m) for r in picked])) for m in ("eager", "cudnn", "compile")]
        counts = "/".join(str(sum(r.ratio(m) is not None for r in picked)) for m in ("eager", "cudnn", "compile"))
        lines.append(f"| {dtype} | {batch} | {counts} | " + " | ".join(cells) + " |")
    target = [r.ratio("eager") for r in rows if r.section == "conv" and r.dtype == "fp16" and r.batch == 128
              and not r.name.endswith("+res")]
    value = geomean(target)
    verdict = "not measured" if value is None else ("MET" if value >= 1.0 else "NOT MET")
    lines.append("")
    lines.append(f"Target (fused conv+BN+ReLU, fp16, N=128, geomean >= 1.00x eager cuDNN conv+BN+ReLU): "
                 f"{fmt_ratio(value)} over {sum(v is not None for v in target)} shapes -> {verdict}")
    return "\n".join(lines)


def environment(device):
    info = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "python": platform.python_version(),
            "torch": torch.__version__, "cuda": torch.version.cuda, "device": str(device)}
    try:
        import triton

        info["triton"] = triton.__version__
    except Exception as e:
        info["triton"] = f"unavailable ({type(e).__name__})"
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cudnn"] = torch.backends.cudnn.version()
        info["sm"] = "%d.%d" % torch.cuda.get_device_capability(device)
    return info


def write_results(out_dir, info, tests, rows, text):
    out_dir.mkdir(parents=True, exist_ok=True)
    gpu = "".join(c if c.isalnum() else "-" for c in info.get("gpu", info["device"])).strip("-")
    stem = f"gpu_check-{info['date'][:19].replace(':', '')}-{gpu}"
    (out_dir / f"{stem}.md").write_text(text + "\n")
    payload = {"environment": info, "tests": tests, "peaks": {"flops": PEAK_FLOPS, "bytes_per_s": PEAK_BYTES},
               "rows": [asdict(r) for r in rows]}
    (out_dir / f"{stem}.json").write_text(json.dumps(payload, indent=1, default=str) + "\n")
    return out_dir / f"{stem}.md", out_dir / f"{stem}.json"


# ----------------------------------------------------------------------------------------- main

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", type=float, default=420.0,
                   help="seconds for the whole run (default 420: with start-up and one overrunning step, < 8 min)")
    p.add_argument("--test-timeout", type=float, default=180.0, help="seconds for the kernel tests (default 180)")
    p.add_argument("--batches", help="conv batch sizes, in priority order (default 128,32)")
    p.add_argument("--dtypes", help="dtypes, in priority order (default fp16,bf16)")
    p.add_argument("--compile-mode",
                   help="torch.compile mode, 'none' skips it (default max-autotune-no-cudagraphs: the kernels "
                        "max-autotune picks, without CUDA graphs, whose replays copy every input into a static "
                        "buffer first)")
    p.add_argument("--skip-tests", action="store_true", help="skip the kernel tests")
    p.add_argument("--only", default="", help="comma-separated substrings: time only matching convs/blocks")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="results folder")
    p.add_argument("--smoke", action="store_true",
                   help="check this script on CPU (defaults: batch 2, fp32, no compiles; no tests): "
                        "times mean nothing and nothing is written")
    args = p.parse_args(argv)
    defaults = ("2", "fp32", "none") if args.smoke else ("128,32", "fp16,bf16", "max-autotune-no-cudagraphs")
    args.batches = [int(b) for b in (args.batches or defaults[0]).split(",") if b]
    args.dtypes = [d for d in (args.dtypes or defaults[1]).split(",") if d]
    args.compile_mode = args.compile_mode or defaults[2]
    args.skip_tests = args.skip_tests or args.smoke
    return args


def main(argv=None):
    args = parse_args(argv)
    budget = Budget(args.budget)
    batches, dtypes = args.batches, args.dtypes
    if not args.smoke and not torch.cuda.is_available():
        print(f"gpu_check: no CUDA device visible to torch {torch.__version__} (built for CUDA "
              f"{torch.version.cuda}); nothing to measure. Run it on a machine with an NVIDIA GPU, "
              "or pass --smoke to check the script itself on CPU.", file=sys.stderr)
        return 2
    device = torch.device("cpu" if args.smoke else "cuda")
    unknown = [d for d in dtypes if d not in DTYPES]
    if unknown:
        print(f"gpu_check: unknown dtypes {unknown}; choose from {sorted(DTYPES)}", file=sys.stderr)
        return 2
    torch.backends.cudnn.allow_tf32 = False  # fp32 references exact; fp16/bf16 timings unaffected
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    info = environment(device)
    print("gpu_check:", json.dumps(info), flush=True)
    only = [s for s in args.only.split(",") if s]

    def wanted(name):
        return not only or any(s in name for s in only)

    # 1. tests -----------------------------------------------------------------------------------
    tests = {"ran": False}
    if not args.skip_tests:
        limit = max(30.0, min(args.test_timeout, budget.left() - 240))
        passed, line = run_tests(limit, {"ARCHC_KERNELS_TUNE": "0"})
        tests = {"ran": True, "passed": passed, "summary": line}
        print(f"tests: {'passed' if passed else 'FAILED'}: {line}  ({budget.elapsed():.0f} s)", flush=True)

    timer = Timer(device)
    rows, compilable = [], []  # compilable: (row, eager module, inputs) for the torch.compile pass
    reserve = 20.0  # seconds kept for the report

    # 2. convs -----------------------------------------------------------------------------------
    skipped = 0
    for dtype_name in dtypes:
        for batch in batches:
            for name in RESNET50_CONVS:
                for residual in (False, True) if name in WITH_RESIDUAL else (False,):
                    if not wanted(name):
                        continue
                    if budget.left() < reserve + 60:
                        skipped += 1
                        continue
                    row, eager = conv_row(name, batch, dtype_name, residual, device, timer)
                    rows.append(row)
                    compilable.append((row, *eager))
                    print(f"  {row.name:22s} {dtype_name} N={batch:<4d} fused {fmt_ms(row.ms.get('fused'))} "
                          f"eager {fmt_ms(row.ms.get('eager'))} cudnn {fmt_ms(row.ms.get('cudnn'))} ms "
                          f"({budget.elapsed():.0f} s)", flush=True)

    if skipped:
        print(f"budget: skipped {skipped} conv rows", flush=True)

    # 3. blocks and the ResNet-50 body, at the largest batch ------------------------------------
    batch = max(batches)
    for dtype_name in dtypes:
        for name in BLOCKS:
            if wanted(name) and budget.left() > reserve + 30:
                row, eager = block_row(name, batch, dtype_name, device, timer)
                rows.append(row)
                compilable.append((row, *eager))
                print(f"  {name:26s} {dtype_name} N={batch} fused {fmt_ms(row.ms.get('fused'))} "
                      f"eager {fmt_ms(row.ms.get('eager'))} ms ({budget.elapsed():.0f} s)", flush=True)
        if wanted("resnet50.body") and budget.left() > reserve + 40:
            row, _ = resnet_row(batch, dtype_name, device, timer)
            rows.append(row)
            print(f"  resnet50.body {dtype_name} N={batch}: {row.note} ({budget.elapsed():.0f} s)", flush=True)
        if wanted("archc") and budget.left() > reserve + 40:
            row = archc_row(batch, dtype_name, device, timer)
            rows.append(row)
            print(f"  archc resnet50 {dtype_name} N={batch}: {row.note} ({budget.elapsed():.0f} s)", flush=True)

    # 4. torch.compile of the eager blocks, while the budget lasts -------------------------------
    if args.compile_mode != "none":
        seen = []  # compile seconds; the first includes Inductor's one-off start-up
        # Most wanted first: the first dtype and batch (the target's), conv rows before blocks.
        compilable.sort(key=lambda c: (dtypes.index(c[0].dtype), batches.index(c[0].batch), c[0].section != "conv"))
        for row, eager, inputs in compilable:
            estimate = max(seen[1:] or seen or [45.0])
            if budget.left() < reserve + 2 * estimate:
                row.ms["compile"] = "skip: budget"
                continue
            seconds = time_compiled(row, eager, inputs, args.compile_mode, timer)
            seen.append(seconds)
            print(f"  compile {row.name} {row.dtype} N={row.batch}: {seconds:.0f} s to build, "
                  f"{fmt_ms(row.ms.get('compile'))} ms ({budget.elapsed():.0f} s)", flush=True)

    # 5. report ----------------------------------------------------------------------------------
    failed = [f"{r.name} {r.dtype} N={r.batch}" for r in rows if r.failed()]
    text = "\n".join([
        f"# archc_kernels GPU check, {info['date']}",
        "",
        "```", json.dumps(info, indent=1), "```",
        "",
        f"Tests: {tests.get('summary', 'skipped')}" + ("" if tests.get("passed", True) else " (FAILED)"),
        f"Floor = max(FLOPs / {PEAK_FLOPS / 1e12:.0f} TFLOP/s, bytes / {PEAK_BYTES / 1e12:.1f} TB/s). "
        "Ratios are baseline ms / fused ms (> 1: fused is faster). eager = cuDNN conv + BN + ReLU "
        "(+ add) in eager PyTorch; cudnn = torch.cudnn_convolution_relu / _add_relu on the folded weights; "
        f"compile = torch.compile(mode={args.compile_mode!r}) of the eager block. Rel err: fused output vs fp32 "
        "(eager's in brackets); FAIL above max(dtype bound, 2x eager's).",
        "",
        table(rows),
        "",
        summary(rows),
        "",
        f"Failed correctness or fused errors: {', '.join(failed) if failed else 'none'}",
        f"Wall time: {budget.elapsed():.0f} s of a {args.budget:.0f} s budget.",
    ])
    if not args.smoke:
        for path in write_results(args.out, info, tests, rows, text):
            print(f"wrote {path}")
    print()
    print(text, flush=True)
    return 0 if tests.get("passed", True) and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
