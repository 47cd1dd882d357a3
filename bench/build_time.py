"""How long spec -> built nn.Module takes: load+validate, expand+analyse, build (module construction).

Usage: python bench/build_time.py [SPEC ...] [--runs N]
Prints a table and writes bench/results/build_time.md (machine, versions, date, median and spread).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("specs", nargs="*", default=["resnet152", "resnet50",
                                                "densenet121", "googlenet"])
    p.add_argument("--runs", type=int, default=7)
    args = p.parse_args()
    t0 = time.perf_counter()
    import torch

    import archc
    from archc.ir.expand import expand
    from archc.backends.torch.executor import ArchcModule
    from archc.passes import ANALYSIS, run

    import_s = time.perf_counter() - t0
    torch.set_num_threads(os.cpu_count() or 1)
    rows = []
    for spec in args.specs:
        path = ROOT / spec
        archc.build(path)  # warm-up: caches (schema validator) as a long-lived process would have them
        times = {"load": [], "analyse": [], "build": [], "total": []}
        for _ in range(args.runs):
            t = time.perf_counter()
            s = archc.load(path)
            t1 = time.perf_counter()
            g = run(expand(s), ANALYSIS)
            t2 = time.perf_counter()
            ArchcModule(g)
            t3 = time.perf_counter()
            for k, v in zip(times, (t1 - t, t2 - t1, t3 - t2, t3 - t)):
                times[k].append(v)
        rows.append((spec, len(g), times))

    head = "| spec | nodes | load+schema ms | expand+analyse ms | build ms | total ms (median) | total min..max ms |"
    lines = [head, "|" + "---|" * 7]
    for spec, n, t in rows:
        med = {k: statistics.median(v) * 1e3 for k, v in t.items()}
        lines.append(f"| {spec} | {n} | {med['load']:.0f} | {med['analyse']:.0f} | {med['build']:.0f} | "
                     f"{med['total']:.0f} | {min(t['total']) * 1e3:.0f}..{max(t['total']) * 1e3:.0f} |")
    meta = (f"date {datetime.date.today()}, {platform.node()}: {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}, torch {torch.__version__}, "
            f"{args.runs} runs per spec after one warm-up; `import torch, archc` took {import_s * 1e3:.0f} ms "
            "(once per process, not included)")
    text = "# spec -> nn.Module build time\n\n" + meta + "\n\n" + "\n".join(lines) + "\n"
    print(text)
    out = ROOT / "bench" / "results" / "build_time.md"
    out.write_text(text)


if __name__ == "__main__":
    main()
