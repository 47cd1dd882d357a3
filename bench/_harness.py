"""What the benchmark scripts share: the machine and versions, a wall-clock budget, medians with spread,
markdown tables, files written so that a run killed half way still leaves what it had measured, and the
interleaved timing loop. They live in the package (archc/bench.py), so that `archc bench` and these scripts
measure one way."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from archc import files  # noqa: E402
from archc.bench import Budget, environment, geomean, markdown_table, measure, spread  # noqa: E402,F401


def write_atomic(path: str | Path, text: str) -> None:
    """A result file, written by archc's one output writer (archc/files.py: atomic, so a run killed half way
    leaves the last complete file; never through a link). The scripts' own results folder (bench/results/...)
    is made when missing: archc's commands make none, a benchmark run names its folder itself."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    files.write_text(path, text)
