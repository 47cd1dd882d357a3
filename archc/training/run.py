"""What a training run leaves in its folder, written by rank 0 only, each file atomically:

    run.json           the settings, the spec (file, parameters), the classes, the data, versions
    metrics.jsonl      one JSON object a line: {"kind": "step", ...} every --log-every batches (loss, lr) and
                       {"kind": "epoch", ...} after each epoch (losses, top-1/top-5, images/s, lr, seconds)
    last.safetensors   the weights after the last epoch (the EMA's with --ema), keys as the module's state_dict
    best.safetensors   the weights of the epoch with the best validation top-1
    last.pt            everything a resume needs: weights, optimizer, schedule, scaler, EMA, RNG states, epoch
    curves.png         loss and accuracy curves (--plot)
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from archc import files
from archc.errors import ArchcError

RUN_FILES = ("run.json", "metrics.jsonl", "last.safetensors", "best.safetensors", "last.pt", "curves.png")
STATE_FORMAT = "archc-train-1"


def choose_folder(out: str | None, name: str, resume: str | None) -> Path:
    """The run's folder (not created yet): --out as given, the resumed run's, or runs/NAME, runs/NAME-2, ... A
    folder that holds another run is refused unless it is the one being resumed."""
    if resume and out is None:
        return Path(resume).parent
    if out is not None:
        folder = Path(out)
        if folder.exists() and not folder.is_dir():
            raise ArchcError(f"--out {out}: not a folder")
        held = [f for f in RUN_FILES if (folder / f).exists()]
        if held and not (resume and Path(resume).resolve().parent == folder.resolve()):
            raise ArchcError(f"--out {out}: it holds a run already ({', '.join(held)}): choose another folder, "
                             f"or --resume {folder / 'last.pt'} to go on with it")
        return folder
    base = Path("runs") / (name or "run")
    folder, k = base, 1
    while folder.exists():
        k += 1
        folder = base.with_name(f"{base.name}-{k}")
    return folder


def make_folder(folder: Path) -> None:
    """The run's own folder (its files then go through archc/files.py, which refuses links and non-files)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ArchcError(f"cannot make the run's folder {folder}: {e.strerror or e}") from None
    if folder.is_symlink() or not folder.is_dir():
        raise ArchcError(f"cannot use {folder} as the run's folder: not a folder")


def save_weights(path: Path, state: dict, metadata: dict) -> None:
    """A state_dict as .safetensors (each tensor its own contiguous CPU copy; metadata as strings)."""
    from safetensors.torch import save

    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    files.write_bytes(path, save(tensors, metadata=meta))


def save_state(path: Path, state: dict) -> None:
    import torch

    files.write_with(path, lambda f: torch.save(state, f), stream=True)


def load_state(path: str) -> dict:
    """A run's last.pt, read with torch.load(weights_only=True): tensors and plain containers, no code."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise ArchcError(f"--resume {path}: no such file")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ArchcError(f"--resume {path}: not a training state archc wrote ({type(e).__name__}: "
                         f"{(str(e).strip().splitlines() or [''])[0][:200]})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ArchcError(f"--resume {path}: not a training state archc wrote (last.pt of a run folder)")
    return state


def write_metrics(path: Path, rows: list[dict]) -> None:
    files.write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def read_metrics(path: str | os.PathLike) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    return rows


def plot(rows: list[dict], path: Path, title: str = "") -> None:
    """Loss (the logged training steps, the epochs' training and validation means) and accuracy (validation
    top-1 and top-5, training top-1) against epochs, as a PNG."""
    try:
        import matplotlib
    except ImportError:
        raise ArchcError("--plot needs matplotlib: pip install 'archc[plot]'") from None
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    steps = [r for r in rows if r.get("kind") == "step"]
    epochs = [r for r in rows if r.get("kind") == "epoch"]
    fig = Figure(figsize=(10, 4), dpi=100, layout="constrained")
    loss, acc = fig.subplots(1, 2)
    if steps:
        loss.plot([r["epoch"] for r in steps], [r["loss"] for r in steps], color="tab:blue", alpha=0.3, lw=1,
                  label="training (logged batches)")
    if epochs:
        x = [r["epoch"] for r in epochs]
        loss.plot([e - 0.5 for e in x], [r["train_loss"] for r in epochs], "o-", color="tab:blue",
                  label="training (epoch mean)")
        loss.plot(x, [r["val_loss"] for r in epochs], "o-", color="tab:orange", label="validation")
        acc.plot(x, [r["val_top1"] for r in epochs], "o-", color="tab:orange", label="validation top-1")
        if all(r.get("val_top5") is not None for r in epochs):
            acc.plot(x, [r["val_top5"] for r in epochs], "s--", color="tab:green", label="validation top-5")
        acc.plot([e - 0.5 for e in x], [r["train_top1"] for r in epochs], "o:", color="tab:blue",
                 label="training top-1 (epoch mean)")
    loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    shown = [v for r in epochs for v in (r["val_top1"], r["train_top1"])]
    low = max(0, math.floor((min(shown) - 5) / 10) * 10) if shown else 0  # the curves, not the empty space below
    acc.set(xlabel="epoch", ylabel="accuracy, %", title="accuracy", ylim=(low, 101))
    for ax in (loss, acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    files.write_with(path, lambda tmp: fig.savefig(tmp, format="png"))
