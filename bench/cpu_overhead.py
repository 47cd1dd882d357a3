"""Where archc.fuse's CPU forward loses time outside the convolutions' arithmetic, and why
bench/cpu_inference.py pauses between engines:

1. the fixed cost of one call to oneDNN's fused convolution as PyTorch exposes it
   (``torch.ops.mkldnn._convolution_pointwise``: it builds oneDNN's primitive descriptor on every call), measured
   on a convolution with almost no arithmetic (1x16x7x7, 1x1, 16 channels) next to the same product as torch.mm;
   times the number of such calls in each generated forward, against that forward's time;
2. the CPU each engine burns after a call while its caller sleeps (threads spinning for the next call): on a
   2-core machine that time is taken from whatever runs next.

Usage: python bench/cpu_overhead.py [--specs googlenet ...] [--batch 1] [--out bench/results/cpu_overhead]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import ROOT, environment, markdown_table, write_atomic  # noqa: E402
from cpu_inference import onnxruntime_session  # noqa: E402


def per_call(fns: dict, rounds: int) -> dict:
    """Median µs per call of each function, interleaved."""
    times = {k: [] for k in fns}
    for f in fns.values():
        f()
    for _ in range(rounds):
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) * 1e6 for k, v in times.items()}


def call_cost(rounds: int, chunks: int = 5) -> dict:
    """µs per call of oneDNN's op and of torch.mm on the same tiny product, and their difference: medians over
    `chunks` runs of rounds/chunks interleaved calls each (this machine's speed drifts: the spread shows it)."""
    import torch

    from archc_kernels import cpu

    x = torch.randn(1, 16, 7, 7).contiguous(memory_format=torch.channels_last)
    w, b = torch.randn(16, 16, 1, 1), torch.randn(16)
    packed = cpu.Packed(x.shape, x.dtype, w, None, b, act="none")
    x2, w2 = x.permute(0, 2, 3, 1).reshape(-1, 16), w.view(16, 16).t().contiguous()
    runs = [per_call({"onednn": lambda: packed(x), "mm": lambda: torch.mm(x2, w2)}, rounds // chunks)
            for _ in range(chunks)]
    fixed = sorted(r["onednn"] - r["mm"] for r in runs)
    return {"onednn": statistics.median(r["onednn"] for r in runs), "mm": statistics.median(r["mm"] for r in runs),
            "fixed": statistics.median(fixed), "fixed_range": (fixed[0], fixed[-1]), "chunks": chunks}


def onednn_calls(fused, x) -> int:
    import torch
    from torch.profiler import profile

    with torch.inference_mode(), profile() as prof:
        fused(x)
    return sum(e.count for e in prof.key_averages() if e.key.startswith("mkldnn::_convolution_pointwise"))


def spin(fns: dict, sleep: float = 0.2) -> dict:
    """ms of this process's CPU time while it sleeps `sleep` s right after a call, median of 5."""
    out = {}
    for k, f in fns.items():
        f()
        got = []
        for _ in range(5):
            f()
            c = time.process_time()
            time.sleep(sleep)
            got.append((time.process_time() - c) * 1e3)
        out[k] = statistics.median(got)
    return out


def measure_spec(name: str, batch: int, threads: int, fixed: float) -> tuple[list, list]:
    """One spec's row of each table: its oneDNN calls and their fixed cost; the CPU burnt after a call."""
    import torch

    import archc

    model = archc.build(name).eval()
    x = torch.randn(batch, *model.analysis.input_shape)
    fused = archc.fuse(model)
    calls = onednn_calls(fused, x)
    with torch.inference_mode():
        ms = per_call({"fused": lambda: fused(x)}, 10)["fused"] / 1e3
    fns = {"archc.fuse": lambda: fused(x), "eager": lambda: model(x)}
    try:
        ort_run = onnxruntime_session(model, x, threads)  # as bench/cpu_inference.py runs it
        fns["onnxruntime"] = lambda: ort_run(x)
    except ImportError:
        pass
    with torch.inference_mode():
        burnt = spin(fns)
    row = [name, batch, calls, f"{ms:.1f}", f"{calls * fixed / 1e3:.1f}", f"{100 * calls * fixed / 1e3 / ms:.0f}%"]
    return row, [name, batch] + [f"{burnt[k]:.1f}" if k in burnt else "—"
                                 for k in ("archc.fuse", "eager", "onnxruntime")]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--specs", nargs="+", default=["resnet50", "resnext50_32x4d", "densenet121", "googlenet"])
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2000)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "cpu_overhead"))
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    cost = call_cost(args.rounds)
    fixed = cost["fixed"]
    rows, spins = [], []
    for name in args.specs:
        row, burnt = measure_spec(name, args.batch, args.threads, fixed)
        rows.append(row)
        spins.append(burnt)
        print(row, burnt, flush=True)
    env = environment(threads=args.threads)
    text = ("# Time outside the arithmetic: oneDNN's cost per call, and threads spinning after a call\n\n"
            + ", ".join(f"{k} {v}" for k, v in env.items()) + "\n\n"
            f"One call of oneDNN's fused convolution op on a 1x16x7x7 input (1x1, 16 channels): "
            f"{cost['onednn']:.1f} µs; the same product as torch.mm: {cost['mm']:.1f} µs; fixed cost per call: "
            f"{fixed:.1f} µs ({cost['fixed_range'][0]:.1f}..{cost['fixed_range'][1]:.1f} µs over {cost['chunks']} "
            f"runs of {args.rounds // cost['chunks']} interleaved calls each; medians).\n\n"
            + markdown_table(["spec", "batch", "oneDNN calls per forward", "archc.fuse forward ms",
                              "calls x fixed cost ms", "share of the forward"], rows)
            + "\n\nCPU time (ms) the process burns in the 200 ms after a call while its caller sleeps (median of "
            "5): threads spinning, waiting for the next call.\n\n"
            + markdown_table(["spec", "batch", "archc.fuse", "eager", "onnxruntime"], spins) + "\n")
    write_atomic(Path(args.out).with_suffix(".md"), text)
    print(text)


if __name__ == "__main__":
    main()
