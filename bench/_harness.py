"""What the benchmark scripts share: the machine and versions, a wall-clock budget, medians with spread,
markdown tables, and files written so that a run killed half way still leaves what it had measured."""

from __future__ import annotations

import datetime
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def environment(**extra) -> dict:
    """Date, machine and library versions (torch, triton and the GPU when there is one)."""
    info = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs"}
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name()
            info["sm"] = "%d.%d" % torch.cuda.get_device_capability()
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


def write_atomic(path: Path, text: str) -> None:
    """Write text so that a reader (or a kill) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
