"""What a new input size costs archc.fuse's CPU forward: the first call at a new kind of input infers every shape
for it, plans its memory, packs every convolution's weight for oneDNN, generates and compiles the forward, and
runs it once checked against the plan. Later calls of that kind run the generated forward alone.

For each spec: the time of the first call at each of several new sizes (planning included) against the median
of later calls at the same size, at batch 1, float32, 2 threads; and how much of the first call is planning
(Forward's construction, timed on its own). Usage: python bench/plan_cost.py [--out bench/results/plan_cost.md]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SPECS = [("resnet50", "resnet", {"variant": "resnet50"}, [160, 192, 256]),
         ("densenet121", "densenet", {}, [160, 192, 256]),
         ("googlenet", "googlenet", {}, [160, 192, 256]),
         ("mobilenet_v2", "mobilenet_v2", {}, [160, 192, 256])]


def measure(path, params, sizes, repeats=5):
    import torch

    import archc
    from archc.backends.torch.cpu import forward as generated

    model = archc.build(path, **params).eval()
    fused = archc.fuse(model)
    rows = []
    for s in sizes:
        x = torch.randn(1, 3, s, s)
        with torch.inference_mode():
            t0 = time.perf_counter()
            fused(x)
            first = time.perf_counter() - t0
            later = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                fused(x)
                later.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            generated.Forward(fused, x)
            plan = time.perf_counter() - t0
        rows.append((s, first, statistics.median(later), plan, max(later) - min(later)))
    return rows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "plan_cost.md"))
    args = p.parse_args()
    import torch

    from bench._harness import write_atomic

    torch.set_num_threads(2)
    lines = ["# The cost of a new input size (archc.fuse, CPU)", "",
             f"`python bench/plan_cost.py` — {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
             f"{platform.machine()}, torch {torch.__version__}, 2 threads, batch 1, float32. A shared machine: "
             "compare the columns of one row, not rows across runs.", "",
             "| spec | size | first call (ms) | later calls, median (ms) | spread (ms) | planning alone (ms) | "
             "first / later |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, path, params, sizes in SPECS:
        for s, first, later, plan, spread in measure(path, params, sizes):
            lines.append(f"| {name} | {s} | {first * 1e3:.1f} | {later * 1e3:.1f} | {spread * 1e3:.1f} | "
                         f"{plan * 1e3:.1f} | {first / later:.1f}x |")
            print(lines[-1], flush=True)
    write_atomic(Path(args.out), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
