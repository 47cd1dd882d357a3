"""Differential fuzzing of archc.fuse (`python bench/fuzz.py --differential`): random *valid* specs — convs of
every geometry (kernels 1 to 5, non-square, strides 1 to 3, padding, dilation, groups, depthwise), BN, the
activations, max and average pooling (ceil, padding, divisors), residual blocks with projection shortcuts,
Inception-style branches joined by concat or add, dense blocks, squeeze-excitation gates, channel shuffles and
splits, upsampling, global pooling heads — built, fused, and run at random input sizes the layers allow (and one
they refuse, when there is one), random batch sizes, contiguous and channels_last inputs, in random order, so
that plans switch back and forth. A case passes when the fused module's output equals the eager module's
(relative 1e-4, float32) at every allowed input, both refuse the same inputs with the same ShapeError, and nothing
crashes. Run it under `MALLOC_CHECK_=3` too, so that a write out of bounds aborts instead of passing silently.

Each case is reproducible from its number: `python bench/fuzz.py --differential --case N` shows the spec.
"""

from __future__ import annotations

import random

TOLERANCE = 1e-4
ACTS = ["relu", "relu6", "sigmoid", "tanh", "silu", "hardswish", "leaky_relu", "gelu", "hardsigmoid"]


class Gen:
    """A random spec, written item by item while tracking the channel count (spatial sizes are the shape
    inference's business: a spec that fails to build is skipped, not counted)."""

    def __init__(self, rng: random.Random):
        self.rng, self.lines, self.n = rng, [], 0

    def name(self, stem: str) -> str:
        self.n += 1
        return f"{stem}{self.n}"

    def width(self) -> int:
        return self.rng.choice([4, 6, 8, 12, 16, 24])

    def conv(self, cin: int, out: int | None = None, depthwise: bool = False) -> tuple[str, int]:
        r = self.rng
        out = out or self.width()
        k = r.choice([1, 1, 3, 3, 3, 5, [1, 3], [3, 1], 2])
        kh, kw = (k, k) if isinstance(k, int) else k
        stride = r.choice([1, 1, 1, 2, 2, 3, [2, 1]])
        dilation = r.choice([1, 1, 1, 2])
        pad = [r.randint(0, (kh - 1) * dilation // 2 + 1), r.randint(0, (kw - 1) * dilation // 2 + 1)]
        if depthwise:
            groups, out = cin, cin * r.choice([1, 2])
        else:
            divisors = [g for g in (1, 2, 3, 4, 8) if cin % g == 0 and out % g == 0]
            groups = r.choice(divisors)
        bias = r.choice(["true", "false"])
        return (f"{{conv: {{out: {out}, k: {k}, stride: {stride}, pad: {pad}, dilation: {dilation}, "
                f"groups: {groups}, bias: {bias}}}}}"), out

    def act(self) -> str:
        return self.rng.choice(ACTS)

    def cba(self, cin: int, out: int | None = None) -> tuple[list[str], int]:
        """conv, then BN and an activation, each kept or not (the patterns the fuser looks for, and near misses)."""
        conv, c = self.conv(cin, out, depthwise=self.rng.random() < 0.15)
        items = [conv]
        if self.rng.random() < 0.8:
            items.append("bn")
        if self.rng.random() < 0.8:
            items.append(self.act())
        return items, c

    def item(self, cin: int) -> tuple[list[str], int]:
        """One graph item (lines of YAML, each an item of a sequence) and the channels leaving it."""
        r = self.rng
        kind = r.choices(["cba", "pool", "residual", "branches", "dense", "se", "shuffle", "upsample", "bnact"],
                         [5, 2, 3, 2, 1, 1, 1, 1, 1])[0]
        if kind == "cba":
            return self.cba(cin)
        if kind == "bnact":
            return ["bn", self.act()], cin
        if kind == "pool":
            pool = r.choice(["maxpool", "avgpool"])
            k = r.choice([2, 3, 3, 5])
            stride = r.choice([1, 2, 2, 3])
            pad = r.randint(0, k // 2)
            extra = f", ceil: {r.choice(['true', 'false'])}"
            if pool == "avgpool":
                extra += f", count_include_pad: {r.choice(['true', 'false'])}"
            return [f"{{{pool}: {{k: {k}, stride: {stride}, pad: {pad}{extra}}}}}"], cin
        if kind == "residual":
            out = r.choice([cin, cin, self.width()])
            stride = r.choice([1, 1, 2])
            body = [f"{{conv: {{out: {out}, k: 3, stride: {stride}, pad: 1, bias: false}}}}", "bn", self.act(),
                    f"{{conv: {{out: {out}, k: 3, pad: 1, bias: false}}}}", "bn"]
            shortcut = "auto" if (out != cin or stride != 1) else r.choice(["identity", "auto"])
            post = r.choice(["relu", "relu6", "identity"])
            return [f"{{residual: {{body: [{', '.join(body)}], shortcut: {shortcut}, post: {post}}}}}"], out
        if kind == "branches":
            join = r.choice(["concat", "add"])
            out = self.width()
            branches, total = [], 0
            for b in range(r.randint(2, 3)):
                k = r.choice([1, 3, 5])
                items = [f"{{conv: {{out: {out}, k: {k}, pad: {k // 2}}}}}", "bn", self.act()]
                if r.random() < 0.3:
                    items.insert(0, "{maxpool: {k: 3, stride: 1, pad: 1}}")
                branches.append(f"b{b}: [{', '.join(items)}]")
                total += out
            c = total if join == "concat" else out
            return [f"{self.name('mixed')}: {{branches: {{{', '.join(branches)}}}, join: {join}}}"], c
        if kind == "dense":
            layers, growth = r.randint(2, 3), r.choice([4, 8])
            body = f"[bn, relu, {{conv: {{out: {growth}, k: 3, pad: 1, bias: false}}}}]"
            return [f"{{dense: {{layers: {layers}, body: {body}}}}}"], cin + layers * growth
        if kind == "se":
            x, gate = self.name("x"), self.name("gate")
            squeeze = max(1, cin // 4)
            gate_act = r.choice(["sigmoid", "hardsigmoid"])
            return [f"{x}: identity",
                    f"{gate}: [gap, {{conv: {{out: {squeeze}, k: 1}}}}, relu, {{conv: {{out: {cin}, k: 1}}}}, "
                    f"{gate_act}]",
                    f"{{mul: null, from: [{gate}, {x}]}}"], cin
        if kind == "shuffle" and cin % 2 == 0:
            if r.random() < 0.5:
                return ["{channel_shuffle: {groups: 2}}"], cin
            return [f"{{chunk: {{chunks: 2, index: {r.randint(0, 1)}}}}}"], cin // 2
        if kind == "upsample":
            mode = r.choice(["nearest", "bilinear"])
            return [f"{{upsample: {{scale: 2, mode: {mode}}}}}"], cin
        return self.cba(cin)

    def spec(self) -> tuple[str, int, int]:
        """(YAML text, input channels, declared input size)."""
        r = self.rng
        c = r.choice([1, 3, 4])
        size = r.randint(8, 40)
        lines, cin = [], c
        for _ in range(r.randint(2, 9)):
            items, cin = self.item(cin)
            lines += items
        head = r.random()
        if head < 0.6:
            lines += ["gap", "flatten", f"{{linear: {{out: {r.randint(2, 12)}}}}}"]
        elif head < 0.7:  # a flat layer after flatten: the size is fixed
            lines += ["flatten", f"{{linear: {{out: {r.randint(2, 12)}}}}}"]
        text = (f"archc: 1\nname: differential\ninput: [{c}, {size}, {size}]\ngraph:\n"
                + "".join(f"  - {line}\n" for line in lines))
        return text, c, size


def generate(case: int) -> tuple[str, int, int]:
    return Gen(random.Random(case)).spec()


def run_case(case: int) -> dict:
    """Build, fuse and compare; {"status": "ok" | "skipped" | "mismatch" | "error", "detail": ...}."""
    import torch

    import archc
    from archc.errors import ArchcError, ShapeError
    from archc.passes import shapes

    text, c, size = generate(case)
    try:
        model = archc.build(archc.loads(text, f"differential-{case}.yaml"), limits={"params": 2_000_000,
                                                                                   "activations": 2_000_000})
    except ArchcError as e:
        return {"status": "skipped", "detail": f"not a valid spec: {e}"}
    rng = random.Random(case + 1)
    torch.manual_seed(case)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    model.eval()
    fused = archc.fuse(model, max_plans=rng.choice([1, 2, 8]))
    order = model.graph.meta["schedules"][False].order

    def allowed(hw):
        try:
            shapes.infer(model.graph, (c, *hw), order)
            return True
        except ShapeError:
            return False

    candidates = [(size, size)] + [(rng.randint(1, 2 * size + 8), rng.randint(1, 2 * size + 8)) for _ in range(12)]
    good = [hw for hw in candidates if allowed(hw)][:4]
    bad = [hw for hw in candidates if not allowed(hw)][:1]
    runs = [(hw, rng.choice([1, 1, 2, 3, 5]), rng.random() < 0.5) for hw in good]
    runs += [runs[rng.randrange(len(runs))] for _ in range(2)] if runs else []
    rng.shuffle(runs)
    checked = 0
    for hw, batch, channels_last in runs:
        x = torch.randn(batch, c, *hw)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            want, got = model(x), fused(x)
        err = ((got - want).abs().max() / want.abs().max().clamp_min(1e-30)).item()
        if not err <= TOLERANCE or got.shape != want.shape:
            return {"status": "mismatch", "detail": f"input {list(x.shape)} channels_last={channels_last}: "
                                                    f"relative error {err:.2e}"}
        checked += 1
    for hw in bad:
        x = torch.randn(1, c, *hw)
        messages = []
        for m in (model, fused):
            try:
                with torch.inference_mode():
                    m(x)
                messages.append(None)
            except ShapeError as e:
                messages.append(str(e))
        if messages[0] is None or messages[0] != messages[1]:
            return {"status": "mismatch", "detail": f"input {list(x.shape)}: eager {messages[0]!r}, fused "
                                                    f"{messages[1]!r}"}
    return {"status": "ok", "detail": f"{checked} inputs compared, {len(bad)} refused alike"}


# -- the campaign: worker processes read case numbers, answer one JSON line each; a crash (abort, segfault)
#    is recorded against the case in flight and the worker restarted ---------------------------------------------

def worker() -> None:
    import json
    import sys
    import traceback

    import torch

    torch.set_num_threads(1)
    for line in sys.stdin:
        case = int(line)
        try:
            result = run_case(case)
        except Exception as e:  # noqa: BLE001 - any exception is a finding, reported with its case
            result = {"status": "error", "detail": f"{type(e).__name__}: {e}"[:500],
                      "trace": traceback.format_exc()[-2000:]}
        print(json.dumps({"case": case, **result}), flush=True)


def campaign(cases, workers: int, env: dict, on_result) -> list[dict]:
    import json
    import os
    import subprocess
    import sys
    import threading

    pending = list(cases)
    lock = threading.Lock()
    results: list[dict] = []

    def take():
        with lock:
            return pending.pop(0) if pending else None

    def one_worker():
        proc = None
        while True:
            case = take()
            if case is None:
                break
            if proc is None:
                proc = subprocess.Popen([sys.executable, __file__, "--worker"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, **env})
            proc.stdin.write(f"{case}\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            if not line:  # the worker died on this case
                proc.stdin.close()
                rc = proc.wait()
                err = proc.stderr.read()[-800:]
                result = {"case": case, "status": "crash", "detail": f"exit {rc}: {err.strip()}"}
                proc = None
            else:
                result = json.loads(line)
            with lock:
                results.append(result)
                on_result(result, results)
        if proc is not None:
            proc.stdin.close()
            proc.wait()

    threads = [threading.Thread(target=one_worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(results, key=lambda r: r["case"])


def report(results: list[dict], seconds: float, workers: int, env: dict) -> str:
    import collections
    import datetime
    import platform

    import torch

    counts = collections.Counter(r["status"] for r in results)
    bad = [r for r in results if r["status"] not in ("ok", "skipped")]
    lines = [
        "# Differential fuzzing of archc.fuse",
        "",
        f"`python bench/fuzz.py --differential --cases {len(results)}`"
        + (f" with {' '.join(f'{k}={v}' for k, v in env.items())}" if env else "")
        + f": {len(results)} random valid-looking specs (bench/fuzz_fused.py), each built, fused and run at up to "
        "four input sizes its layers allow (random batch 1-5, contiguous or channels_last, in random order, "
        "some repeated) against the eager module, and at one size they refuse (both must raise the same "
        "ShapeError).",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; machine: "
        f"{platform.machine()}, {workers} worker processes (1 thread each); torch {torch.__version__}; "
        f"{seconds:.0f} s",
        f"- compared: {counts['ok']}; skipped (the generator wrote a spec archc refuses, a located error): "
        f"{counts['skipped']}; mismatches: {counts['mismatch']}; errors: {counts['error']}; crashes: "
        f"{counts['crash']}",
    ]
    if bad:
        lines += ["", "| case | status | detail |", "|---:|---|---|"]
        lines += [f"| {r['case']} | {r['status']} | {r['detail'][:300].replace('|', '/')} |" for r in bad[:50]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    import argparse
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser(prog="bench/fuzz.py --differential")
    p.add_argument("--cases", type=int, default=2000)
    p.add_argument("--first", type=int, default=0, help="the first case number")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--malloc-check", action="store_true", help="run workers with MALLOC_CHECK_=3 (glibc)")
    p.add_argument("--out", default=None, help="default: bench/results/fuzz_fused[_malloc_check].md")
    p.add_argument("--case", type=int, help="run one case, show its spec and the answer")
    args = p.parse_args(argv)
    if args.case is not None:
        text, c, size = generate(args.case)
        print(text)
        print(run_case(args.case))
        return
    env = {"MALLOC_CHECK_": "3", "MALLOC_PERTURB_": "165"} if args.malloc_check else {}
    out = Path(args.out or root / "bench" / "results" / f"fuzz_fused{'_malloc_check' if env else ''}.md")
    t0 = time.perf_counter()

    def progress(r, results):
        if r["status"] not in ("ok", "skipped"):
            print(f"{r['status'].upper()} case {r['case']}: {r['detail'][:400]}", flush=True)
        if len(results) % 100 == 0:
            print(f"{len(results)} cases, {time.perf_counter() - t0:.0f} s", flush=True)

    results = campaign(range(args.first, args.first + args.cases), args.workers, env, progress)
    text = report(results, time.perf_counter() - t0, args.workers, env)
    sys.path.insert(0, str(root))
    from bench._harness import write_atomic

    write_atomic(out, text)
    print(text)


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--worker"]:
        worker()
    else:
        main()
