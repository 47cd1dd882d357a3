"""Fuzzing campaign: hostile inputs through the command line, in-process, each case bounded in time.

Families (case i belongs to the family whose range holds it; each case is reproducible from its number):
  mutated     the shipped specs with values, keys and lines replaced by hostile ones (huge, NaN, deep, tagged, ...)
  graphs      random documents: ops, constructs and their keys with random values
  yaml        random YAML-ish text: brackets, anchors, aliases, tags, numbers too long or too large
  structures  hostile shapes at random sizes: deep nesting, block chains and fans, repeats, dense blocks, aux heads,
              imports (diamonds, fan-out, cycles, escapes, FIFOs), alias bombs, big tables, long expressions
  checkpoints a valid checkpoint changed: its fields, its spec, its weights, its bytes
  cli         compile with random --set, --limit and -o values
  outputs     every command that writes a file (compile -o, dot -o, view and its default, export and its default in
              each format, compare --plot) at a hostile target: a link to a file outside (a "victim"), a dangling
              link into a site-packages folder, a link to a folder, a folder, a missing folder, a FIFO, /dev/full,
              /proc/self/status, a name ending in /, the spec, its import, a hard link to the spec; or a plain new or
              existing file. Beyond exit 0/2, a case checks that the victim, the spec and its import are unchanged,
              that nothing appeared outside the folder, that no temporary file or folder was left, and that a plain
              target was written and every other one refused

A case passes when `archc` answers with exit code 0 or 2 (every error one located line, no traceback) within
TIMEOUT seconds of CPU time (the machine is shared: its wall clock depends on others' load), and within WALL
seconds of wall-clock time (a case that waits, on a FIFO say, uses no CPU). Usage:
  python bench/fuzz.py [--cases 10000] [--workers 2] [--out bench/results/fuzz.md]
  python bench/fuzz.py --case 1234          # run one case and show what it wrote and what archc answered
  python bench/fuzz.py --differential [--cases 2000] [--malloc-check]   # archc.fuse against the eager module on
                                            # random valid specs (bench/fuzz_fused.py)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TIMEOUT = 10.0  # CPU seconds
WALL = 60.0  # wall-clock seconds
SMALL = ["--limit", "params=20000000", "activations=20000000"]  # compile allocates: keep each case small
FAMILIES = [("mutated", 0.30), ("graphs", 0.25), ("yaml", 0.15), ("structures", 0.12), ("checkpoints", 0.10),
            ("cli", 0.05), ("outputs", 0.03)]
SPECS = sorted((ROOT / "archc" / "zoo").glob("*.yaml")) + sorted((ROOT / "examples").glob("*.yaml"))
HEAD = "archc: 1\nname: fuzz\ninput: [3, 16, 16]\n"

HOSTILE = [0, -1, 1, 3, 7, 2**31, 2**62, 2**62 + 1, 10**30, 10**400, 1e300, -1e300, float("inf"), float("nan"), 0.5,
           -2.5, 1e-320, True, False, None, "", "x", "i", "n", "1 +", "in_channels * 2", "10 ** 30", "(-1) ** 0.5",
           "1e200 ** 2", "2 ** 64", "2 ** 62 * 4", "1 / 0", "7 // 0", "max()", "min(1)", "max([])", "__import__('os')",
           "a.b", "x[0]", "lambda: 1", "-" * 300 + "1", "(" * 120 + "1" + ")" * 120, "1" + " + 1" * 150,
           "relu", "conv", "bottleneck", "a\n", "1\x00", "x" * 500, [], {}, [1, 2], [[0, 1.0], [2]], [0.5],
           {"conv": {"out": 100_000_000, "k": 3}}, {"linear": {"out": 10**7}}, {"bn": {"eps": float("nan")}},
           {"repeat": 10000, "body": {"repeat": 10000, "body": {"relu": None, "when": False}}},
           {"dense": {"layers": 3000, "body": {"conv": {"out": 1, "k": 1}}}},
           {"fractal": {"columns": 8, "body": "relu"}}, {"aux": ["gap"]}]
KEYS = ["out", "k", "stride", "pad", "dilation", "groups", "bias", "table", "p", "eps", "size", "from", "when",
        "names", "body", "layers", "columns", "repeat", "block", "with", "join", "shortcut", "post", "drop_path",
        "input", "params", "blocks", "import", "expect", "zzz"]
OPS = ["conv", "bn", "relu", "tanh", "maxpool", "avgpool", "adaptive_avgpool", "gap", "flatten", "linear",
       "dropout", "drop_path", "identity", "pad_channels", "rbf", "concat", "add", "mean", "lrn", "softmax"]
CONSTRUCTS = ["seq", "repeat", "block", "branches", "residual", "dense", "fractal", "aux"]
TOKENS = ["[", "]", "{", "}", ": ", ", ", "- ", "\n", "  ", "    ", "&a ", "*a ", "&b ", "*b ", "!!int ", "!!float ",
          "!!bool ", "!!str ", "!!set ", "!!python/object:os.system ", "!custom ", "<<: ", "? ", "|\n", ">\n", "#c",
          "relu", "conv", "graph", "archc", "input", "1", "0", "-1", "3.5", "1e309", ".nan", ".inf", "0x1F", "0o17",
          "1:20:30", "9" * 30, "9" * 5000, "'x'", '"\\x00"', '"\\ud800"', "'a\nb'", "~", "null", "yes", "---", "...",
          "%YAML 1.1\n", "\t", "\\", "\"", "'", "`", "@", "\u00e9", "\U0001F600", "\x7f", "\x0c"]


def family_of(case: int, total: int) -> str:
    start = 0
    for name, share in FAMILIES:
        end = start + round(share * total)
        if case < end:
            return name
        start = end
    return FAMILIES[-1][0]


# -- documents ----------------------------------------------------------------------------------------------
def dump(data) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=False)


def paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, prefix + (i,))


def hostile(rng: random.Random, depth: int = 0):
    if depth < 2 and rng.random() < 0.1:
        return random_graph(rng, depth + 1)
    v = rng.choice(HOSTILE)
    return json.loads(json.dumps(v)) if isinstance(v, (dict, list)) else v


def target(data, rng: random.Random):
    """A random value's place in a document: (its parent, its key or index), or None in an empty document."""
    targets = [p for p in paths(data) if p]
    if not targets:
        return None
    path = rng.choice(targets)
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    return parent, path[-1]


def mutate_data(data, rng: random.Random):
    if (place := target(data, rng)) is None:
        return data
    parent, key = place
    path = (key,)
    r = rng.random()
    if r < 0.5:
        parent[path[-1]] = hostile(rng)
    elif r < 0.7 and isinstance(parent, dict):
        parent[rng.choice(KEYS + OPS + CONSTRUCTS)] = hostile(rng)
    elif r < 0.8:
        parent[path[-1]] = [parent[path[-1]]] * rng.randint(2, 4)  # shared: dumped as anchors and aliases
    elif isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent.pop(path[-1])
    return data


def mutate_text(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True) or [""]
    i = rng.randrange(len(lines))
    r = rng.random()
    if r < 0.2:
        del lines[i]
    elif r < 0.35:
        lines.insert(i, lines[i])
    elif r < 0.55:
        pos = rng.randint(0, len(lines[i]))
        lines[i] = lines[i][:pos] + "".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 4))) + lines[i][pos:]
    elif r < 0.7:
        return text[:rng.randint(0, len(text))]
    elif r < 0.85:
        words = lines[i].split(" ")
        j = rng.randrange(len(words))
        words[j] = rng.choice(["!!int abc", "!!float x", "!!bool maybe", "*nope", "&x [*x]", "1e400", "9" * 60,
                               ".nan", "-.inf", "!!binary aGk=", "2001-12-14"])
        lines[i] = " ".join(words)
    else:
        lines.insert(i, "---\n")
    return "".join(lines)


def random_graph(rng: random.Random, depth: int = 0):
    r = rng.random()
    if depth > 4 or r < 0.25:
        return rng.choice(OPS + ["relu"] * 5 + [s for s in HOSTILE if isinstance(s, str)])
    if r < 0.45:
        return [random_graph(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if r < 0.75:
        op = rng.choice(OPS)
        return {op: {rng.choice(KEYS[:12]): hostile(rng, 2) if rng.random() < 0.3 else rng.choice([1, 2, 3, 8, 0])
                     for _ in range(rng.randint(0, 3))} or None}
    if r < 0.85:
        return {f"n{rng.randint(0, 5)}": random_graph(rng, depth + 1)}
    c = rng.choice(CONSTRUCTS)
    value = {"seq": lambda: [random_graph(rng, depth + 1) for _ in range(rng.randint(1, 3))],
             "repeat": lambda: rng.choice([0, 1, 2, 3, 10000, "n", -1]),
             "block": lambda: rng.choice(["b", "nope", "relu"]),
             "branches": lambda: [random_graph(rng, depth + 1) for _ in range(rng.randint(1, 3))],
             "residual": lambda: {"body": random_graph(rng, depth + 1),
                                  "shortcut": rng.choice(["identity", "auto", {"auto": "d"}, "relu"])},
             "dense": lambda: {"layers": rng.choice([1, 2, 3, 50, 3000]), "body": random_graph(rng, depth + 1)},
             "fractal": lambda: {"columns": rng.choice([1, 2, 3, 9]), "body": random_graph(rng, depth + 1)},
             "aux": lambda: random_graph(rng, depth + 1)}[c]()
    item = {c: value}
    if c == "repeat":
        item["body"] = random_graph(rng, depth + 1)
    if rng.random() < 0.2:
        item[rng.choice(["when", "from", "names", "join", "with"])] = rng.choice(HOSTILE[:30])
    return item


def random_yaml(rng: random.Random) -> str:
    body = "".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 300)))
    return (HEAD + "graph:\n" if rng.random() < 0.5 else "") + body


# -- hostile structures ----------------------------------------------------------------------------------------
def nest(n: int, pre: str, post: str, inner: str = "relu") -> str:
    return pre * n + inner + post * n


def structure(rng: random.Random, folder: Path, small: bool = False) -> list[str]:
    """Writes a hostile spec (and what it imports) into folder; the arguments to archc. `small`: only the kinds
    and sizes that take a moment (the test suite's slice)."""
    kinds = ["lists", "seq", "residual", "chain", "fan", "repeats", "dense", "aux", "imports", "bomb", "table",
             "expression", "alias", "fifo", "symlink", "big"]
    kind = rng.choice(kinds[:5] + kinds[8:10] + kinds[11:15] if small else kinds)
    spec = folder / "spec.yaml"
    n = rng.choice([10, 30, 39, 40, 41, 60, 100] if small else [10, 30, 39, 40, 41, 60, 100, 200, 500, 5000])
    if kind == "lists":
        text = HEAD + "graph:\n  - " + nest(n, "[", "]") + "\n"
    elif kind == "seq":
        text = HEAD + "graph:\n  - " + nest(n // 2, "{seq: [", "]}") + "\n"
    elif kind == "residual":
        text = HEAD + "graph:\n  - " + nest(n // 3, "{residual: {body: [", "]}}") + "\n"
    elif kind == "chain":
        n = min(n, 2000)
        text = HEAD + "blocks:\n" + "".join(f"  b{i}:\n    seq: [b{i + 1}]\n" for i in range(n)) + \
            f"  b{n}:\n    seq: [relu]\ngraph:\n  - b0\n"
    elif kind == "fan":
        n = rng.randint(10, 14 if small else 45)
        text = HEAD + "blocks:\n" + "".join(f"  b{i}:\n    seq: [b{i + 1}, b{i + 1}]\n" for i in range(n)) + \
            f"  b{n}:\n    seq: [{{relu: null, when: false}}]\ngraph:\n  - b0\n"
    elif kind == "repeats":
        a, b = rng.choice([10, 1000, 10000]), rng.choice([10, 1000, 10000])
        text = HEAD + f"graph:\n  - {{repeat: {a}, body: {{repeat: {b}, body: {{relu: null, when: false}}}}}}\n"
    elif kind == "dense":
        text = "archc: 1\nname: d\ninput: [1, 1, 1]\ngraph:\n  - {dense: {layers: " + \
            str(rng.choice([10, 500, 1400, 3000, 10000])) + ", body: [{conv: {out: 1, k: 1}}]}}\n"
    elif kind == "aux":
        text = "archc: 1\nname: a\ninput: [4]\ngraph:\n" + \
            "".join(f"  - a{i}: {{aux: [relu]}}\n" for i in range(rng.choice([10, 1000, 10000]))) + "  - relu\n"
    elif kind == "imports":
        libs = rng.randint(2, 9)
        fan = rng.randint(1, 12)
        for i in range(libs):
            imports = [f"l{i + 1}.yaml"] * fan if i + 1 < libs else rng.choice([[], ["l0.yaml"], ["../x.yaml"],
                                                                                ["/etc/passwd.yaml"], ["spec.yaml"]])
            (folder / f"l{i}.yaml").write_text(f"archc: 1\nlibrary: l{i}\nimport: {json.dumps(imports)}\n"
                                               f"blocks:\n  u{i}: {{seq: [relu]}}\n")
        text = HEAD + "import: [l0.yaml, l0.yaml]\ngraph:\n  - u0\n"
    elif kind == "bomb":
        depth = rng.randint(3, 5 if small else 9)
        lines = ["a0: &a0 [relu, relu, relu, relu, relu, relu, relu, relu, relu, relu]"]
        lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, depth)]
        text = "\n".join(lines) + f"\n{HEAD}graph: *a{depth - 1}\n"
    elif kind == "table":
        rows = rng.choice([10, 1000, 50000])
        table = "[" + ", ".join("[0, 1, 2]" for _ in range(rows)) + "]"
        text = HEAD + f"graph:\n  - {{repeat: {rng.choice([1, 100, 10000])}, body: {{conv: {{out: {rows}, k: 1, " \
                      f"table: {table}}}}}}}\n"
    elif kind == "expression":
        text = HEAD + "params: {w: 3}\ngraph:\n  - {conv: {out: '" + \
            rng.choice([h for h in HOSTILE if isinstance(h, str)]) + "', k: 1}}\n"
    elif kind == "alias":
        text = HEAD + rng.choice(["graph: &a [relu, *a]\n", "graph: &a {seq: *a}\n", "graph: [*nope]\n",
                                  "x: &a [relu]\ngraph: {<<: *a}\n", "graph: [{<<: {relu: null}}]\n"])
    elif kind == "fifo":
        os.mkfifo(folder / "lib.yaml")
        text = HEAD + "import: [lib.yaml]\ngraph:\n  - relu\n"
        if rng.random() < 0.5:
            spec.symlink_to(folder / "lib.yaml")
            return ["validate", spec]
    elif kind == "symlink":
        outside = folder.parent / f"outside-{folder.name}"
        outside.mkdir(exist_ok=True)
        (outside / "lib.yaml").write_text("archc: 1\nlibrary: o\nblocks:\n  u: {seq: [sigmoid]}\n")
        (folder / "lib.yaml").symlink_to(outside / "lib.yaml")
        text = HEAD + "import: [lib.yaml]\ngraph:\n  - u\n"
    else:  # big: many items
        count = rng.choice([1000, 20000, 99000])
        text = HEAD + "graph:\n" + "  - relu\n" * count
    if not spec.exists():
        spec.write_text(text)
    if kind == "big":  # building 99,000 modules is measured by bench/big_specs.py, not here
        return ["validate", spec]
    return [rng.choice(["validate", "compile"]), spec]


# -- checkpoints -----------------------------------------------------------------------------------------------
_GOOD: bytes | None = None


def good_checkpoint(folder: Path) -> bytes:
    global _GOOD
    if _GOOD is None:
        from archc import cli

        f = folder / "good.yaml"
        f.write_text(HEAD + "graph:\n  - c: {conv: {out: 4, k: 3}}\n  - b: bn\n  - relu\n  - gap\n  - flatten\n"
                            "  - fc: {linear: {out: 3}}\n")
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli.main(["compile", str(f), "-o", str(folder / "good.pt")]) == 0
        _GOOD = (folder / "good.pt").read_bytes()
    return _GOOD


def checkpoint(rng: random.Random, folder: Path) -> Path:
    import torch

    raw = good_checkpoint(folder)
    out = folder / "c.pt"
    r = rng.random()
    if r < 0.3:  # bytes
        b = bytearray(raw)
        for _ in range(rng.randint(1, 20)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        if rng.random() < 0.3:
            b = b[:rng.randrange(len(b))]
        out.write_bytes(bytes(b))
        return out
    (folder / "good.pt").write_bytes(raw)
    ckpt = torch.load(folder / "good.pt", weights_only=True)
    key = rng.choice(["format", "file", "spec", "params", "state_dict", "spec", "spec", "state_dict"])
    if key == "spec" and rng.random() < 0.7:
        ckpt["spec"] = mutate_text(ckpt["spec"], rng) if rng.random() < 0.5 else \
            dump(mutate_data(__import__("yaml").safe_load(ckpt["spec"]), rng))
        if rng.random() < 0.2:
            ckpt["spec"] = ckpt["spec"].replace("graph:", "import: [../../../etc/x.yaml]\ngraph:")
            ckpt["file"] = "/etc/passwd"
    elif key == "state_dict" and rng.random() < 0.8:
        sd = dict(ckpt["state_dict"])
        k = rng.choice(list(sd))
        choice = rng.random()
        if choice < 0.25:
            del sd[k]
        elif choice < 0.5:
            sd[k] = torch.zeros(rng.randint(0, 5))
        elif choice < 0.6:
            sd[k] = sd[k].to(torch.int64)
        elif choice < 0.75:
            sd[k] = rng.choice([None, 3, "x", [1], {"a": 1}])
        else:
            sd[rng.choice(["extra", 3, ""])] = torch.zeros(1)
        ckpt["state_dict"] = sd
    elif key == "params" and rng.random() < 0.8:
        ckpt["params"] = {rng.choice(["classes", "x", 3]): hostile(rng)}
    else:
        ckpt[key] = hostile(rng) if rng.random() < 0.8 else None
        if rng.random() < 0.2:
            del ckpt[key]
    try:
        torch.save(ckpt, out)
    except Exception:  # a value torch.save cannot write: save the plain dict instead
        torch.save({"format": "archc-checkpoint-1"}, out)
    return out


# -- output targets --------------------------------------------------------------------------------------------
OUT_SPEC = "archc: 1\nname: fuzz\ninput: [3, 8, 8]\nimport: [lib.yaml]\ngraph:\n" \
           "  - c: {conv: {out: 2, k: 3}}\n  - u\n  - gap\n  - flatten\n"
OUT_LIB = "archc: 1\nlibrary: l\nblocks:\n  u: {seq: [relu]}\n"
# command: (argv before the target, the suffix of its -o target, its default target in the current folder or None)
OUT_COMMANDS = {"compile": (["compile", "spec.yaml", *SMALL, "-o"], ".pt", None),
                "dot": (["dot", "spec.yaml", "-o"], ".dot", None),
                "view": (["view", "spec.yaml", "-o"], ".html", None),
                "view-default": (["view", "spec.yaml"], None, "spec.html"),
                "plot": (["compare", "spec.yaml", "--plot"], ".svg", None),
                **{f"export-{fmt}": (["export", "spec.yaml", "--format", fmt, "-o"], ext, None)
                   for fmt, ext in (("onnx", ".onnx"), ("pt2", ".pt2"), ("torchscript", ".pt"))},
                **{f"export-{fmt}-default": (["export", "spec.yaml", "--format", fmt], None, f"spec{ext}")
                   for fmt, ext in (("onnx", ".onnx"), ("pt2", ".pt2"), ("torchscript", ".pt"))}}
PLANTED = ["link", "dangling", "link-dir", "folder", "fifo", "hardlink-spec", "new", "existing"]  # at a name
NAMED = ["missing", "dev-full", "proc", "slash", "spec", "lib"]  # only an explicit -o can name these


def output_case(rng: random.Random, folder: Path) -> tuple[list[str], object]:
    """A command writing a file at a hostile target in `folder` (the current folder while it runs), and a check of
    what it did: after(rc, first line) -> the promises it broke."""
    command = rng.choice([c for c in OUT_COMMANDS if c != "plot" or _has("matplotlib")
                          if "onnx" not in c or _has("onnxscript")])
    argv, suffix, default = OUT_COMMANDS[command]
    kind = rng.choice(PLANTED + (NAMED if default is None else []))
    outside = folder.parent / f"outside-{folder.name}"
    site = outside / "site-packages"
    site.mkdir(parents=True, exist_ok=True)
    victim = outside / "victim.txt"
    victim.write_text("precious\n")
    (folder / "spec.yaml").write_text(OUT_SPEC)
    (folder / "lib.yaml").write_text(OUT_LIB)
    name = default or f"out{suffix}"
    target = {"missing": f"no/{name}", "dev-full": "/dev/full", "proc": "/proc/self/status", "slash": f"{name}/",
              "spec": rng.choice(["spec.yaml", str(folder / "spec.yaml")]), "lib": "lib.yaml"}.get(kind, name)
    at = folder / name
    if kind == "link":
        at.symlink_to(victim)
    elif kind == "dangling":
        at.symlink_to(site / "fuzz.pth")
    elif kind == "link-dir":
        at.symlink_to(outside, target_is_directory=True)
    elif kind == "folder":
        at.mkdir()
    elif kind == "fifo":
        os.mkfifo(at)
    elif kind == "hardlink-spec":
        at.hardlink_to(folder / "spec.yaml")
    elif kind == "existing":
        at.write_text("old")
    argv = argv + ([] if default else [target])

    def after(rc, first: str) -> list[str]:
        broken = []
        if victim.read_text() != "precious\n" or sorted(p.name for p in outside.iterdir()) != ["site-packages",
                                                                                               "victim.txt"]:
            broken.append("something was written outside the folder")
        if any(site.iterdir()):
            broken.append("a file appeared in site-packages")
        if (folder / "spec.yaml").read_text() != OUT_SPEC or (folder / "lib.yaml").read_text() != OUT_LIB:
            broken.append("an input was overwritten")
        if any(".tmp" in p.name for p in folder.iterdir()) or (folder / "no").exists():
            broken.append("a temporary file or a folder was left")
        if kind in ("new", "existing"):
            if rc != 0 or not at.is_file() or at.is_symlink() or at.stat().st_size < 10:
                broken.append(f"a plain target was not written (exit {rc}: {first})")
        elif rc != 2 or not first.startswith("cannot write "):
            broken.append(f"a {kind} target was not refused (exit {rc}: {first})")
        return broken

    return argv, after


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# -- one case -----------------------------------------------------------------------------------------------
def command(cmd: str, spec) -> list[str]:
    return [cmd, str(spec), *(SMALL if cmd == "compile" else [])]


class Hang(BaseException):
    """A case past TIMEOUT (BaseException: no `except Exception` of archc's may take it for its own)."""


def _alarm(signum, frame):
    raise Hang("cpu" if signum == signal.SIGPROF else "wall")


def make_case(case: int, total: int, folder: Path, small: bool = False) -> tuple[str, list[str] | tuple]:
    """The family and what to run: argv for the command line, or ("checkpoint", path)."""
    rng = random.Random(case)
    family = family_of(case, total)
    spec = folder / "spec.yaml"
    if family == "mutated":
        source = rng.choice(SPECS)
        text = source.read_text()
        if rng.random() < 0.6:
            import yaml

            data = yaml.safe_load(text)
            for _ in range(rng.randint(1, 3)):
                data = mutate_data(data, rng)
            text = dump(data)
        else:
            for _ in range(rng.randint(1, 3)):
                text = mutate_text(text, rng)
        if "import" in text:  # the library it names, beside it
            (folder / "lib").mkdir(exist_ok=True)
            shutil.copy(ROOT / "archc" / "zoo" / "lib" / "resnet.yaml", folder / "lib" / "resnet.yaml")
        spec.write_text(text, errors="surrogatepass")
        return family, command(rng.choice(["validate", "validate", "compile"]), spec)
    if family == "graphs":
        doc = {"archc": 1, "name": "fuzz", "input": rng.choice([[3, 16, 16], [8], [3, 32], [0], "x"]),
               "graph": [random_graph(rng) for _ in range(rng.randint(1, 6))]}
        if rng.random() < 0.3:
            doc["blocks"] = {"b": {"args": {"w": rng.choice(["int", 3, "x"])}, "seq": [random_graph(rng)]}}
        spec.write_text(dump(doc))
        return family, command(rng.choice(["validate", "compile"]), spec)
    if family == "yaml":
        spec.write_bytes(random_yaml(rng).encode("utf-8", "surrogatepass"))
        return family, ["validate", str(spec)]
    if family == "structures":
        return family, command(*structure(rng, folder, small))
    if family == "checkpoints":
        return family, ("checkpoint", str(checkpoint(rng, folder)))
    if family == "outputs":
        return family, ("outputs", *output_case(rng, folder))
    # cli: odd option values
    source = rng.choice([p for p in SPECS if p.stem in ("lenet5", "nin_cifar10", "resnet18", "squeezenet1_1")])
    shutil.copy(source, spec)
    argv = ["compile", str(spec), *SMALL]
    r = rng.random()
    if r < 0.4:
        argv += ["--set", f"{rng.choice(['classes', 'width', 'x', ''])}=" + str(rng.choice(
            ["10", "1.0e+300", ".nan", "!!int abc", "99999999999999999999999", "[1, 2]", "{a: 1}", "&a [*a]",
             "true", "-3", "0", "'x'", "", "9" * 5000, "1e9"]))]
    elif r < 0.7:
        argv += ["--limit", rng.choice(["params", "nodes", "steps", "bytes", "zzz", "activations"]) + "=" +
                 rng.choice(["1", "0", "-5", "1e9", "x", "5e20", "10", "100"])]
    else:
        target = rng.choice([str(folder), str(folder / "no" / "x.pt"), "/dev/full", str(spec), str(folder / "m.pt"),
                             "/proc/self/status", str(folder / "m.pt") + "/x"])
        argv += ["-o", target]
    return family, argv


def run_case(case: int, total: int, folder: Path, small: bool = False) -> dict:
    """Make case `case` in `folder` and run it; its family, exit code, seconds and, for failures, what was said."""
    from archc import cli
    from archc.checkpoint import load
    from archc.errors import ArchcError

    t0 = time.perf_counter()
    out, err = io.StringIO(), io.StringIO()
    family = family_of(case, total)
    broken: list[str] = []
    cwd = os.getcwd()
    signal.signal(signal.SIGALRM, _alarm)
    signal.signal(signal.SIGPROF, _alarm)
    signal.setitimer(signal.ITIMER_PROF, TIMEOUT)  # CPU time of this process
    signal.setitimer(signal.ITIMER_REAL, WALL)
    cpu0 = time.process_time()
    try:
        family, what = make_case(case, total, folder, small)
        made = time.perf_counter()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            if what[0] == "checkpoint":
                try:
                    load(what[1], limits={"params": 20_000_000, "activations": 20_000_000})
                    rc = 0
                except ArchcError as e:
                    print(str(e), file=sys.stderr)
                    rc = 2
            elif what[0] == "outputs":  # run in the case's folder (default outputs land there), then checked
                os.chdir(folder)
                rc = cli.main(list(what[1]))
                broken = what[2](rc, err.getvalue().split("\n")[0])
            else:
                try:
                    rc = cli.main(list(what))
                except SystemExit as e:  # argparse's own usage errors
                    rc = e.code if isinstance(e.code, int) else 2
        seconds = time.perf_counter() - made
    except Hang as e:
        rc, seconds = f"hang ({e.args[0]})", time.perf_counter() - t0
    except BaseException as e:  # a crash escaping everything: that is what the campaign looks for
        rc, seconds = "crash", time.perf_counter() - t0
        err.write(f"{type(e).__name__}: {e}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.setitimer(signal.ITIMER_PROF, 0)
        os.chdir(cwd)
    cpu = time.process_time() - cpu0
    text = err.getvalue() + "".join(f"\nbroken: {b}" for b in broken)
    lines = [line for line in text.splitlines() if line]
    ok = rc in (0, 2) and "Traceback" not in text and (rc == 0 or bool(lines)) and not broken
    return {"case": case, "family": family, "rc": rc, "seconds": round(seconds, 4), "cpu": round(cpu, 4), "ok": ok,
            "first": lines[0].replace(f"{folder}/", "")[:160] if lines else "", "said": "" if ok else text[-400:]}


def _worker(args) -> dict:
    case, total, base = args
    folder = Path(tempfile.mkdtemp(prefix=f"c{case}-", dir=base))
    try:
        return run_case(case, total, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(folder.parent / f"outside-{folder.name}", ignore_errors=True)


def _init() -> None:
    import torch  # noqa: F401  (once per worker, not per case)

    import archc.checkpoint  # noqa: F401
    import archc.cli  # noqa: F401,F811
    import archc.export  # noqa: F401

    for optional in ("onnx", "onnxscript", "onnxruntime", "matplotlib.figure"):  # imported once, not in a case's time
        try:
            __import__(optional)
        except ImportError:
            pass
    torch.set_num_threads(1)


def campaign(cases: range, total: int, workers: int, base: Path, on_result=None) -> list[dict]:
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    results = []
    with ctx.Pool(workers, initializer=_init, maxtasksperchild=200) as pool:
        for r in pool.imap_unordered(_worker, [(c, total, str(base)) for c in cases], chunksize=4):
            results.append(r)
            if on_result:
                on_result(r, results)
    return sorted(results, key=lambda r: r["case"])


def report(results: list[dict], seconds: float, workers: int) -> str:
    from bench._harness import environment, markdown_table, spread

    rows = []
    for name, _ in FAMILIES:
        rs = [r for r in results if r["family"] == name]
        if not rs:
            continue
        med, p20, p80 = spread([r["seconds"] for r in rs])
        rows.append([name, len(rs), sum(r["rc"] == 0 for r in rs), sum(r["rc"] == 2 for r in rs),
                     sum(not r["ok"] for r in rs), f"{med * 1e3:.0f} ({p20 * 1e3:.0f}..{p80 * 1e3:.0f})",
                     f"{max(r['cpu'] for r in rs):.2f}", f"{max(r['seconds'] for r in rs):.2f}"])
    slow = sorted(results, key=lambda r: -r["cpu"])[:10]
    bad = [r for r in results if not r["ok"]]
    env = environment(workers=workers)
    lines = ["# Fuzzing campaign (bench/fuzz.py)", "",
             " ".join(f"{k}: {v};" for k, v in env.items()),
             "", f"{len(results)} cases in {seconds:.0f} s; a case passes when archc exits 0 or 2 (errors as located "
                 f"lines, no traceback) within {TIMEOUT:.0f} s of CPU time and {WALL:.0f} s of wall-clock time. "
                 f"Failures: {len(bad)}. Machine load average at the end: {os.getloadavg()[0]:.1f}.", "",
             markdown_table(["family", "cases", "exit 0", "exit 2", "failed", "wall ms median (20%..80%)",
                             "most CPU s", "most wall s"], rows), "",
             "Costliest cases (rerun one: `python bench/fuzz.py --case N --total T`):", "",
             markdown_table(["case", "family", "exit", "CPU s", "wall s", "first line"],
                            [[r["case"], r["family"], r["rc"], r["cpu"], r["seconds"], r["first"][-90:]]
                             for r in slow])]
    if bad:
        lines += ["", "Failures:", ""] + [f"- case {r['case']} ({r['family']}, {r['rc']}): "
                                          f"{r['said'][-200:]!r}" for r in bad[:50]]
    return "\n".join(lines) + "\n"


def main() -> None:
    if "--differential" in sys.argv[1:]:  # archc.fuse against the eager module on random valid specs
        from bench import fuzz_fused

        return fuzz_fused.main([a for a in sys.argv[1:] if a != "--differential"])
    p = argparse.ArgumentParser()
    p.add_argument("--cases", type=int, default=10_000)
    p.add_argument("--total", type=int, help="the campaign size the case numbers belong to (default: --cases)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "fuzz.md"))
    p.add_argument("--case", type=int, help="run one case, show its input and the answer")
    args = p.parse_args()
    total = args.total or args.cases
    base = Path(tempfile.mkdtemp(prefix="archc-fuzz-"))
    try:
        if args.case is not None:
            folder = base / "case"
            folder.mkdir()
            _init()
            result = run_case(args.case, total, folder)
            for f in sorted(folder.iterdir()):
                if f.is_file() and f.suffix == ".yaml":
                    print(f"--- {f.name}\n{f.read_text(errors='replace')[:3000]}")
            print(json.dumps(result, indent=1))
            return
        from bench._harness import write_atomic

        t0 = time.perf_counter()

        def progress(r, results):
            if not r["ok"]:
                print(f"FAIL case {r['case']} {r['family']} {r['rc']}: {r['said'][-300:]!r}", flush=True)
            if len(results) % 500 == 0:
                print(f"{len(results)} cases, {time.perf_counter() - t0:.0f} s", flush=True)
                write_atomic(Path(args.out), report(sorted(results, key=lambda r: r["case"]),
                                                    time.perf_counter() - t0, args.workers))

        results = campaign(range(args.cases), total, args.workers, base, progress)
        text = report(results, time.perf_counter() - t0, args.workers)
        write_atomic(Path(args.out), text)
        print(text)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
