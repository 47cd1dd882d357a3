"""Big but legal specs: how long loading (YAML, reader, schema), expansion and analysis take, and the peak memory,
for this tree and a baseline side by side (`git archive REF` unpacked beside), runs interleaved.

Specs (generated): 99,000 `relu` items; 90,000 convs (a repeat of 9,000 x 10 convs and a relu); 20,000 named
convs; 10,000 auxiliary heads; a 990-layer dense block (492,525 edges). Each measurement is a fresh process
through the API (archc.load, archc.analyze, the module-name checks: what `archc validate` runs), timed in CPU
seconds of that process (the machine is shared); memory is the process's peak RSS.

Usage: python bench/big_specs.py [--baseline main] [--runs 3] [--budget 1500] [--build]
  --build also times building the nn.Module of the 90,000 convs (archc compile's extra step).
Writes bench/results/big_specs.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import ROOT, Budget, environment, markdown_table, spread, write_atomic  # noqa: E402

HEAD = "archc: 1\nname: big\n"
CONVS = ", ".join(["{conv: {out: 1, k: 1}}"] * 10)
SPECS = {
    "relu_99k": HEAD + "input: [3, 8, 8]\ngraph:\n" + "  - relu\n" * 99_000,
    "conv_90k": HEAD + "input: [1, 1, 1]\ngraph:\n  - {repeat: 9000, body: [" + CONVS + ", relu]}\n",
    "named_conv_20k": HEAD + "input: [1, 1, 1]\ngraph:\n" +
    "".join(f"  - c{i}: {{conv: {{out: 1, k: 1}}}}\n" for i in range(20_000)),
    "aux_10k": HEAD + "input: [4]\ngraph:\n" + "".join(f"  - a{i}: {{aux: [relu]}}\n" for i in range(10_000)) +
    "  - relu\n",
    # 990 layers: 492,525 steps, under the default limit of 500,000 (1,000 layers take 502,500 and are refused)
    "dense_990": HEAD + "input: [1, 1, 1]\ngraph:\n  - {dense: {layers: 990, body: [{conv: {out: 1, k: 1}}]}}\n",
}

CHILD = r"""
import json, resource, sys, time
T = time.process_time  # CPU seconds: the machine is shared, its wall clock depends on others' load
import archc
from archc.backends.torch.names import check
t1 = T()
spec = archc.load(sys.argv[1])
t2 = T()
a = archc.analyze(spec, check=False)
t3 = T()
check(a.graph)
t4 = T()
g = a.graph
out = {"load": t2 - t1, "analyse": t3 - t2, "names": t4 - t3, "nodes": len(g), "edges": g.nx.number_of_edges()}
if sys.argv[2] == "build":
    t5 = T()
    archc.build(a)
    out["build"] = T() - t5
out["validate"] = out["load"] + out["analyse"] + out["names"]
out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def measure(tree: Path, spec: Path, build: bool, timeout: float) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    try:
        p = subprocess.run([sys.executable, "-c", CHILD, str(spec), "build" if build else "-"], env=env,
                           capture_output=True, text=True, timeout=timeout, cwd=tree)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    if p.returncode:
        return {"error": (p.stderr.strip().splitlines() or ["?"])[-1][:120]}
    return json.loads(p.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", default="main")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--budget", type=float, default=1500)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--build", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "big_specs.md"))
    args = ap.parse_args()
    budget = Budget(args.budget)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = tmp / "baseline"
        base.mkdir()
        archive = subprocess.run(["git", "archive", args.baseline], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        base_rev = subprocess.run(["git", "rev-parse", "--short", args.baseline], cwd=ROOT, capture_output=True,
                                  text=True).stdout.strip()
        this_rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                  text=True).stdout.strip()
        trees = {"baseline": base, "this": ROOT}
        files = {}
        for name, text in SPECS.items():
            files[name] = tmp / f"{name}.yaml"
            files[name].write_text(text)
        results: dict = {(s, t): [] for s in SPECS for t in trees}
        for run in range(args.runs):
            for name in SPECS:
                for tree, path in trees.items():  # interleaved: the machine's load falls on both alike
                    if budget.left() < 0:
                        break
                    build = args.build and name == "conv_90k"
                    r = measure(path, files[name], build, min(args.timeout, max(budget.left(), 1)))
                    results[(name, tree)].append(r)
                    print(name, tree, run, r, flush=True)
    head = ["spec", "nodes / edges", "tree", "load s", "expand+analyse s", "validate CPU s (20%..80%)", "peak RSS MB",
            *(["build s"] if args.build else []), "validate: baseline / this"]
    rows = []
    for name in SPECS:
        med = {}
        for tree in trees:
            rs = [r for r in results[(name, tree)] if "error" not in r]
            if not rs:
                errs = {r["error"] for r in results[(name, tree)]}
                rows.append([name, "", tree, "", "", "; ".join(errs) or "not run", "", *([""] if args.build else []),
                             ""])
                continue
            m, lo, hi = spread([r["validate"] for r in rs])
            med[tree] = m
            builds = [r["build"] for r in rs if "build" in r]
            rows.append([name, f"{rs[0]['nodes']:,} / {rs[0]['edges']:,}", tree,
                         f"{spread([r['load'] for r in rs])[0]:.2f}", f"{spread([r['analyse'] for r in rs])[0]:.2f}",
                         f"{m:.2f} ({lo:.2f}..{hi:.2f})", f"{spread([r['rss_mb'] for r in rs])[0]:.0f}",
                         *([f"{spread(builds)[0]:.1f}" if builds else ""] if args.build else []),
                         f"{med['baseline'] / m:.1f}x" if tree == "this" and "baseline" in med else ""])
    env = environment(baseline=f"{args.baseline} ({base_rev})", this=this_rev, runs=args.runs)
    text = ("# Big but legal specs: load, expansion and analysis\n\n" + " ".join(f"{k}: {v};" for k, v in env.items())
            + f" load average {os.getloadavg()[0]:.1f};\n\nEach cell is the median of the runs (fresh processes, "
              "baseline and this tree interleaved), in CPU seconds of the process; validate = load + expand and "
              "analyse + module-name checks; `import archc` not included.\n\n" + markdown_table(head, rows) + "\n")
    write_atomic(Path(args.out), text)
    print(text)


if __name__ == "__main__":
    main()
