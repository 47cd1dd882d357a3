"""Latency, measured one way everywhere: `archc bench` and the scripts under bench/ (through bench/_harness.py) use
this module's timing core.

`measure` runs several callables on one input interleaved (a, b, c, a, b, c, ...) after warm-up runs, so that
machine noise hits all alike, synchronising CUDA around each call; `spread` gives the median and the 20th and 80th
percentiles. `bench(spec, ...)` times a spec's module three ways at each batch size — eager (`model.eval()`), eager
converted to channels_last, and `archc.fuse(model)` — on an NCHW input, under `torch.inference_mode()`.
"""

from __future__ import annotations

import copy
import datetime
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

from archc.errors import ArchcError

DTYPES = ("float32", "float16", "bfloat16")
VARIANTS = ("eager", "eager_channels_last", "fused")


def environment(**extra) -> dict:
    """Date, machine and library versions (torch, triton and the GPU when there is one)."""
    info = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs"}
    try:
        import torch

        info["torch"] = torch.__version__
        info["threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name()
            info["sm"] = "{}.{}".format(*torch.cuda.get_device_capability())
            info["cuda"] = torch.version.cuda
            info["cudnn"] = torch.backends.cudnn.version()
    except ImportError:
        pass
    try:
        import triton

        info["triton"] = triton.__version__
    except Exception as e:  # not installed, or fails to load: say so
        info["triton"] = f"unavailable ({type(e).__name__})"
    return {**info, **extra}


class Budget:
    """Seconds left of a wall-clock budget that started when this was made."""

    def __init__(self, seconds: float):
        self.start = time.monotonic()
        self.seconds = seconds

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return self.seconds - self.elapsed()


def spread(samples) -> tuple[float, float, float]:
    """(median, 20th percentile, 80th percentile) of the samples."""
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0], ordered[0], ordered[0]
    q = statistics.quantiles(ordered, n=5, method="inclusive")
    return statistics.median(ordered), q[0], q[3]


def geomean(values):
    values = [v for v in values if v is not None and v > 0]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


def markdown_table(head: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def measure(fns: dict[str, Callable], x, runs: int = 11, warmup: int = 2,
            progress: Callable[[int, int], None] | None = None) -> dict[str, list[float]]:
    """Seconds per call of each fn(x): `warmup` untimed rounds, then `runs` timed rounds, interleaved."""
    import torch

    sync = torch.cuda.synchronize if getattr(x, "is_cuda", False) else (lambda: None)
    for _ in range(warmup):
        for fn in fns.values():
            fn(x)
    sync()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(runs):
        for name, fn in fns.items():
            sync()
            t = time.perf_counter()
            fn(x)
            sync()
            times[name].append(time.perf_counter() - t)
        if progress:
            progress(r + 1, runs)
    return times


def _summary(samples: list[float], batch: int) -> dict:
    median, p20, p80 = spread(samples)
    return {"median_ms": median * 1e3, "p20_ms": p20 * 1e3, "p80_ms": p80 * 1e3, "min_ms": min(samples) * 1e3,
            "max_ms": max(samples) * 1e3, "images_per_s": batch / median, "runs": len(samples)}


def bench(spec, device: str = "cpu", batches=(1, 8), dtype: str = "float32", runs: int = 11, warmup: int = 2,
          progress: Callable[[str], None] | None = None, **params) -> dict:
    """Eager vs eager channels_last vs archc.fuse latency of a spec (path or Spec) at each batch size."""
    import torch

    import archc

    if dtype not in DTYPES:
        raise ArchcError(f"--dtype {dtype}: one of {', '.join(DTYPES)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ArchcError("--device cuda: no CUDA device here (torch.cuda.is_available() is False)")
    if device not in ("cpu", "cuda"):
        raise ArchcError(f"--device {device}: cpu or cuda")
    if runs < 1 or warmup < 0 or not batches or min(batches) < 1:
        raise ArchcError("--runs at least 1, --warmup at least 0, batch sizes at least 1")
    torch.manual_seed(0)
    model = archc.build(spec, **params).eval()
    variants = {"eager": model, "eager_channels_last": copy.deepcopy(model).to(memory_format=torch.channels_last),
                "fused": archc.fuse(model)}
    kind = getattr(torch, dtype)
    variants = {name: m.to(device=device, dtype=kind) for name, m in variants.items()}
    shape = model.analysis.input_shape
    rows = []
    for batch in batches:
        x = torch.randn(batch, *shape, device=device, dtype=kind)
        label = f"{model.name} batch {batch}"
        with torch.inference_mode():
            want, got = variants["eager"](x), variants["fused"](x)
            error = ((got.double() - want.double()).norm() / want.double().norm().clamp_min(1e-30)).item()
            times = measure(variants, x, runs, warmup,
                            progress and (lambda r, n, label=label: progress(f"{label}: run {r}/{n}")))
        summary = {name: _summary(ts, batch) for name, ts in times.items()}
        eager, cl, fused = (summary[v]["median_ms"] for v in VARIANTS)
        rows.append({"batch": batch, "variants": summary, "rel_error_fused": error,
                     "speedup": {"fused_vs_eager": eager / fused, "fused_vs_eager_channels_last": cl / fused,
                                 "eager_channels_last_vs_eager": eager / cl}})
        if progress:
            progress(f"{label}: eager {eager:.1f} ms, channels_last {cl:.1f} ms, fused {fused:.1f} ms "
                     f"({eager / fused:.2f}x)\n")
    return {"name": model.name, "file": model.analysis.spec.file, "device": device, "dtype": dtype, "runs": runs,
            "warmup": warmup, "input": "NCHW", "environment": environment(), "batches": rows}


def table(result: dict) -> str:
    """The result as a markdown table, with the conditions above it."""
    env = result["environment"]
    where = env.get("gpu", env["machine"]) if result["device"] == "cuda" else env["machine"]
    head = ["batch"] + [f"{v} ms median (p20..p80)" for v in VARIANTS] + ["fused images/s", "fused vs eager",
                                                                           "fused vs channels_last", "rel. error"]
    rows = []
    for b in result["batches"]:
        v = b["variants"]
        rows.append([b["batch"], *(f"{v[n]['median_ms']:.2f} ({v[n]['p20_ms']:.2f}..{v[n]['p80_ms']:.2f})"
                                   for n in VARIANTS),
                     f"{v['fused']['images_per_s']:.1f}", f"{b['speedup']['fused_vs_eager']:.2f}x",
                     f"{b['speedup']['fused_vs_eager_channels_last']:.2f}x", f"{b['rel_error_fused']:.1e}"])
    conditions = (f"{result['name']} ({result['file']}) on {result['device']} ({where}), {result['dtype']}, "
                  f"{result['input']} input, {result['runs']} interleaved runs after {result['warmup']} warm-up "
                  f"rounds; torch {env.get('torch')}, {env.get('threads', '?')} threads, {env['date']}")
    return conditions + "\n\n" + markdown_table(head, rows)


def stderr_progress(message: str) -> None:
    """Progress on stderr: one line rewritten in place on a terminal; finished lines only otherwise."""
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K" + message)
    elif message.endswith("\n"):
        sys.stderr.write(message)
    sys.stderr.flush()
