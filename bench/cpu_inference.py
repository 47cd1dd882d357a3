"""CPU inference: the plain eager module (model.eval()) vs archc.fuse(model) (BN folded into conv
weights, conv + bias + residual + activation as one reference-path op), side by side in one run.

Usage: python bench/cpu_inference.py [--specs resnet50 ...] [--batch 1 8] [--runs 15]
Runs are interleaved (eager, fused, eager, ...) so machine noise hits both alike. Writes
bench/results/cpu_inference.md with machine, versions, date, median and spread.
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


def _time(fn, x) -> float:
    t = time.perf_counter()
    fn(x)
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--specs", nargs="+", default=["resnet50", "resnext", "vgg16", "densenet121", "googlenet"])
    p.add_argument("--batch", nargs="+", type=int, default=[1, 8])
    p.add_argument("--runs", type=int, default=11)
    args = p.parse_args()

    import torch

    import archc

    torch.manual_seed(0)
    rows = []
    for name in args.specs:
        model = archc.build(ROOT / "specs" / f"{name}.yaml").eval()
        fused = archc.fuse(model)
        for batch in args.batch:
            x = torch.randn(batch, *model.analysis.input_shape)
            with torch.inference_mode():
                err = ((model(x) - fused(x)).norm() / model(x).norm()).item()
                for _ in range(2):  # warm-up
                    model(x), fused(x)
                eager, fast = [], []
                for _ in range(args.runs):
                    eager.append(_time(model, x))
                    fast.append(_time(fused, x))
            rows.append((name, batch, eager, fast, err))
            print(f"{name} batch {batch}: eager {statistics.median(eager) * 1e3:.1f} ms, "
                  f"fused {statistics.median(fast) * 1e3:.1f} ms", flush=True)

    lines = ["| spec | batch | eager ms median (min..max) | fused ms median (min..max) | speed-up | rel. error |",
             "|---|---:|---|---|---:|---:|"]
    for name, batch, eager, fast, err in rows:
        me, mf = statistics.median(eager) * 1e3, statistics.median(fast) * 1e3
        lines.append(f"| {name} | {batch} | {me:.1f} ({min(eager) * 1e3:.1f}..{max(eager) * 1e3:.1f}) | "
                     f"{mf:.1f} ({min(fast) * 1e3:.1f}..{max(fast) * 1e3:.1f}) | {me / mf:.2f}x | {err:.1e} |")
    meta = (f"date {datetime.date.today()}; {platform.machine()}, {os.cpu_count()} CPUs, torch "
            f"{torch.__version__} ({torch.get_num_threads()} threads), Python {platform.python_version()}; "
            f"float32, {args.runs} interleaved runs each after 2 warm-ups; speed-up = eager median / fused median; "
            "rel. error = ||eager - fused|| / ||eager||")
    text = "# CPU inference: eager vs archc.fuse\n\n" + meta + "\n\n" + "\n".join(lines) + "\n"
    print(text)
    (ROOT / "bench" / "results" / "cpu_inference.md").write_text(text)


if __name__ == "__main__":
    main()
