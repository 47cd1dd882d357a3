"""CPU inference: the plain eager module (model.eval()) vs archc.fuse(model) (BN folded into conv
weights, conv + bias + residual + activation as one reference-path op, weights channels_last), side by
side in one run; also the eager module converted to channels_last, to show what the layout alone gives.

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
        model_cl = archc.build(ROOT / "specs" / f"{name}.yaml").eval()
        model_cl.load_state_dict(model.state_dict())
        model_cl.to(memory_format=torch.channels_last)
        for batch in args.batch:
            x = torch.randn(batch, *model.analysis.input_shape)
            with torch.inference_mode():
                err = ((model(x) - fused(x)).norm() / model(x).norm()).item()
                for _ in range(2):  # warm-up
                    model(x), model_cl(x), fused(x)
                eager, eager_cl, fast = [], [], []
                for _ in range(args.runs):
                    eager.append(_time(model, x))
                    eager_cl.append(_time(model_cl, x))
                    fast.append(_time(fused, x))
            rows.append((name, batch, eager, eager_cl, fast, err))
            print(f"{name} batch {batch}: eager {statistics.median(eager) * 1e3:.1f} ms, eager channels_last "
                  f"{statistics.median(eager_cl) * 1e3:.1f} ms, fused {statistics.median(fast) * 1e3:.1f} ms",
                  flush=True)

    def cell(ts):
        return f"{statistics.median(ts) * 1e3:.1f} ({min(ts) * 1e3:.1f}..{max(ts) * 1e3:.1f})"

    lines = ["| spec | batch | eager ms median (min..max) | eager channels_last ms | fused ms | fused vs eager | "
             "fused vs eager channels_last | rel. error |", "|---|---:|---|---|---|---:|---:|---:|"]
    for name, batch, eager, eager_cl, fast, err in rows:
        me, mc, mf = (statistics.median(t) for t in (eager, eager_cl, fast))
        lines.append(f"| {name} | {batch} | {cell(eager)} | {cell(eager_cl)} | {cell(fast)} | {me / mf:.2f}x | "
                     f"{mc / mf:.2f}x | {err:.1e} |")
    meta = (f"date {datetime.date.today()}; {platform.machine()}, {os.cpu_count()} CPUs, torch "
            f"{torch.__version__} ({torch.get_num_threads()} threads), Python {platform.python_version()}; "
            f"float32, NCHW input, {args.runs} interleaved runs each after 2 warm-ups; ratios of medians; "
            "rel. error = ||eager - fused|| / ||eager||")
    text = "# CPU inference: eager vs archc.fuse\n\n" + meta + "\n\n" + "\n".join(lines) + "\n"
    print(text)
    (ROOT / "bench" / "results" / "cpu_inference.md").write_text(text)


if __name__ == "__main__":
    main()
