"""`archc train` / `archc.train`: learning on real data (scikit-learn's digits written as an ImageFolder, and as
torchvision's MNIST files), resume equal to an uninterrupted run, DDP under torchrun equal to one process, the
aux heads' weighted losses, mixed precision on the CPU, what a run writes and what loads it, and every error a
user can cause as one line, exit 2, nothing written."""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

pytest.importorskip("torchvision")
pytest.importorskip("safetensors")
pytest.importorskip("sklearn")

import archc  # noqa: E402
from archc.cli import main  # noqa: E402
from archc.training import config as config_  # noqa: E402
from archc.training import data as data_  # noqa: E402
from archc.training import loop  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import train_data  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "archc" / "zoo"
TINY = """archc: 1
name: tiny
input: [1, 8, 8]
params: {classes: 4, p: 0.0, aux_weight: 0.3}
graph:
  - conv1: {conv: {out: 8, k: 3, pad: 1}}
  - bn1: bn
  - relu: relu
  - block: {residual: {body: [{conv: {out: 8, k: 3, pad: 1}}, relu], drop_path: p}}
  - pool: {maxpool: {k: 2}}
  - head: {aux: [flatten, {linear: {out: classes}}], loss_weight: aux_weight}
  - flatten: flatten
  - drop: {dropout: {p: p}}
  - fc: {linear: {out: classes}}
"""
# No BatchNorm: under DDP each process normalises its own half of the batch, so only a BN-free network computes
# on two processes exactly what it computes on one.
PLAIN = """archc: 1
name: plain
input: [1, 8, 8]
params: {classes: 10}
graph:
  - conv1: {conv: {out: 8, k: 3, pad: 1}}
  - relu: relu
  - pool: {maxpool: {k: 2}}
  - conv2: {conv: {out: 16, k: 3, pad: 1}}
  - relu2: relu
  - flatten: flatten
  - fc: {linear: {out: classes}}
"""
QUIET = {"log": lambda *a: None}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: these batches are tiny, and two threads spinning on a shared 2-core machine made each
    step ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("specs")
    for name, text in (("tiny", TINY), ("plain", PLAIN)):
        (folder / f"{name}.yaml").write_text(text)
    return folder


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """600 of the digits (about 60 per class) as one folder of class folders."""
    return train_data.write_image_folder(tmp_path_factory.mktemp("digits") / "digits", 600)


@pytest.fixture(scope="module")
def few(tmp_path_factory):
    """200 of the digits: 180 to train on (5 batches of 32), 20 to validate."""
    return train_data.write_image_folder(tmp_path_factory.mktemp("few") / "few", 200)


def train(spec, data, tmp_path, **options):
    options = {"epochs": 2, "batch": 32, "opt": "adamw", "augment": "none", "workers": 0, "progress": False,
               "out": str(tmp_path / "run"), **QUIET, **options}
    return archc.train(str(spec), str(data), **options)


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys):
    """archc's command line in this process (starting Python, torch and torchvision again costs seconds here), in
    the folder `cwd`; returns its exit code and output."""
    def run(*args, cwd=None):
        before = os.getcwd()
        capsys.readouterr()
        try:
            os.chdir(cwd or ROOT)
            rc = main([str(a) for a in args])
        finally:
            os.chdir(before)
        out = capsys.readouterr()
        return Ran(rc, out.out, out.err)

    return run


# -- learning ----------------------------------------------------------------------------------------------


def test_tiny_spec_learns_digits_and_the_classes_come_from_the_data(specs, digits, tmp_path):
    r = train(specs / "tiny.yaml", digits, tmp_path, epochs=4, lr=3e-3)
    assert r.classes == [str(i) for i in range(10)]
    assert r.module(torch.zeros(2, 1, 8, 8)).shape == (2, 10)  # the spec says classes: 4; the data has 10
    losses = [s["loss"] for s in r.steps]
    assert losses[-1] < 0.5 * losses[0]
    assert r.epochs[-1]["val_top1"] > 80, r.epochs
    assert r.best["val_top1"] == max(e["val_top1"] for e in r.epochs)


@pytest.mark.slow
def test_lenet5_learns_the_digits(tmp_path):
    """archc/zoo/lenet5.yaml as written (32x32 input: the 8x8 digits resized), all 1,797 digits, 300 steps."""
    data = train_data.write_image_folder(tmp_path / "digits")
    r = archc.train("archc/zoo/lenet5.yaml", str(data), epochs=6, batch=32, opt="adamw", augment="none", workers=0,
                    progress=False, save=False, **QUIET)
    assert r.epochs[-1]["step"] == 300
    assert r.best["val_top1"] >= 95, r.epochs


def test_named_dataset_mnist_from_its_files(specs, tmp_path):
    """--data mnist: torchvision's MNIST class reading the files where the cache is (made here from the digits, so
    nothing is downloaded); its mean and std; 28x28 images resized to the spec's 8x8."""
    root = train_data.write_mnist(tmp_path / "cache", 256, 64)
    r = archc.train(str(specs / "plain.yaml"), "mnist", data_root=str(root), epochs=1, batch=32, opt="adamw",
                    workers=0, progress=False, out=str(tmp_path / "run"), **QUIET)
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["mean"] == [0.1307] and info["std"] == [0.3081] and info["augment"] == "none"
    assert info["images"] == {"train": 256, "val": 64}
    assert r.classes[0] == "0 - zero" and len(r.classes) == 10
    assert r.epochs[0]["step"] == 8


# -- resume, DDP ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_resume_equals_uninterrupted_training(specs, few, tmp_path, workers):
    """Dropout, drop-path, augmentation in worker processes, EMA, warm-up: stopped after epoch 1 and resumed, the
    run logs the same loss at every step and ends with the same weights, bit for bit."""
    opts = dict(epochs=3, log_every=1, warmup=0.5, ema=0.9, augment="pad-crop-flip", workers=workers)
    params = {"p": 0.2}
    whole = train(specs / "tiny.yaml", few, tmp_path / "a", params=params, **opts)
    first = train(specs / "tiny.yaml", few, tmp_path / "b", params=params, stop_after=1, **opts)
    assert len(first.epochs) == 1
    last = tmp_path / "b" / "run" / "last.pt"
    rest = archc.train(resume=str(last), progress=False, **QUIET)  # the run's own spec, data and settings
    assert rest.folder == last.parent
    assert [s["loss"] for s in rest.steps] == [s["loss"] for s in whole.steps]
    assert [e["val_loss"] for e in rest.epochs] == [e["val_loss"] for e in whole.epochs]
    a, b = whole.module.state_dict(), rest.module.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(line) for line in (last.parent / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if r["kind"] == "epoch"] == [1, 2, 3]


@pytest.mark.slow
def test_torchrun_two_processes_equal_one_process(specs, digits, tmp_path, cli):
    """`torchrun --nproc_per_node=2 -m archc.cli train` (gloo on the CPU) takes the same steps as one process on
    the same global batch: the same losses and weights (to float rounding), rank 0 alone writes the run."""
    args = ["train", specs / "plain.yaml", "--data", digits, "--epochs", "2", "--batch", "32", "--opt", "sgd",
            "--lr", "0.05", "--augment", "none", "--workers", "0", "--log-every", "1", "--no-progress"]
    one = cli(*args, "--out", tmp_path / "one")
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "archc.cli", *map(str, args), "--out", str(tmp_path / "two")],
                         capture_output=True, text=True, cwd=ROOT, timeout=600,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("epoch 2/2:") == 1  # rank 0 alone reports
    assert "x 2 processes" in two.stdout
    rows = {k: [json.loads(x) for x in (tmp_path / k / "metrics.jsonl").read_text().splitlines()]
            for k in ("one", "two")}
    assert len(rows["one"]) == len(rows["two"]) > 20
    for a, b in zip(rows["one"], rows["two"]):
        assert a["kind"] == b["kind"] and a.get("step") == b.get("step")
        key = "loss" if a["kind"] == "step" else "val_loss"
        assert a[key] == pytest.approx(b[key], rel=1e-4)
    from safetensors.torch import load_file

    w1, w2 = (load_file(tmp_path / k / "last.safetensors") for k in ("one", "two"))
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-4, atol=1e-5)


# -- the loss, mixed precision, options ------------------------------------------------------------------------


def test_aux_heads_contribute_their_weighted_loss(specs):
    model = archc.build(archc.load(str(specs / "tiny.yaml"), classes=10)).train()
    weights = [o.loss_weight for o in model.graph.outputs if o.aux]
    assert weights == [0.3]
    torch.manual_seed(0)
    x, y = torch.randn(6, 1, 8, 8), torch.randint(0, 10, (6,))
    main, aux = model(x)
    loss, logits = loop.classification_loss((main, aux), y, [1.0, 1.0], weights)
    ce = torch.nn.functional.cross_entropy
    torch.testing.assert_close(loss, ce(main, y) + 0.3 * ce(aux, y))
    assert torch.equal(logits, main)
    loss.backward()
    assert model.get_submodule("head.1").weight.grad.abs().sum() > 0  # the head learns from its own loss
    smoothed, _ = loop.classification_loss((main, aux), y, [1.0, 1.0], weights, 0.1)
    torch.testing.assert_close(smoothed, ce(main, y, label_smoothing=0.1) + 0.3 * ce(aux, y, label_smoothing=0.1))


def test_googlenet_declares_its_aux_weights():
    """The paper's 0.3 for both heads (Szegedy et al. 2014, section 5)."""
    for spec in ("archc/zoo/googlenet.yaml", "archc/zoo/googlenet_2014.yaml"):
        outputs = archc.analyze(spec).graph.outputs
        assert [o.loss_weight for o in outputs if o.aux] == [0.3, 0.3], spec


def test_an_aux_head_weighted_zero_does_not_learn(specs, digits, tmp_path):
    torch.manual_seed(0)  # as archc.train seeds (seed 0) before it builds the module: the same initial weights
    r0 = archc.build(archc.load(str(specs / "tiny.yaml"), classes=10)).state_dict()
    r = train(specs / "tiny.yaml", digits, tmp_path, epochs=1, params={"aux_weight": 0.0}, wd=0.0)
    after = r.module.state_dict()
    assert torch.equal(after["head.1.weight"], r0["head.1.weight"])  # no loss through it: untouched
    assert not torch.equal(after["fc.weight"], r0["fc.weight"])


def test_lenet5_distances_are_negated_into_logits():
    """LeNet-5's output layer gives distances (rbf: smaller is the better class): the loss reads their negatives,
    which is the paper's criterion (eq. 9, without its constant j)."""
    model = archc.build("archc/zoo/lenet5.yaml")
    signs = [-1.0 if loop.DISTANCE in loop.OPS[model.graph[o.node].op] else 1.0 for o in model.graph.outputs]
    assert signs == [-1.0]


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_on_the_cpu(specs, digits, tmp_path, amp, monkeypatch):
    seen = []
    real = torch.nn.Conv2d.forward

    def conv(self, x):
        out = real(self, x)
        seen.append(out.dtype)
        return out

    monkeypatch.setattr(torch.nn.Conv2d, "forward", conv)
    r = train(specs / "tiny.yaml", digits, tmp_path, epochs=1, amp=amp, log_every=2)
    assert {torch.bfloat16 if amp == "bf16" else torch.float16} == set(seen)
    assert all(torch.isfinite(torch.tensor(s["loss"])) for s in r.steps)
    assert r.steps[-1]["loss"] < r.steps[0]["loss"]
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert bool(state["scaler"]) == (amp == "fp16")  # a GradScaler only where fp16 needs one


def test_schedules_warm_up_then_follow_their_shape():
    p = torch.nn.Parameter(torch.zeros(1))

    def lrs(**kw):
        cfg = config_.config(epochs=4, lr=1.0, **kw)
        opt = torch.optim.SGD([p], lr=cfg.peak_lr)
        sched = loop.schedule(opt, cfg, 10)
        out = []
        for _ in range(40):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out

    cos = lrs(sched="cosine", warmup=1)
    assert cos[0] == pytest.approx(0.01) and cos[10] == pytest.approx(1.0) and max(cos) == pytest.approx(1.0)
    assert cos[25] == pytest.approx(0.5, abs=0.01) and cos[39] < 0.01
    assert lrs(sched="step", step_epochs=2, gamma=0.1)[19:21] == pytest.approx([1.0, 0.1])
    one = lrs(sched="onecycle", warmup=1)
    assert max(one) == pytest.approx(1.0) and one.index(max(one)) in (9, 10) and one[-1] < 1e-3
    assert set(lrs(sched="constant")) == {1.0}


def test_weight_decay_spares_biases_and_normalisation(specs):
    module = archc.build(str(specs / "tiny.yaml"))
    names = {id(p): n for n, p in module.named_parameters()}
    groups = loop.param_groups(module, 0.1)
    decayed = {names[id(p)] for g in groups if g["weight_decay"] for p in g["params"]}
    assert decayed == {"conv1.weight", "block.0.weight", "head.1.weight", "fc.weight"}
    assert sum(len(g["params"]) for g in groups) == len(names)


@pytest.mark.slow
def test_compile_option_trains(specs, digits, tmp_path, monkeypatch):
    """--compile wraps the module in torch.compile (here with the aot_eager backend: Inductor's C++ build takes
    minutes on this machine); training and validation run through it."""
    calls = []
    real = torch.compile

    def compile_(model, **kw):
        calls.append(type(model).__name__)
        return real(model, backend="aot_eager", **kw)

    monkeypatch.setattr(torch, "compile", compile_)
    r = train(specs / "plain.yaml", digits, tmp_path, epochs=1, compile=True)
    assert calls == ["ArchcModule"]
    assert r.epochs[0]["val_top1"] > 15


def test_sgd_options_clip_and_smoothing_reach_torch(specs, digits, tmp_path, monkeypatch):
    """Nesterov SGD, one-cycle, label smoothing, gradient clipping, channels_last: each reaches the PyTorch part
    that does it."""
    clipped, smoothing = [], []
    real_clip, real_ce = torch.nn.utils.clip_grad_norm_, torch.nn.functional.cross_entropy
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda p, n, *a, **k: clipped.append(n) or
                        real_clip(p, n, *a, **k))
    monkeypatch.setattr(loop.F, "cross_entropy", lambda *a, **k: smoothing.append(k.get("label_smoothing", 0.0))
                        or real_ce(*a, **k))
    r = train(specs / "plain.yaml", digits, tmp_path, epochs=2, opt="sgd", lr=0.05, nesterov=True,
              sched="onecycle", label_smoothing=0.1, clip_grad=1.0, channels_last=True, save=False, log_every=1)
    steps = 2 * (540 // 32)
    assert clipped == [1.0] * steps
    assert smoothing.count(0.1) == steps and set(smoothing) == {0.1, 0.0}  # validation: plain cross-entropy
    lrs = [s["lr"] for s in r.steps]
    assert max(lrs) == pytest.approx(0.05, rel=0.01) and lrs[-1] < 1e-3
    assert r.epochs[-1]["val_top1"] > 50


def test_progress_bar_on_a_terminal(specs, digits, tmp_path, monkeypatch):
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    train(specs / "plain.yaml", digits, tmp_path, epochs=1, progress=True, save=False, log_every=4)
    bar = term.getvalue()
    assert "epoch 1/1" in bar and "16/16" in bar and "img/s" in bar and "loss=" in bar and "lr=" in bar


# -- what a run writes, and what reads it -------------------------------------------------------------------


def test_a_run_folder_and_its_weights_load_elsewhere(specs, digits, tmp_path, cli):
    spec = specs / "tiny.yaml"
    r = train(spec, digits, tmp_path, epochs=2, ema=0.5, plot=True)
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == sorted(
        ["run.json", "metrics.jsonl", "last.safetensors", "best.safetensors", "last.pt", "curves.png"])
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [x for x in rows if x["kind"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2] and all("raw_val_top1" in e for e in epochs)
    assert epochs == r.epochs
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from safetensors import safe_open
    from safetensors.torch import load_file

    weights = load_file(run / "last.safetensors")
    mine = r.module.state_dict()  # the EMA's: what was validated
    assert weights.keys() == mine.keys() and all(torch.equal(weights[k], mine[k]) for k in mine)
    with safe_open(run / "best.safetensors", "pt") as f:
        meta = f.metadata()
    assert json.loads(meta["classes"]) == r.classes and json.loads(meta["params"]) == {"classes": 10}
    p = cli("compile", spec, "--set", "classes=10", "--weights", run / "best.safetensors")
    assert p.returncode == 0, p.stderr
    n = len(mine)
    assert f"{n} of the module's {n} tensors loaded" in p.stdout
    p = cli("export", spec, "--set", "classes=10", "--format", "pt2", "--weights", run / "best.safetensors",
            "-o", tmp_path / "tiny.pt2")
    assert p.returncode == 0, p.stderr
    model = archc.build(str(spec), weights=str(run / "best.safetensors"), classes=10)
    assert model.weights_report.complete


def test_starting_from_weights_reports_them(specs, digits, tmp_path):
    first = train(specs / "tiny.yaml", digits, tmp_path / "a", epochs=1)
    lines = []
    train(specs / "tiny.yaml", digits, tmp_path / "b", epochs=1, weights=str(first.folder / "last.safetensors"),
          log=lines.append)
    assert any("tensors loaded" in line for line in lines)


@pytest.mark.slow
def test_cli_trains_and_prints_each_epoch(specs, few, tmp_path):
    """The command itself, in a process of its own."""
    p = command("train", specs / "tiny.yaml", "--data", few, "--epochs", "1", "--batch", "64", "--opt", "adamw",
            "--augment", "none", "--workers", "0", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "epoch 1/1: train loss" in p.stdout and "top-5" in p.stdout
    assert (tmp_path / "runs" / "tiny" / "best.safetensors").exists()
    p = command("train", specs / "tiny.yaml", "--data", few, "--epochs", "1", "--batch", "64", "--workers", "0",
                "--augment", "none", cwd=tmp_path)
    assert p.returncode == 0 and (tmp_path / "runs" / "tiny-2" / "last.pt").exists()  # a new run, a new folder


def test_split_per_class_is_stratified_and_seeded():
    targets = [0] * 50 + [1] * 10 + [2] * 2
    train_idx, val_idx = data_.split_per_class(targets, 0.2, seed=3)
    assert sorted(train_idx + val_idx) == list(range(62)) and not set(train_idx) & set(val_idx)
    assert [sum(targets[i] == c for i in val_idx) for c in range(3)] == [10, 2, 1]
    assert data_.split_per_class(targets, 0.2, seed=3) == (train_idx, val_idx)
    assert data_.split_per_class(targets, 0.2, seed=4) != (train_idx, val_idx)


def test_train_and_val_folders_are_the_splits(specs, tmp_path):
    data = train_data.write_image_folder(tmp_path / "d", 300, split=True)
    r = train(specs / "plain.yaml", data, tmp_path, epochs=1, save=False)
    assert r.epochs[0]["step"] == 240 // 32


# -- errors: one located line, exit 2, nothing written ---------------------------------------------------------


def command(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "archc.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)


def fails(cli, *args, cwd) -> str:
    p = cli("train", *args, cwd=cwd)
    assert p.returncode == 2, (p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert not (cwd / "runs").exists()  # nothing written
    return lines[0]


def test_errors_about_the_data(specs, tmp_path, cli):
    work = tmp_path / "work"
    work.mkdir()
    spec = specs / "plain.yaml"
    assert "no such folder" in fails(cli, spec, "--data", tmp_path / "nope", cwd=work)
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(b"")
    assert "no class folders" in fails(cli, spec, "--data", tmp_path / "flat", cwd=work)
    empty = train_data.write_image_folder(tmp_path / "empty", 40)
    (empty / "ghost").mkdir()
    line = fails(cli, spec, "--data", empty, cwd=work)
    assert line.startswith(f"data {empty / 'ghost'}: class 'ghost' has no images")
    rgb = train_data.write_image_folder(tmp_path / "rgb", 40, mode="RGB")
    line = fails(cli, spec, "--data", rgb, cwd=work)
    assert line.startswith(f"{spec}:3:8: input: the spec takes grayscale (1 channel) images") and "colour" in line
    split = train_data.write_image_folder(tmp_path / "split", 60, split=True)
    (split / "val" / "extra").mkdir()
    (split / "val" / "extra" / "x.png").write_bytes((split / "train" / "1" / "0001.png").read_bytes())
    assert "hold different classes" in fails(cli, spec, "--data", split, cwd=work)
    bad = train_data.write_image_folder(tmp_path / "bad", 40)
    for f in sorted((bad / "3").iterdir())[:1]:
        f.write_bytes(b"not a png")
    p = cli("train", spec, "--data", bad, "--epochs", "1", "--batch", "8", "--workers", "0", "--no-save", cwd=work)
    assert p.returncode == 2 and "cannot read image" in p.stderr and len(p.stderr.strip().splitlines()) == 1, \
        p.stderr


def test_errors_about_the_spec(specs, digits, tmp_path, cli):
    work = tmp_path / "work"
    work.mkdir()
    fmap = tmp_path / "fmap.yaml"
    fmap.write_text("archc: 1\nname: fmap\ninput: [1, 8, 8]\ngraph:\n  - conv: {conv: {out: 10, k: 3}}\n")
    line = fails(cli, fmap, "--data", digits, cwd=work)
    assert line.startswith(f"{fmap}:5:11: conv: archc train needs a class vector [classes] out of the network; its "
                           "output is [10, 6, 6]")
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text("archc: 1\nname: fixed\ninput: [1, 8, 8]\ngraph:\n  - flatten: flatten\n"
                     "  - fc: {linear: {out: 7}}\n")
    line = fails(cli, fixed, "--data", digits, cwd=work)
    assert line.startswith(f"{fixed}:6:9: fc: the data has 10 classes") and "no `classes` parameter" in line
    assert "--set classes=3" in fails(cli, specs / "plain.yaml", "--data", digits, "--set", "classes=3", cwd=work)
    named = tmp_path / "named.yaml"
    named.write_text(PLAIN + "outputs: {logits: fc}\n")
    line = fails(cli, named, "--data", digits, cwd=work)
    assert line.startswith(f"{named}:13:10: outputs: archc train needs one class vector") and "(logits)" in line
    line = fails(cli, "archc/zoo/unet.yaml", "--data", digits, cwd=ROOT)  # a segmentation network
    assert line == "archc/zoo/unet.yaml:41:12: score: archc train needs a class vector [classes] out of the network; " \
                   "its output is [10, 388, 388]"


def test_errors_about_the_command(specs, digits, tmp_path, cli):
    work = tmp_path / "work"
    work.mkdir()
    spec = specs / "plain.yaml"
    assert "--lr must be positive" in fails(cli, spec, "--data", digits, "--lr", "-1", cwd=work)
    assert fails(cli, spec, "--data", digits, "--mean", "0.1", "0.2", cwd=work) == \
        "--mean has 2 values; the spec's input has 1 channels"
    line = fails(cli, spec, "--data", digits, "--batch", "1000", cwd=work)
    assert line == "the training split has 540 images, fewer than one batch of 1000: lower --batch"
    line = fails(cli, spec, "--data", "cifar10", "--data-root", tmp_path / "cache", cwd=work)
    assert line.startswith(f"{spec}:3:8: input:") and "cifar10's images are colour" in line
    line = fails(cli, ZOO / "nin_cifar10.yaml", "--data", "cifar10", "--data-root", tmp_path / "cache",
                  "--no-download", cwd=work)
    assert line.startswith("data cifar10: torchvision's CIFAR10 train split could not be opened")
    assert not (tmp_path / "cache").exists()


def test_an_offline_download_is_one_line(tmp_path, cli):
    line = fails(cli, ZOO / "nin_cifar10.yaml", "--data", "cifar10", "--data-root", tmp_path / "cache",
                  cwd=tmp_path)
    assert line.startswith("data cifar10: torchvision's CIFAR10 train split could not be opened: downloading it")
    assert not (tmp_path / "cache").exists()  # what the failed download made is gone


def test_without_torchvision_one_line_names_the_extra(specs, digits, tmp_path, cli, monkeypatch):
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import torchvision: ImportError
    line = fails(cli, specs / "plain.yaml", "--data", digits, cwd=tmp_path)
    assert line.startswith("archc train needs torchvision (") and line.endswith(
        f"pip install 'archc[train]' (torchvision built for the installed torch {torch.__version__.split('+')[0]})")


def test_a_folder_holding_a_run_and_resume_mistakes(specs, digits, tmp_path, cli):
    r = train(specs / "tiny.yaml", digits, tmp_path, epochs=1)
    work = tmp_path / "work"
    work.mkdir()
    line = fails(cli, specs / "tiny.yaml", "--data", digits, "--out", r.folder, cwd=work)
    assert "holds a run already" in line
    assert "the run has finished (epoch 1 of 1)" in fails(cli, "--resume", r.folder / "last.pt", cwd=work)
    line = fails(cli, "--resume", r.folder / "last.pt", "--lr", "0.5", cwd=work)
    assert line == "--resume: the run was trained with the default --lr, not 0.5: a resumed run keeps its " \
                   "settings (start a new run to change them)"
    line = fails(cli, "--resume", r.folder / "last.pt", "--epochs", "3", cwd=work)
    assert "the run was trained with --epochs 1, not 3" in line
    assert "not a training state" in fails(cli, "--resume", r.folder / "last.safetensors", cwd=work)
    line = fails(cli, specs / "plain.yaml", "--resume", r.folder / "last.pt", cwd=work)
    assert "is not the spec the run trained" in line
    other = train_data.write_image_folder(tmp_path / "other", 100)
    line = fails(cli, "--resume", r.folder / "last.pt", "--data", other, "--epochs", "1", cwd=work)
    assert line == f"--resume: the run trained on {digits}, not {other} (leave --data out to resume with the run's own)"
    assert "--set is for a new run" in fails(cli, "--resume", r.folder / "last.pt", "--set", "p=0.5", cwd=work)


def test_the_spec_preprocessing_sets_normalisation_and_the_validation_crop(tmp_path):
    spec = tmp_path / "pre.yaml"
    spec.write_text(PLAIN.replace("input: [1, 8, 8]", "input: [1, 8, 8]\npreprocessing: {resize: 10, crop: 8, "
                                  "mean: [0.25], std: [0.5], interpolation: bicubic}"))
    try:
        loaded = archc.load(str(spec))
    except archc.ArchcError:
        pytest.skip("this archc's grammar has no preprocessing: key yet")
    assert loop.preprocessing(loaded) == {"resize": 10, "crop": (8, 8), "mean": [0.25], "std": [0.5],
                                          "interpolation": "bicubic"}
