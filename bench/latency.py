"""`archc bench` over several specs, written to bench/results/: eager vs eager channels_last vs archc.fuse latency
and throughput, the same measurement as the command (archc/bench.py), one table per spec.

Usage: python bench/latency.py [--specs resnet50 googlenet ...] [--device cpu|cuda] [--batch 1 8] [--dtype float32]
       [--runs 11] [--out bench/results/latency_cpu.md]
"""

from __future__ import annotations

import argparse
import json

from _harness import ROOT, write_atomic

from archc import bench


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--specs", nargs="+", default=["resnet50", "googlenet", "densenet121"])
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--batch", nargs="+", type=int, default=[1, 8])
    p.add_argument("--dtype", default="float32", choices=bench.DTYPES)
    p.add_argument("--runs", type=int, default=11)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--out", default=None, help="markdown file (default bench/results/latency_<device>.md); "
                                                "the JSON goes beside it")
    args = p.parse_args()
    out = ROOT / (args.out or f"bench/results/latency_{args.device}.md")
    results, parts = [], [f"# `archc bench`: eager vs eager channels_last vs archc.fuse ({args.device})\n",
                          f"`python bench/latency.py --device {args.device} --batch {' '.join(map(str, args.batch))} "
                          f"--dtype {args.dtype} --runs {args.runs}`; ratios are of medians.\n"]
    for name in args.specs:
        r = bench.bench(name, args.device, args.batch, args.dtype, args.runs, args.warmup,
                        progress=bench.stderr_progress)
        results.append(r)
        parts.append(bench.table(r) + "\n")
        write_atomic(out, "\n".join(parts))  # what was measured so far survives a kill
        write_atomic(out.with_suffix(".json"), json.dumps(results, indent=1))
    print("\n".join(parts))


if __name__ == "__main__":
    main()
