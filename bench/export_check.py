"""Every spec through every export format, built and fused: `archc export`'s own check (onnx.checker, onnxruntime
or the reloaded program against the module, at most 1e-4 relative) for each. The suite exports a spec that writes
every op; this is the campaign over the zoo (archc/zoo/). Writes bench/results/export_check.md (rows kept after
each spec).

Usage: python bench/export_check.py [--specs resnet50 ...] [--formats onnx pt2 torchscript] [--append]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _harness import ROOT, environment, markdown_table, write_atomic

import archc
from archc.export import FORMATS, export


SPECS = sorted(f.stem for f in (ROOT / "archc" / "zoo").glob("*.yaml"))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--specs", nargs="+", default=SPECS)
    p.add_argument("--formats", nargs="+", default=list(FORMATS), choices=list(FORMATS))
    p.add_argument("--out", default=str(ROOT / "bench/results/export_check.md"))
    p.add_argument("--append", action="store_true", help="keep the rows already in --out (a run done in parts)")
    args = p.parse_args()
    out_md = Path(args.out)
    import onnx
    import onnxruntime

    env = environment(onnx=onnx.__version__, onnxruntime=onnxruntime.__version__)
    rows = [[c.strip() for c in line.strip("|\n").split("|")] for line in out_md.read_text().splitlines()[6:]
            if line.startswith("| ")] if args.append and out_md.exists() else []
    for name in args.specs:
        model = archc.build(name).eval()
        for fused in (False, True):
            module = archc.fuse(model) if fused else model
            for fmt in args.formats:
                t = time.monotonic()
                try:
                    out = ROOT / "build" / "export" / f"{name}{'.fused' if fused else ''}{FORMATS[fmt]}"
                    r = export(module, fmt, out)
                    result = f"{r.error:.1e}"
                except archc.ArchcError as e:
                    result = f"FAILED: {e}"
                rows.append([name, "fused" if fused else "built", fmt, result, f"{time.monotonic() - t:.1f}"])
                print(" | ".join(map(str, rows[-1])), flush=True)
        done = len({row[0] for row in rows})
        text = (f"# Export check: specs built and fused, every format\n\n{done} of the {len(SPECS)} specs in "
                "archc/zoo/ "
                f"done. `python bench/export_check.py`; last run "
                f"{env['date']}, {env['machine']}, torch {env['torch']}, onnx {env['onnx']}, onnxruntime "
                f"{env['onnxruntime']}; the export's own check against the module "
                "on a fresh batch of 3 (traced at 2): max relative difference, 1e-4 allowed.\n\n"
                + markdown_table(["spec", "module", "format", "max rel. difference", "seconds"], rows) + "\n")
        write_atomic(out_md, text)


if __name__ == "__main__":
    main()
