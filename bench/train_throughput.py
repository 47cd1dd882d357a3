"""Training throughput: `archc.train` (what `archc train` runs) against a plain hand-written PyTorch loop on the same
module and the same data pipeline (the same dataset, transforms v2, DataLoader settings and optimizer), images per
second of training, one epoch at a time, the two interleaved (ABBA) so that the machine's drift hits both alike.

    python bench/train_throughput.py [--rounds 6] [--configs lenet5-b32 ...]

Writes bench/results/train_throughput.md. The data is scikit-learn's 8x8 digits written out as an ImageFolder
(1,797 images; RGB copies for the 3-channel spec), resized to each spec's input.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from _harness import ROOT, environment, geomean, markdown_table, spread, write_atomic

sys.path.insert(0, str(ROOT / "tests"))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import archc  # noqa: E402
import train_data  # noqa: E402
from archc.ir.ops import DISTANCE, OPS  # noqa: E402
from archc.training import data as data_  # noqa: E402
from archc.training import loop  # noqa: E402
from archc.training.config import config  # noqa: E402

# name: (spec, its parameters, channels of the data, batch, options of both loops)
CONFIGS = {
    "lenet5-b32": ("archc/zoo/lenet5.yaml", {}, 1, 32, {}),
    "lenet5-b128": ("archc/zoo/lenet5.yaml", {}, 1, 128, {}),
    "lenet5-b128-bf16": ("archc/zoo/lenet5.yaml", {}, 1, 128, {"amp": "bf16"}),
    "resnet20-b64": ("archc/zoo/resnet110_cifar.yaml", {"depth": 20}, 3, 64, {}),
}
WORKERS = 1


def archc_epoch(spec, params, folder, batch, opts) -> float:
    r = archc.train(spec, str(folder), params=params, epochs=1, batch=batch, opt="sgd", lr=0.01, augment="none",
                    workers=WORKERS, save=False, progress=False, log=lambda *a: None, **opts)
    return r.epochs[0]["images_per_s"]


def hand_epoch(spec, params, folder, batch, opts) -> float:
    """What a person writes around the module: a DataLoader over the same pipeline, SGD with the same groups and
    a cosine schedule stepped per batch, the loss, backward, step."""
    cfg = config(epochs=1, batch=batch, opt="sgd", lr=0.01, augment="none", workers=WORKERS, **opts)
    data = data_.open_data(str(folder), cfg.val_split, cfg.seed)
    model = archc.build(spec, classes=len(data.classes), **params)
    c, h, w = model.analysis.input_shape
    train_tf, val_tf = data_.transforms("none", (h, w), [0.5] * c, [0.5] * c, "L" if c == 1 else "RGB")
    data_.set_transforms(data, train_tf, val_tf)
    loader = torch.utils.data.DataLoader(data.train, batch_size=batch, shuffle=True, num_workers=WORKERS,
                                         drop_last=True)
    sign = -1.0 if DISTANCE in OPS[model.graph[model.graph.outputs[0].node].op] else 1.0
    opt = torch.optim.SGD(loop.param_groups(model, cfg.weight_decay), lr=0.01, momentum=0.9)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=len(loader))
    amp = {"bf16": torch.bfloat16}.get(opts.get("amp"))
    model.train()
    n, start = 0, time.perf_counter()
    for x, y in loader:
        with torch.autocast("cpu", dtype=amp, enabled=amp is not None):
            out = model(x)
            out = out[0] if isinstance(out, tuple) else out
            loss = F.cross_entropy(out.float() * sign, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        n += len(y)
    return n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=6, help="epochs of each loop, interleaved ABBA (default 6)")
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "train_throughput.md"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="archc-throughput-"))
    folders = {1: train_data.write_image_folder(work / "gray"), 3: train_data.write_image_folder(work / "rgb",
                                                                                                  mode="RGB")}
    rows, ratios = [], []
    load = os.getloadavg()[0]
    for name in args.configs:
        spec, params, channels, batch, opts = CONFIGS[name]
        runs = {"archc": archc_epoch, "hand": hand_epoch}
        got = {k: [] for k in runs}
        for r in range(args.rounds):
            order = ["archc", "hand"] if r % 2 == 0 else ["hand", "archc"]
            for k in order:
                got[k].append(runs[k](spec, params, folders[channels], batch, opts))
            print(name, r, {k: round(v[-1], 1) for k, v in got.items()}, flush=True)
        a, h = spread(got["archc"]), spread(got["hand"])
        per_round = [x / y for x, y in zip(got["archc"], got["hand"])]
        ratio = spread(per_round)
        ratios.append(ratio[0])
        rows.append([name, spec + "".join(f" {k}={v}" for k, v in params.items()), batch, opts.get("amp", "fp32"),
                     f"{a[0]:.0f} ({a[1]:.0f}..{a[2]:.0f})", f"{h[0]:.0f} ({h[1]:.0f}..{h[2]:.0f})",
                     f"{ratio[0]:.3f} ({ratio[1]:.3f}..{ratio[2]:.3f})"])
    text = [
        "# Training throughput: archc train against a hand-written loop",
        "",
        ", ".join(f"{k} {v}" for k, v in environment(workers=WORKERS).items()),
        "",
        "Images per second of one training epoch (1,618 images of scikit-learn's digits, the rest held out), "
        f"from the first batch requested to the last step taken, DataLoader start included; {args.rounds} epochs "
        "of each, interleaved ABBA, a fresh module each epoch. archc: `archc.train(spec, data, epochs=1, ...)`'s "
        "`images_per_s` (the same figure `archc train` prints): the loop with its loss, top-1 and logging "
        "bookkeeping, the LR schedule, the progress hooks. Hand: the same dataset, transforms, DataLoader "
        "settings, SGD (momentum 0.9, the same parameter groups) and cosine schedule, written as a plain loop. "
        "Median (20th..80th percentile); the ratio is archc / hand per round.",
        "",
        markdown_table(["config", "spec", "batch", "precision", "archc images/s", "hand images/s",
                        "archc / hand"], rows),
        "",
        f"Geometric mean of the ratios: {geomean(ratios):.3f}.",
        "",
        f"The machine was shared with other jobs (load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at "
        "the end): single epochs swing by tens of percent, which the interleaving spreads over both loops alike; "
        "the medians of the per-round ratios are the figures to read. `OMP_NUM_THREADS=1` in that case runs both "
        "faster and steadier.",
        "",
    ]
    write_atomic(Path(args.out), "\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
