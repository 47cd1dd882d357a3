#!/usr/bin/env python3
"""One-shot GPU check of archc_kernels: correctness and speed against cuDNN, saved after every row.

    bash bench/gpu_run.sh                      # on the GPU machine (installs carried wheels; see there)
    python bench/gpu_check.py --out DIR [--budget 400]
    python bench/gpu_check.py --rehearse --out /tmp/rehearsal   # the whole script on a CPU: interpreter, tiny shapes

Rows come in order of value; each is its own try (a failure is a row that says so); DIR/gpu_check.md and .json
are rewritten after every row; no row starts that the --budget (seconds) cannot fit, so the run ends in time:

  ceilings   device copy bandwidth and fp16 matrix rate, measured here (the floors use them)
  warm       every Triton kernel the rows launch, compiled on all cores in parallel into Triton's disk cache
  conv       every distinct conv of resnet50 (the zoo's) as archc.fuse runs it, fp16, N=128
  model      archc.fuse(archc.build(spec)) of resnet50 and resnext50_32x4d (zoo names) vs the eager module
  grouped    ResNeXt-50's grouped convs (also on the implicit-GEMM kernel, "alt") and MobileNetV2's depthwise
  block      bottlenecks of both specs
  conv bf16, conv N=32, then the kernel tests (pytest -n, on CUDA), then torch.compile of the eager models

The shapes come from the specs (the fused module's convs, recorded by hooks in one CPU forward), not from a
copy of them here. Methods: fused = archc_kernels (ConvBNAct, as archc.fuse calls it); eager = cuDNN conv + BN
+ activation (+ add) in eager PyTorch, channels_last; cudnn = torch.cudnn_convolution_relu / _add_relu on the
folded weights; compile = torch.compile of the eager module. Each is timed end to end (a Python call, as users
run it) and, as "graph", replayed from a CUDA graph (GPU time alone, no launch overhead). Times are medians of
triton.testing.do_bench (CUDA events, L2 flushed) on random data, with 20th..80th percentiles. Every fused
output is checked against an fp32 computation (TF32 off): FAIL above max(the dtype's bound, 2x eager's error).
Exit status: 0 when everything that ran passed, 1 when a check or a test failed, 2 without CUDA.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import importlib
import json
import multiprocessing
import os
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import ROOT, Budget, environment, geomean, markdown_table, spread, write_atomic  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
TOLERANCE = {torch.float16: 2e-3, torch.bfloat16: 1.2e-2, torch.float32: 1e-4}  # vs fp32, ||.|| relative
SPECS = {"resnet50": "resnet50", "resnext50_32x4d": "resnext50_32x4d"}  # zoo names (archc/zoo/resnet.yaml variants)
BLOCKS = ("resnet50.layer1.0", "resnet50.layer2.0", "resnet50.layer3.1", "resnet50.layer4.1",
          "resnext50_32x4d.layer1.0", "resnext50_32x4d.layer3.1")
# MobileNetV2's depthwise 3x3 convs at 224x224 (torchvision mobilenet_v2; inverted-residual expansion 6):
# (channels, stride, input size). No MobileNet spec exists yet; when the zoo adds one, take them from it.
MOBILENET_V2_DEPTHWISE = ((32, 1, 112), (96, 2, 112), (144, 1, 56), (144, 2, 56), (192, 1, 28), (192, 2, 28),
                          (384, 1, 14), (576, 1, 14), (576, 2, 14), (960, 1, 7))
# Until measured (phase "ceilings"): an H200's dense fp16 matrix rate and copy bandwidth (read + write).
PEAKS = {"flops": 790e12, "bytes": 4.3e12}


# ------------------------------------------------------------------------------------------------- shapes

@dataclass(frozen=True)
class Conv:
    """One fused conv as archc.fuse runs it: conv + folded BN + act (+ residual) on a [cin, h, w] input."""
    cin: int
    cout: int
    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    groups: int
    act: str
    residual: bool
    hw: tuple

    @property
    def out_hw(self):
        from archc_kernels.shapes import conv_output_hw

        return conv_output_hw(self.hw, self.kernel, self.stride, self.padding, self.dilation)

    def label(self):
        k = "x".join(map(str, self.kernel))
        s = "" if self.stride == (1, 1) else f" s{self.stride[0]}"
        g = "" if self.groups == 1 else (" dw" if self.groups == self.cin else f" g{self.groups}")
        return f"{self.cin}->{self.cout} {k}{s}{g} @{self.hw[0]}" + (" +res" if self.residual else "") \
            + ("" if self.act == "relu" else f" {self.act}")

    def cost(self, batch, elem):
        """(FLOPs, bytes): each operand read once, the output written once."""
        oh, ow = self.out_hw
        flops = 2 * batch * oh * ow * self.cout * (self.cin // self.groups) * self.kernel[0] * self.kernel[1]
        out = batch * self.cout * oh * ow
        values = batch * self.cin * self.hw[0] * self.hw[1] + self.cout * (self.cin // self.groups) \
            * self.kernel[0] * self.kernel[1] + out * (2 if self.residual else 1)
        return flops, values * elem


@dataclass
class Recorded:
    """What one CPU forward of a spec's fused module shows: its convs by module name, and the values its ops read
    and write per image (the floor of this execution plan's memory traffic)."""
    convs: dict
    values_per_image: int
    params: int
    macs: int
    input_shape: list


def record(spec: str) -> Recorded:
    import archc

    model = archc.build(spec)
    fused = archc.fuse(model)
    convs, values = {}, [0]

    def on_conv(name, module, args):
        x, residual = args[0], (args[1] if len(args) > 1 else None)
        w = module.weight
        convs[name] = Conv(x.shape[1], w.shape[0], tuple(w.shape[2:]), tuple(module.stride), tuple(module.padding),
                           tuple(module.dilation), module.groups, module.act, residual is not None,
                           tuple(x.shape[2:]))

    def on_leaf(module, args, out):
        values[0] += sum(a.numel() for a in args if isinstance(a, torch.Tensor)) + out.numel()

    for name, m in fused.named_modules():
        if hasattr(m, "op") and hasattr(m, "act") and hasattr(m, "weight"):  # archc.fuse's FusedConvBNAct
            m.register_forward_pre_hook(lambda mod, args, name=name: on_conv(name, mod, args))
        if not list(m.children()) and m is not fused:
            m.register_forward_hook(on_leaf)
    previous = os.environ.get("ARCHC_KERNELS")
    os.environ["ARCHC_KERNELS"] = "reference"
    try:
        with torch.no_grad():
            fused(torch.randn(1, *model.analysis.input_shape))
    finally:
        os.environ.pop("ARCHC_KERNELS") if previous is None else os.environ.__setitem__("ARCHC_KERNELS", previous)
    return Recorded(convs, values[0], model.analysis.params, model.analysis.macs, model.analysis.input_shape)


def distinct(convs: dict) -> dict:
    """Conv -> the module names that have it, in first-use order."""
    out = {}
    for name, conv in convs.items():
        out.setdefault(conv, []).append(name)
    return out


def shrink(conv: Conv) -> Conv:
    """The rehearsal's version of a conv: the same channels, kernel and flags on a map of at most 4x4."""
    hw = tuple(min(s, 4) for s in conv.hw)
    padding = tuple(min(p, (k - 1) * d) for p, k, d in zip(conv.padding, conv.kernel, conv.dilation))
    return Conv(conv.cin, conv.cout, conv.kernel, conv.stride, padding, conv.dilation, conv.groups, conv.act,
                conv.residual, hw)


# ------------------------------------------------------------------------------------------------- modules

def random_bn(channels):
    bn = nn.BatchNorm2d(channels).eval()
    with torch.no_grad():
        bn.running_mean.normal_(0.0, 0.1)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.normal_(0.0, 0.1)
    return bn


ACTS = {"none": lambda y: y, "relu": F.relu, "relu6": F.relu6, "sigmoid": torch.sigmoid, "tanh": torch.tanh}


class EagerConv(nn.Module):
    """conv -> BN -> (+ residual) -> act in eager PyTorch: what cuDNN runs without archc."""

    def __init__(self, c: Conv):
        super().__init__()
        self.c = c
        self.conv = nn.Conv2d(c.cin, c.cout, c.kernel, c.stride, c.padding, c.dilation, c.groups, bias=False)
        self.bn = random_bn(c.cout)

    def forward(self, x, residual=None):
        y = self.bn(self.conv(x))
        return ACTS[self.c.act](y if residual is None else y + residual)

    def folded(self, dtype):
        """(weight, None, shift) with BN folded in float64 into a channels_last weight, as archc.fuse stores them."""
        from archc_kernels import fold_bn, fold_weight

        bn = self.bn
        with torch.no_grad():
            scale, shift = fold_bn(bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.eps, dtype=torch.float64)
            weight = fold_weight(self.conv.weight.double(), scale).to(dtype)
        return weight.contiguous(memory_format=torch.channels_last), None, shift.to(dtype)

    def fused(self, dtype):
        from archc_kernels import ConvBNAct

        c = self.c
        return ConvBNAct(*self.folded(dtype), stride=c.stride, padding=c.padding, dilation=c.dilation,
                         groups=c.groups, act=c.act)

    def cudnn(self, dtype):
        """cuDNN's own fused conv + bias + (add +) ReLU on the folded weights, or None where it has none."""
        c = self.c
        if c.act != "relu" or c.dilation != (1, 1) or not hasattr(torch, "cudnn_convolution_relu"):
            return None
        weight, _, bias = self.folded(dtype)
        args = (c.stride, c.padding, c.dilation, c.groups)
        if c.residual:
            return lambda x, z: torch.cudnn_convolution_add_relu(x, weight, z, 1.0, bias, *args)
        return lambda x, z=None: torch.cudnn_convolution_relu(x, weight, bias, *args)


class EagerBlock(nn.Module):
    """torchvision's bottleneck in eager ops, from the block's recorded convs."""

    def __init__(self, convs: dict):
        super().__init__()
        self.parts = nn.ModuleDict({k: EagerConv(c) for k, c in convs.items()})

    def forward(self, x):
        p = self.parts
        shortcut = p["downsample"](x) if "downsample" in p else x
        return p["conv3"](p["conv2"](p["conv1"](x)), shortcut)

    def fused(self, dtype):
        from archc_kernels import Bottleneck

        conv2 = self.parts["conv2"].c
        return Bottleneck({k: m.folded(dtype) for k, m in self.parts.items()}, stride=conv2.stride,
                          groups=conv2.groups)


# ------------------------------------------------------------------------------------------------- rows

@dataclass
class Row:
    section: str
    name: str
    shape: str
    batch: int
    dtype: str
    gflop: float
    mbyte: float
    floor_ms: float
    ms: dict = field(default_factory=dict)  # method[.graph] -> [median, p20, p80] ms, or "error: ..."/"skip: ..."
    err: dict = field(default_factory=dict)  # method -> relative error vs fp32
    kernel: str = ""
    note: str = ""

    def median(self, method):
        value = self.ms.get(method)
        return value[0] if isinstance(value, list) else None

    def ratio(self, baseline, method="fused", graph=False):
        suffix = ".graph" if graph else ""
        ours, theirs = self.median(method + suffix), self.median(baseline + suffix)
        return theirs / ours if ours and theirs else None

    def failed(self):
        """A fused (or alt) output missing or less accurate than max(the dtype's bound, twice eager's error)."""
        bound = max(TOLERANCE[DTYPES[self.dtype]], 2 * (self.err.get("eager") or 0.0))
        checked = [m for m in ("fused", "alt") if m in self.err or m in self.ms]
        return any(not (isinstance(self.err.get(m), float) and self.err[m] <= bound) for m in checked)


class Check:
    """The run: device, timer, budget, rows and the files they are written to after every row."""

    def __init__(self, args):
        self.args = args
        self.rehearse = args.rehearse
        self.device = torch.device("cpu" if args.rehearse else "cuda")
        self.budget = Budget(args.budget)
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.tests: dict = {"ran": False}
        self.info = environment(rehearsal=args.rehearse)
        self.shown = set()

    # timing -------------------------------------------------------------------------------------------
    def time(self, fn, rep_ms):
        """[median, p20, p80] milliseconds of fn()."""
        if self.device.type == "cuda":
            import triton.testing

            return [float(v) for v in triton.testing.do_bench(fn, warmup=10, rep=rep_ms, quantiles=[0.5, 0.2, 0.8])]
        samples = []
        for _ in range(2):
            start = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - start) * 1e3)
        return list(spread(samples))

    def attempt(self, row, key, action):
        """action() with its failure recorded in row.ms[key] (the first traceback of each kind shown)."""
        try:
            return action()
        except Exception as e:
            row.ms[key] = f"error: {type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
            if (key, type(e).__name__) not in self.shown:
                self.shown.add((key, type(e).__name__))
                print(f"  [{key}] {row.name} failed:\n" + traceback.format_exc(limit=8), flush=True)
            return None

    def method(self, row, name, fn, reference=None, rep_ms=40, graph=True):
        """Check fn()'s output against the fp32 reference, time it, then time its CUDA-graph replay."""
        def first():
            with torch.no_grad():
                out = fn()
                if reference is not None:
                    row.err[name] = rel_err(out, reference)
            return True

        if not self.attempt(row, name, first):
            return
        with torch.no_grad():
            self.attempt(row, name, lambda: row.ms.__setitem__(name, self.time(fn, rep_ms)))
            if not graph:
                return
            if self.device.type != "cuda":
                row.ms[name + ".graph"] = "skip: no CUDA"
                return

            def replay():
                from archc_kernels.graphs import capture

                g, _ = capture(fn)
                row.ms[name + ".graph"] = self.time(g.replay, rep_ms)

            self.attempt(row, name + ".graph", replay)

    # results ------------------------------------------------------------------------------------------
    def add(self, row):
        self.rows.append(row)
        cells = "  ".join(f"{m} {row.median(m):.3f}" for m in ("fused", "fused.graph", "eager", "eager.graph", "cudnn")
                          if row.median(m) is not None)
        fails = [f"{k} {v}" for k, v in row.ms.items() if isinstance(v, str) and v.startswith("error")]
        print(f"  {row.section:8s} {row.name:28s} {row.dtype} N={row.batch:<4d} {cells} ms"
              f"{'  FAIL' if row.failed() else ''}{'  ' + '; '.join(fails) if fails else ''}"
              f"  ({self.budget.elapsed():.0f} s)", flush=True)
        self.save()

    def save(self):
        if self.args.out is None:
            return
        payload = {"environment": self.info, "peaks": PEAKS, "tests": self.tests, "notes": self.notes,
                   "rows": [asdict(r) for r in self.rows]}
        write_atomic(self.args.out / "gpu_check.json", json.dumps(payload, indent=1, default=str) + "\n")
        write_atomic(self.args.out / "gpu_check.md", report(self))

    def fits(self, seconds):
        """Whether a step estimated to take `seconds` fits in the budget, keeping a reserve to write results."""
        return self.budget.left() > seconds + 10


def rel_err(out, ref):
    out = out[0] if isinstance(out, tuple) else out
    return ((out.float() - ref.float()).norm() / ref.float().norm()).item()


def randn(shape, dtype, device, channels_last=True):
    t = torch.randn(*shape, device=device).to(dtype)
    return t.contiguous(memory_format=torch.channels_last) if channels_last and t.dim() == 4 else t


def floor_ms(flops, nbytes):
    return max(flops / PEAKS["flops"], nbytes / PEAKS["bytes"]) * 1e3


def conv_row(check, section, name, conv, batch, dtype_name, alt=None):
    """One fused conv against eager cuDNN conv + BN + act and cuDNN's fused conv + bias + (add +) ReLU."""
    dtype, device = DTYPES[dtype_name], check.device
    flops, nbytes = conv.cost(batch, torch.finfo(dtype).bits // 8)
    row = Row(section, name, conv.label(), batch, dtype_name, flops / 1e9, nbytes / 1e6, floor_ms(flops, nbytes))
    eager = EagerConv(conv).to(device)
    oh, ow = conv.out_hw
    x = randn((batch, conv.cin, *conv.hw), dtype, device)
    z = randn((batch, conv.cout, oh, ow), dtype, device) if conv.residual else None
    with torch.no_grad():
        expect = eager(x.float(), None if z is None else z.float())
    fused = eager.fused(dtype)
    cudnn = eager.cudnn(dtype) if device.type == "cuda" else None
    eager = eager.to(dtype).to(memory_format=torch.channels_last)
    row.kernel = check.attempt(row, "route", lambda: fused.route(x, z)[0]) or ""
    check.method(row, "fused", lambda: fused(x, z), expect)
    row.kernel = fused.describe() or row.kernel  # with the autotuner's pick
    if alt is not None:
        module = importlib.import_module(f"archc_kernels.triton.{alt}")
        c = conv
        plan = module.plan(x, fused.weight, fused.scale, fused.shift, stride=c.stride, padding=c.padding,
                           dilation=c.dilation, groups=c.groups, act=c.act, residual=z)
        row.note = f"alt = {alt}"
        check.method(row, "alt", lambda: plan(x, z), expect)
    check.method(row, "eager", lambda: eager(x, z), expect)
    if cudnn is not None:
        check.method(row, "cudnn", lambda: cudnn(x, z), expect)
    check.add(row)
    return row, (eager, (x, z))


def model_row(check, spec_name, recorded, batch, dtype_name):
    """archc.fuse(archc.build(spec)) against the eager archc module, both channels_last in dtype."""
    import archc

    dtype, device = DTYPES[dtype_name], check.device
    elem = torch.finfo(dtype).bits // 8
    flops, nbytes = 2 * recorded.macs * batch, (recorded.values_per_image * batch + recorded.params) * elem
    row = Row("model", spec_name, f"archc.fuse({SPECS[spec_name]})", batch, dtype_name, flops / 1e9, nbytes / 1e6,
              floor_ms(flops, nbytes))
    torch.manual_seed(0)
    model = archc.build(SPECS[spec_name]).eval().to(device)
    x = torch.randn(batch, *recorded.input_shape, device=device)
    with torch.no_grad():
        expect = model(x)
        fused = archc.fuse(model).to(dtype=dtype)  # BN folded from the fp32 parameters, then cast
    eager = model.to(dtype=dtype, memory_format=torch.channels_last)
    xd = x.to(dtype).contiguous(memory_format=torch.channels_last)
    rep = 50 if check.rehearse else 400
    with reference_in_rehearsal(check):  # the interpreter would take hours over a whole model
        check.method(row, "fused", lambda: fused(xd), expect, rep_ms=rep)
        check.method(row, "eager", lambda: eager(xd), expect, rep_ms=rep)
    if isinstance(row.median("fused"), float):
        row.note = f"{batch / row.median('fused') * 1e3:.0f} img/s fused"
    check.add(row)
    return row, (eager, (xd,))


class reference_in_rehearsal:
    """In a rehearsal, ARCHC_KERNELS=reference for the duration (whole models are too big for the interpreter)."""

    def __init__(self, check):
        self.on = check.rehearse

    def __enter__(self):
        if self.on:
            os.environ["ARCHC_KERNELS"] = "reference"

    def __exit__(self, *exc):
        if self.on:
            os.environ["ARCHC_KERNELS"] = "triton"


def block_row(check, name, convs, batch, dtype_name):
    dtype, device = DTYPES[dtype_name], check.device
    elem = torch.finfo(dtype).bits // 8
    flops, nbytes = (sum(v) for v in zip(*(c.cost(batch, elem) for c in convs.values())))
    if check.rehearse:
        convs = {k: shrink(c) for k, c in convs.items()}
    block = EagerBlock(convs).to(device)
    c1 = convs["conv1"]
    row = Row("block", name, f"{c1.cin}->{convs['conv3'].cout} @{c1.hw[0]}", batch, dtype_name, flops / 1e9,
              nbytes / 1e6, floor_ms(flops, nbytes))
    x = randn((batch, c1.cin, *c1.hw), dtype, device)
    with torch.no_grad():
        expect = block(x.float())
    fused = block.fused(dtype)
    eager = block.to(dtype).to(memory_format=torch.channels_last)
    check.method(row, "fused", lambda: fused(x), expect)
    row.kernel = " | ".join(f"{k}: {getattr(fused, k).describe()}" for k in ("conv1", "conv2", "conv3"))
    check.method(row, "eager", lambda: eager(x), expect)
    check.add(row)
    return row, (eager, (x,))


# ------------------------------------------------------------------------------------------------- warm-up

def _warm(job):
    """In a worker process: launch every autotuning config of the job's kernels once (fills Triton's disk cache)."""
    conv, dtype_name, kernels, device = job
    dtype = DTYPES[dtype_name]
    eager = EagerConv(conv)
    x = randn((1, conv.cin, *conv.hw), dtype, device)
    oh, ow = conv.out_hw
    z = randn((1, conv.cout, oh, ow), dtype, device) if conv.residual else None
    weight, _, shift = eager.folded(dtype)
    weight, shift = weight.to(device), shift.to(device)
    done = 0
    for name in kernels:
        module = importlib.import_module(f"archc_kernels.triton.{name}")
        for config in module.CONFIGS:
            module.plan(x, weight, None, shift, stride=conv.stride, padding=conv.padding, dilation=conv.dilation,
                        groups=conv.groups, act=conv.act, residual=z, config=config)(x, z)
            done += 1
    if device == "cuda":
        torch.cuda.synchronize()
    return done


def warm_jobs(check, convs_by_dtype):
    """One job per distinct Triton specialisation: (conv, dtype, kernel names, device)."""
    jobs, seen = [], set()
    for dtype_name, convs in convs_by_dtype.items():
        for conv, alt in convs:
            dtype = DTYPES[dtype_name]
            x = randn((1, conv.cin, *conv.hw), dtype, check.device)
            z = randn((1, conv.cout, *conv.out_hw), dtype, check.device) if conv.residual else None
            op = EagerConv(conv).to(check.device).fused(dtype)
            kernel = op.route(x, z)[0]
            if not kernel.startswith("triton."):
                continue
            names = [kernel.removeprefix("triton.")] + ([alt] if alt else [])
            for name in names:
                module = importlib.import_module(f"archc_kernels.triton.{name}")
                plan = module.plan(x, op.weight, None, op.shift, stride=conv.stride, padding=conv.padding,
                                   dilation=conv.dilation, groups=conv.groups, act=conv.act, residual=z,
                                   config=module.DEFAULT)
                signature = (name, dtype_name, tuple(sorted(plan.flags.items())),
                             tuple((v == 1, v % 16 == 0) for v in plan.sizes))
                if signature not in seen:
                    seen.add(signature)
                    jobs.append((conv, dtype_name, [name], check.device.type))
    return jobs


def warm(check, jobs, seconds):
    """Run the jobs on all cores, for at most `seconds`; what is not done then compiles when first timed."""
    if not jobs:
        return
    workers = min(len(jobs), os.cpu_count() or 1, 2 if check.rehearse else 16)
    start = time.monotonic()
    pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    futures = [pool.submit(_warm, job) for job in jobs]
    done, pending = concurrent.futures.wait(futures, timeout=seconds)
    compiled = sum(f.result() for f in done if f.exception() is None)
    errors = [repr(f.exception())[:200] for f in done if f.exception() is not None]
    for f in pending:
        f.cancel()
    for process in list(getattr(pool, "_processes", {}).values()):  # stop compiles still running
        process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    note = (f"warm-up: {len(done)}/{len(jobs)} specialisations, {compiled} kernel configs launched on {workers} "
            f"processes in {time.monotonic() - start:.0f} s" + (f"; errors: {errors[:3]}" if errors else ""))
    check.notes.append(note)
    print(note, flush=True)


# ------------------------------------------------------------------------------------------------- phases

def ceilings(check):
    """Measure the copy bandwidth and the fp16 matrix rate the floors are computed from."""
    if check.device.type != "cuda":
        check.notes.append("ceilings: not measured (no CUDA); floors use the H200 figures")
        return
    import triton.testing

    src = torch.randn(2 ** 29 // 2, device="cuda", dtype=torch.float16)  # 512 MiB
    dst = torch.empty_like(src)
    ms = triton.testing.do_bench(lambda: dst.copy_(src), warmup=10, rep=100, return_mode="median")
    PEAKS["bytes"] = 2 * src.numel() * 2 / (ms * 1e-3)
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.float16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.float16)
    ms = triton.testing.do_bench(lambda: a @ b, warmup=10, rep=100, return_mode="median")
    PEAKS["flops"] = 2 * 8192 ** 3 / (ms * 1e-3)
    check.notes.append(f"ceilings measured: copy {PEAKS['bytes'] / 1e12:.2f} TB/s (read + write, 512 MiB fp16), "
                       f"fp16 matmul 8192^3 {PEAKS['flops'] / 1e12:.0f} TFLOP/s (random data)")
    print(check.notes[-1], flush=True)


def run_tests(check, seconds):
    """tests/kernels on this machine (CUDA when there is one), in parallel, for at most `seconds`."""
    workers = 2 if check.rehearse else min(16, os.cpu_count() or 1)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", str(workers), "tests/kernels"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    print(f"$ {' '.join(cmd)}   (limit {seconds:.0f} s)", flush=True)
    log = check.args.out / "kernel_tests.log" if check.args.out else None
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=seconds)
        text, passed = done.stdout + done.stderr, done.returncode == 0
        lines = text.strip().splitlines()
        summary = lines[-1] if lines else f"exit {done.returncode}"
    except subprocess.TimeoutExpired as e:
        text = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        passed, summary = False, f"timed out after {seconds:.0f} s"
    if log:
        write_atomic(log, text)
    check.tests = {"ran": True, "passed": passed, "summary": summary}
    print("\n".join(text.strip().splitlines()[-15:]), flush=True)
    check.save()


# method -> (torch.compile mode, seconds its build is assumed to take; a build cannot be stopped once begun).
# Seen on the H200 (16 cores), ResNet-50: default 18 s, max-autotune-no-cudagraphs 325 s.
COMPILE_MODES = {"compile": ("default", 60), "compile_max": ("max-autotune-no-cudagraphs", 400)}


def time_compiled(check, row, eager, inputs, method):
    import torch._dynamo

    mode = COMPILE_MODES[method][0]

    torch._dynamo.reset()
    start = time.monotonic()

    def build():
        compiled = torch.compile(eager, mode=mode, dynamic=False)
        with torch.no_grad():
            compiled(*inputs)
        if check.device.type == "cuda":
            torch.cuda.synchronize()
        return compiled

    compiled = check.attempt(row, method, build)
    if compiled is None:
        return
    row.note += f"; compile {mode!r} built in {time.monotonic() - start:.0f} s"
    check.method(row, method, lambda: compiled(*inputs), rep_ms=400 if row.section == "model" else 40)
    check.save()


# ------------------------------------------------------------------------------------------------- report

def fmt(value):
    if isinstance(value, list):
        return f"{value[0]:.3f} ({value[1]:.3f}..{value[2]:.3f})"
    return "-" if value is None else str(value)


def fmt_ratio(value):
    return "-" if value is None else f"{value:.2f}x"


def report(check) -> str:
    rows = check.rows
    head = ["section", "name", "shape", "N", "dtype", "GFLOP", "floor ms", "fused ms (p20..p80)", "fused graph ms",
            "floor/fused graph", "eager ms", "eager graph ms", "cudnn ms", "cudnn graph ms", "alt graph ms",
            "compile ms", "compile max-autotune ms", "eager/fused", "eager/fused graph", "cudnn/fused graph",
            "rel err fused (eager)", "kernel", "note"]
    table = []
    for r in rows:
        graph = r.median("fused.graph")
        err = "-" if "fused" not in r.err else f"{r.err['fused']:.1e}" + (" FAIL" if r.failed() else "")
        err += f" ({r.err['eager']:.1e})" if "eager" in r.err else ""
        if "alt" in r.err:
            err += f"; alt {r.err['alt']:.1e}"
        table.append([r.section, r.name, r.shape, r.batch, r.dtype, f"{r.gflop:.2f}", f"{r.floor_ms:.3f}",
                      fmt(r.ms.get("fused")), fmt(r.ms.get("fused.graph")),
                      f"{r.floor_ms / graph:.0%}" if graph else "-", fmt(r.ms.get("eager")),
                      fmt(r.ms.get("eager.graph")), fmt(r.ms.get("cudnn")), fmt(r.ms.get("cudnn.graph")),
                      fmt(r.ms.get("alt.graph")), fmt(r.ms.get("compile")), fmt(r.ms.get("compile_max")),
                      fmt_ratio(r.ratio("eager")),
                      fmt_ratio(r.ratio("eager", graph=True)), fmt_ratio(r.ratio("cudnn", graph=True)), err,
                      r.kernel, r.note])
    failed = [f"{r.name} {r.dtype} N={r.batch}" for r in rows if r.failed()]
    info = check.info
    return "\n".join([
        f"# archc_kernels GPU check, {info['date']}", "",
        "```", json.dumps(info, indent=1), "```", "",
        *[f"- {n}" for n in check.notes], "",
        f"Tests: {check.tests.get('summary', 'not run')}" + ("" if check.tests.get("passed", True) else " (FAILED)"),
        f"Floor = max(FLOPs / {PEAKS['flops'] / 1e12:.0f} TFLOP/s, bytes / {PEAKS['bytes'] / 1e12:.2f} TB/s). "
        "Ratios are baseline ms / fused ms (> 1: fused is faster); 'graph' columns are CUDA-graph replays (GPU "
        "time alone). Times: median (20th..80th percentile) ms.", "",
        markdown_table(head, table), "",
        summary(rows), "",
        f"Failed correctness checks: {', '.join(failed) if failed else 'none'}",
        f"Wall time: {check.budget.elapsed():.0f} s of a {check.budget.seconds:.0f} s budget.", ""])


def summary(rows) -> str:
    lines = ["| section | dtype | N | rows | eager/fused | eager/fused graph | min eager/fused graph | "
             "cudnn/fused graph | alt/fused graph |", "|---|---|---|---|---|---|---|---|---|"]
    for key in sorted({(r.section, r.dtype, r.batch) for r in rows}, key=lambda k: (k[0], k[1], -k[2])):
        picked = [r for r in rows if (r.section, r.dtype, r.batch) == key]
        graph = [r.ratio("eager", graph=True) for r in picked]
        values = [geomean([r.ratio("eager") for r in picked]), geomean(graph),
                  min((g for g in graph if g), default=None), geomean([r.ratio("cudnn", graph=True) for r in picked]),
                  geomean([r.ratio("alt", graph=True) for r in picked])]
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {len(picked)} | " + " | ".join(map(fmt_ratio, values)) + " |")

    def target(label, rows_, baseline, need=None, floor=None):
        """need None: a figure to report, no verdict."""
        for graph in (False, True):
            ratios = [r.ratio(baseline, graph=graph) for r in rows_]
            value, low = geomean(ratios), min((v for v in ratios if v), default=None)
            met = value is not None and need is not None and value >= need and (floor is None or (low or 0) >= floor)
            verdict = "not measured" if value is None else "reported" if need is None else "MET" if met else "not met"
            lines.append(f"- {label} ({'graph replay' if graph else 'end to end'}): geomean {fmt_ratio(value)}"
                         + (f", min {fmt_ratio(low)}" if floor else "") + f" over {sum(v is not None for v in ratios)}"
                         f" rows -> {verdict}")

    lines += ["", "Targets:"]
    conv = [r for r in rows if r.section == "conv" and r.dtype == "fp16" and r.batch == 128]
    grouped = [r for r in rows if r.section == "grouped" and r.dtype == "fp16" and " g" in r.shape]
    models = [r for r in rows if r.section == "model" and r.dtype == "fp16"]
    target("ResNet-50 convs fp16 N=128 vs eager cuDNN conv+BN+act, >= 1.0x, none below 0.8x", conv, "eager", 1.0, 0.8)
    target("ResNeXt-50 grouped convs vs eager cuDNN grouped conv+BN+ReLU, >= 1.2x", grouped, "eager", 1.2)
    target("whole fused models vs eager channels_last cuDNN, >= 1.0x", models, "eager", 1.0)
    if any(r.median("compile") for r in models):
        target("whole fused models vs torch.compile(mode='default') of the eager module", models, "compile")
    if any(r.median("compile_max") for r in models):
        target("whole fused models vs torch.compile(mode='max-autotune-no-cudagraphs')", models, "compile_max")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- main

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, help="folder for gpu_check.md / .json / kernel_tests.log (default: none)")
    p.add_argument("--budget", type=float, default=400.0, help="seconds for the whole run (default 400)")
    p.add_argument("--rehearse", action="store_true",
                   help="run every phase on the CPU: Triton's interpreter, batch 1, maps of at most 4x4, fp32 and "
                        "fp16, few rows (times mean nothing)")
    p.add_argument("--skip", default="", help="comma-separated phases to leave out (conv, model, grouped, block, "
                                              "bf16, n32, tests, compile, warm)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.rehearse:
        os.environ["TRITON_INTERPRET"] = "1"
        os.environ["ARCHC_KERNELS"] = "triton"
    elif not torch.cuda.is_available():
        print(f"gpu_check: no CUDA device visible to torch {torch.__version__}; run it on a machine with an NVIDIA "
              "GPU, or pass --rehearse to run it on the CPU.", file=sys.stderr)
        return 2
    torch.backends.cudnn.allow_tf32 = False  # the fp32 references exact; fp16/bf16 timings are unaffected
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    check = Check(args)
    skip = set(filter(None, args.skip.split(",")))
    print("gpu_check:", json.dumps(check.info), flush=True)
    check.save()

    recorded = {}
    for name, spec in SPECS.items():  # without archc (say, jsonschema missing) the spec-driven rows are skipped
        try:
            recorded[name] = record(spec)
        except Exception:
            check.notes.append(f"could not record {spec}: {traceback.format_exc(limit=2).splitlines()[-1]}")
            print(traceback.format_exc(), flush=True)
    empty = Recorded({}, 0, 0, 0, [])
    resnet = distinct(recorded.get("resnet50", empty).convs)
    resnext = distinct(recorded.get("resnext50_32x4d", empty).convs)
    grouped = {c: n for c, n in resnext.items() if c.groups > 1}
    depthwise = {Conv(c, c, (3, 3), (s, s), (1, 1), (1, 1), c, "relu6", False, (hw, hw)): [f"mobilenet_v2 dw{c} s{s}"]
                 for c, s, hw in MOBILENET_V2_DEPTHWISE}
    fp16, bf16, big, small = "fp16", "bf16", 128, 32
    if args.rehearse:  # every phase, few rows, tiny maps
        resnet = {shrink(c): n for c, n in list(resnet.items())[:4]}
        grouped = {shrink(c): n for c, n in list(grouped.items())[:2]}
        depthwise = {shrink(c): n for c, n in list(depthwise.items())[:2]}
        fp16, bf16, big, small = "fp16", "fp32", 1, 2
    check.notes.append(f"shapes: {len(resnet)} distinct convs of {SPECS['resnet50']}, {len(grouped)} grouped of "
                       f"{SPECS['resnext50_32x4d']}, {len(depthwise)} MobileNetV2 depthwise")
    ceilings(check)

    if "warm" not in skip:
        plans = {fp16: [(c, None) for c in resnet] + [(c, "conv") for c in grouped] + [(c, None) for c in depthwise]
                 + ([] if args.rehearse else [(c, None) for c in resnext]),
                 bf16: [(c, None) for c in resnet]}
        jobs = warm_jobs(check, plans)
        warm(check, jobs[:3] if args.rehearse else jobs, min(150.0, check.budget.left() * 0.35))

    compilable = []

    def compile_targets():  # whole models; a rehearsal compiles one conv (a model takes minutes on 2 CPUs)
        return compilable[:1] if args.rehearse else [c for c in compilable if c[0].section == "model"]

    def convs(section, cases, dtype_name, batch, alt=None, estimate=2.0):
        for conv, names in cases.items():
            if not check.fits(estimate):
                check.notes.append(f"budget: stopped {section} {dtype_name} N={batch} before {names[0]}")
                return
            label = names[0] + (f" (+{len(names) - 1})" if len(names) > 1 else "")
            result = conv_row(check, section, label, conv, batch, dtype_name, alt)
            compilable.append(result)

    phases = [
        ("conv", lambda: convs("conv", resnet, fp16, big)),
        ("model", lambda: [compilable.append(model_row(check, name, recorded[name], big, fp16))
                           for name in recorded if check.fits(30)]),
        ("grouped", lambda: (convs("grouped", grouped, fp16, big, alt="conv"), convs("grouped", depthwise, fp16, big))),
        ("block", lambda: [block_row(check, name, block_convs(recorded, name), big, fp16)
                           for name in BLOCKS if name.split(".")[0] in recorded and check.fits(5)]),
        ("bf16", lambda: convs("conv", resnet, bf16, big)),
        ("n32", lambda: convs("conv", resnet, fp16, small)),
        ("tests", lambda: run_tests(check, min(150.0, check.budget.left() - 20)) if check.fits(40) else None),
        ("compile", lambda: [time_compiled(check, row, eager, inputs, method)
                             for method, (_, estimate) in COMPILE_MODES.items()
                             for row, (eager, inputs) in compile_targets() if check.fits(estimate)]),
    ]
    for name, phase in phases:
        if name in skip:
            continue
        print(f"== {name} ({check.budget.elapsed():.0f} s)", flush=True)
        try:
            phase()
        except Exception:  # a phase that breaks loses its own rows only
            check.notes.append(f"phase {name} failed: {traceback.format_exc(limit=3).splitlines()[-1]}")
            print(traceback.format_exc(), flush=True)
        check.save()
    text = report(check)
    print(text, flush=True)
    return 0 if check.tests.get("passed", True) and not any(r.failed() for r in check.rows) else 1


def block_convs(recorded, name):
    """{"conv1": Conv, ...} of block `spec.layerN.i`, from the spec's recorded convs."""
    spec, prefix = name.split(".", 1)
    found = {k[len(prefix) + 1:].split(".")[0]: c for k, c in recorded[spec].convs.items()
             if k.startswith(prefix + ".")}
    return {k: found[k] for k in ("conv1", "conv2", "conv3", "downsample") if k in found}


if __name__ == "__main__":
    sys.exit(main())
