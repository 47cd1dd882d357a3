#!/usr/bin/env python3
"""archc specs against timm: strict state_dict load and equal outputs in float64.

timm is a comparison tool here, never a dependency of archc or its tests. Run it in an environment that has timm
(the comparison venv), importing this checkout's archc:

    PYTHONPATH=. /work/cmpvenv/bin/python tools/timm_compare.py [--write bench/results/timm_equivalence.md]

For each (spec, variant, timm model) in MODELS: the timm model is built with pretrained=False (no download) under a
fixed seed; what it initialises to constants (BN statistics and affine, zero biases) is redrawn (torchvision_manifest's
`randomise`); its state_dict is loaded into `archc.build(spec)` with strict=True; both run in eval mode in float64 on
one random batch of 2 at the spec's input size. A row passes when the keys and shapes agree, the parameter counts are
equal, and max|a - b| / max|b| <= 1e-10.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, REPO_ROOT)

from torchvision_manifest import first_tensor, key_mismatch, randomise  # noqa: E402  (one copy of each rule)

MODELS = [  # spec (in archc/zoo/), its variant or None, timm's model name
    ("inception_resnet_v2", None, "inception_resnet_v2"),
    ("skresnet18", None, "skresnet18"),
    ("res2net", "res2net50_26w_4s", "res2net50_26w_4s"),
    ("res2net", "res2net50_26w_8s", "res2net50_26w_8s"),
]
TOL = 1e-10


def compare(spec: str, variant: str | None, model: str, seed: int = 0) -> dict:
    import timm
    import torch

    import archc

    path = os.path.join(REPO_ROOT, "archc", "zoo", f"{spec}.yaml")
    mine = archc.build(path, **({"variant": variant} if variant else {}))
    torch.manual_seed(seed)
    ref = timm.create_model(model, pretrained=False)
    randomise(ref)
    size = tuple(mine.analysis.input_shape)
    ref_params = sum(p.numel() for p in ref.parameters())
    row = {"spec": spec, "variant": variant, "model": model, "input": size, "params": ref_params,
           "archc_params": mine.analysis.params, "load": key_mismatch(mine.state_dict(), ref.state_dict()),
           "diff": None, "rel": None, "ok": False}
    if row["load"] is None:
        try:
            mine.load_state_dict(ref.state_dict(), strict=True)
        except RuntimeError as e:
            row["load"] = str(e).strip().splitlines()[0]
    if row["load"] is not None:
        return row
    ref, mine = ref.double().eval(), mine.double().eval()
    x = torch.randn(2, *size, dtype=torch.float64, generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        want, got = first_tensor(ref(x)), first_tensor(mine(x))
    if got.shape != want.shape:
        row["load"] = f"output shape: archc {tuple(got.shape)}, timm {tuple(want.shape)}"
        return row
    diff = (got - want).abs().max().item()
    row.update(diff=diff, rel=diff / max(want.abs().max().item(), 1e-300))
    row["ok"] = row["rel"] <= TOL and row["params"] == row["archc_params"]
    return row


def report(rows: list[dict]) -> str:
    import timm
    import torch

    lines = [
        "# archc specs vs timm: strict state_dict load and outputs",
        "",
        f"date {datetime.date.today().isoformat()}; torch {torch.__version__}, timm {timm.__version__} (a separate "
        "venv; timm is never a test dependency).",
        "`PYTHONPATH=. python tools/timm_compare.py --write bench/results/timm_equivalence.md` builds each timm model "
        "with pretrained=False under a fixed seed, redraws what it initialises to constants (BN statistics and "
        "affine, zero biases), loads its state_dict into the archc module with strict=True, and runs both in eval "
        "mode in float64 on the same random batch of 2 at the spec's input size. A row passes when the parameter "
        f"counts are equal and max|a - b| / max|b| <= {TOL:g}.",
        "",
        "| spec | timm model | input | params (timm) | params (archc) | strict load | max abs diff | relative error "
        "| result |",
        "|---|---|---|---:|---:|---|---:|---:|---|",
    ]
    for r in rows:
        name = f"{r['spec']} ({r['variant']})" if r["variant"] else r["spec"]
        load = "yes" if r["load"] is None else f"no: {r['load']}"
        diff = "" if r["diff"] is None else f"{r['diff']:.3e}"
        rel = "" if r["rel"] is None else f"{r['rel']:.3e}"
        lines.append(f"| {name} | {r['model']} | {r['input'][1]}x{r['input'][2]} | {r['params']} | "
                     f"{r['archc_params']} | {load} | {diff} | {rel} | {'ok' if r['ok'] else 'FAILED'} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", metavar="FILE", help="write the markdown report there (default: print it)")
    parser.add_argument("--only", nargs="*", help="timm model names to compare (default: all)")
    args = parser.parse_args(argv)
    rows = [compare(*m) for m in MODELS if not args.only or m[2] in args.only]
    text = report(rows)
    if args.write:
        with open(args.write, "w") as f:
            f.write(text)
    print(text, end="")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
