"""CPU inference, side by side in one process: the eager module, eager channels_last, archc.fuse (its generated
forward), archc.fuse through the interpreter (what the generated forward saves), torch.compile with freezing,
onnxruntime on a model exported from the same module, and TorchScript with oneDNN Graph (the traced, frozen
module with `torch.jit.enable_onednn_fusion`: oneDNN's compiled partitions, no per-op framework call). All get
the same NCHW float32 input; every output is checked against eager's.

Usage: python bench/cpu_inference.py [--specs resnet50 ...] [--batch 1 8] [--rounds 15] [--threads 2]
       [--columns eager fused ...] [--pause S] [--out bench/results/cpu_inference] [--budget SECONDS]
Needs onnx and onnxruntime for its onnxruntime column (an optional extra: `pip install onnx onnxruntime`);
without them that column is left out. Each round runs every column once, in a rotated order, so that the
machine's noise hits all alike; medians with the 20th..80th percentile, ratios of medians, and the median of
per-round ratios (each round's pair measured moments apart). Writes OUT.md and OUT.json after every row (machine,
versions, date, load average), and the memory plan's figures with the peak measured on the generated forward.

Each timed call is one engine's second call in a row, after a pause (`--pause`, 0.2 s): engines keep their
threads spinning after a call (onnxruntime's pool burns ~50 ms of CPU after each run, PyTorch's OpenMP threads
~7 ms; bench/cpu_overhead.py measures it), which on a 2-core machine slows whatever runs next. The pause lets
the previous engine's threads go idle, and the untimed first call lets each engine reach its own steady state,
as it would serving calls back to back.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import ROOT, Budget, environment, geomean, markdown_table, spread, write_atomic  # noqa: E402

COLUMNS = ["eager", "eager_cl", "fused", "fused_interp", "compile", "ort", "onednn_graph"]
TITLES = {"eager": "eager", "eager_cl": "eager channels_last", "fused": "archc.fuse",
          "fused_interp": "archc.fuse interpreted", "compile": "torch.compile freezing", "ort": "onnxruntime",
          "onednn_graph": "TorchScript oneDNN Graph"}


def randomise_bn(model, seed=1):
    """BN statistics that are not the identity, so folding them is checked."""
    import torch

    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) - 0.5)
    return model


def onnxruntime_session(model, x, threads):
    import onnxruntime as ort
    import torch

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), buf, dynamo=False, input_names=["x"], output_names=["y"])
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(buf.getvalue(), options, providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {"x": x.numpy()})[0])


def variants(name, batch, columns, threads):
    """{column: callable(x)} and the input, for one spec and batch size."""
    import torch

    import archc
    from archc.backends.torch.executor import ArchcModule

    torch.manual_seed(0)
    model = randomise_bn(archc.build(name)).eval()
    x = torch.randn(batch, *model.analysis.input_shape)
    run = {"eager": model}
    if "eager_cl" in columns:
        run["eager_cl"] = copy.deepcopy(model).to(memory_format=torch.channels_last)
    fused = archc.fuse(model)
    if "fused" in columns:
        run["fused"] = fused
    if "fused_interp" in columns:
        run["fused_interp"] = lambda x: ArchcModule.forward(fused, x)
    if "compile" in columns:
        import torch._inductor.config

        torch._inductor.config.freezing = True
        run["compile"] = torch.compile(copy.deepcopy(model), dynamic=False)
    if "ort" in columns:
        try:
            run["ort"] = onnxruntime_session(model, x, threads)
        except ImportError as e:
            print(f"onnxruntime column left out: {e}", flush=True)
    if "onednn_graph" in columns:
        run["onednn_graph"] = onednn_graph(model, x)
    return run, x, fused, model


def onednn_graph(model, x):
    """The module traced and frozen with TorchScript's oneDNN Graph fuser on (it fuses on the profiling
    executor's second call: the warm-up calls)."""
    import torch

    torch.jit.enable_onednn_fusion(True)  # affects TorchScript graphs only: this column's
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.freeze(torch.jit.trace(copy.deepcopy(model), x).eval())
    return traced


def memory_row(name, batch, fused, model, x):
    """Plan and measured figures of the generated forward (bytes)."""
    import torch

    from archc.backends.torch.cpu import forward as codegen, probes

    meter = probes.Meter()
    with torch.inference_mode():
        forward = codegen.Forward(fused, x, probe=meter)
        forward(x)
    p = forward.plan
    return {"spec": name, "batch": batch, "sum_bytes": p.sum_bytes, "static_peak_bytes":
            model.analysis.peak_activations * batch * x.element_size(), "arena_bytes": p.arena_bytes,
            "planned_peak_bytes": p.peak_bytes, "measured_peak_bytes": meter.peak}


def measure(run, x, rounds, warmup, pause):
    import torch

    times = {k: [] for k in run}
    errors = {}
    names = list(run)
    with torch.inference_mode():
        want = run["eager"](x)
        for k, f in run.items():
            t = time.perf_counter()
            got = f(x)
            first = time.perf_counter() - t
            errors[k] = ((got.double() - want.double()).norm() / want.double().norm()).item()
            print(f"  {k}: first call {first:.2f} s, rel. error {errors[k]:.1e}", flush=True)
            for _ in range(warmup):
                f(x)
        for r in range(rounds):
            for k in names[r % len(names):] + names[:r % len(names)]:
                time.sleep(pause)  # the previous engine's threads go idle
                run[k](x)  # this engine's steady state
                t = time.perf_counter()
                run[k](x)
                times[k].append(time.perf_counter() - t)
    return times, errors


def wait_for_load(limit, max_wait):
    """Seconds spent waiting until the 1-minute load average is at most `limit` (at most `max_wait`)."""
    start = time.monotonic()
    while os.getloadavg()[0] > limit and time.monotonic() - start < max_wait:
        time.sleep(15)
    return time.monotonic() - start


def ms(v):
    return f"{v * 1e3:.1f}"


def cell(samples):
    med, lo, hi = spread(samples)
    return f"{ms(med)} ({ms(lo)}..{ms(hi)})"


def paired(a, b):
    """Median over rounds of b's time / a's time: how many times faster a is than b, round by round."""
    return statistics.median(tb / ta for ta, tb in zip(a, b))


def report(rows, memory, env, args) -> str:
    cols = [c for c in COLUMNS if c in args.columns]
    head = ["spec", "batch"] + [f"{TITLES[c]} ms" for c in cols]
    head += [f"{TITLES[c]} vs eager" for c in cols if c != "eager"]
    rivals = [c for c in ("compile", "ort", "onednn_graph") if c in cols]
    head += [f"fuse vs {TITLES[c]} (paired)" for c in rivals] + ["max rel. error", "load (start, end)"]
    table = []
    for row in rows:
        t, med = row["times"], {k: spread(v)[0] for k, v in row["times"].items()}
        line = [row["spec"], row["batch"]] + [cell(t[c]) if c in t else "—" for c in cols]
        line += [f"{med['eager'] / med[c]:.2f}x" if c in med else "—" for c in cols if c != "eager"]
        for other in rivals:
            line.append(f"{med[other] / med['fused']:.2f}x ({paired(t['fused'], t[other]):.2f}x)"
                        if other in t and "fused" in t else "—")
        line.append(f"{max(row['errors'].values()):.1e}")
        line.append(", ".join(map(str, row.get("load", []))))
        table.append(line)
    ratios = []
    for other in rivals:
        got = [spread(r["times"][other])[0] / spread(r["times"]["fused"])[0] for r in rows
               if other in r["times"] and "fused" in r["times"]]
        if got:
            ratios.append(f"geometric mean of archc.fuse vs {TITLES[other]}: {geomean(got):.2f}x "
                          f"(min {min(got):.2f}x)")
    mem_head = ["spec", "batch", "sum of activations MB", "static peak MB (archc compile)", "arena MB",
                "planned peak MB", "measured peak MB"]
    mem = [[m["spec"], m["batch"], *(f"{m[k] / 1e6:.1f}" for k in ("sum_bytes", "static_peak_bytes",
                                                                   "arena_bytes", "planned_peak_bytes",
                                                                   "measured_peak_bytes"))] for m in memory]
    meta = ", ".join(f"{k} {v}" for k, v in env.items())
    return ("# CPU inference: eager, archc.fuse, torch.compile (freezing), onnxruntime, TorchScript oneDNN Graph"
            f"\n\n{meta}\n\n"
            f"float32, NCHW input, {args.threads} threads; {args.rounds} rounds after {args.warmup} warm-up calls, "
            "each round every column once in a rotated order: a pause of "
            f"{args.pause} s (the previous engine's spinning threads go idle), an untimed call, the timed call; "
            "ms: median (20th..80th percentile); ratios: "
            "speed-up, a ratio of medians (in brackets: the median of per-round ratios); rel. error: "
            "||out - eager|| / ||eager||, the largest over the columns; load: the machine's 1-minute load "
            "average when the row started and ended (2 cores, shared: other processes compete).\n\n"
            + markdown_table(head, table) + "\n\n" + "\n".join(f"- {r}" for r in ratios) + "\n\n"
            "## Memory of archc.fuse's generated forward\n\nsum: every value's bytes as if none shared storage; "
            "static peak: the analysis's peak (unfused graph, each value freed after its last use, input "
            "included); arena: the memory plan's arena; planned peak: the arena plus the most storage outside "
            "it alive at once (input included); measured: the most bytes held by the arena and the live values' "
            "storages, read after every step of a real forward.\n\n" + markdown_table(mem_head, mem) + "\n")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--specs", nargs="+", default=["resnet50", "resnext50_32x4d", "densenet121", "googlenet"])
    p.add_argument("--batch", nargs="+", type=int, default=[1, 8])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--pause", type=float, default=0.2, help="seconds of rest before each column's calls")
    p.add_argument("--columns", nargs="+", default=COLUMNS, choices=COLUMNS)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "cpu_inference"))
    p.add_argument("--budget", type=float, default=3600, help="seconds; rows that would start later are skipped")
    p.add_argument("--wait-load", type=float, metavar="L",
                   help="on a shared machine: before each row, wait until the 1-minute load average is at most L")
    p.add_argument("--max-wait", type=float, default=1800, help="seconds to wait for --wait-load per row")
    args = p.parse_args()
    if "eager" not in args.columns:
        args.columns.insert(0, "eager")

    import torch

    torch.set_num_threads(args.threads)
    extra = {"threads": args.threads, "load average at start": "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())}
    for mod in ("onnx", "onnxruntime"):
        try:
            extra[mod] = __import__(mod).__version__
        except ImportError:
            extra[mod] = "not installed"
    env = environment(**extra)
    budget, rows, memory = Budget(args.budget), [], []
    out = Path(args.out)
    for name in args.specs:
        for batch in args.batch:
            if budget.left() <= 0:
                print(f"budget spent: {name} batch {batch} left out", flush=True)
                continue
            print(f"{name} batch {batch}", flush=True)
            run, x, fused, model = variants(name, batch, args.columns, args.threads)
            waited = wait_for_load(args.wait_load, args.max_wait) if args.wait_load is not None else 0.0
            load = os.getloadavg()[0]
            times, errors = measure(run, x, args.rounds, args.warmup, args.pause)
            rows.append({"spec": name, "batch": batch, "times": times, "errors": errors,
                         "load": [round(load, 2), round(os.getloadavg()[0], 2)], "waited_s": round(waited)})
            memory.append(memory_row(name, batch, fused, model, x))
            med = {k: spread(v)[0] for k, v in times.items()}
            print("  " + ", ".join(f"{k} {ms(v)} ms" for k, v in med.items()), flush=True)
            env["load average at end"] = "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
            write_atomic(out.with_suffix(".md"), report(rows, memory, env, args))
            write_atomic(out.with_suffix(".json"), json.dumps({"environment": env, "rows": rows,
                                                               "memory": memory}, indent=1))
            del run, fused, model
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
