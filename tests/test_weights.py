"""Weights in: state_dicts saved here (plain, wrapped, safetensors, archc checkpoints) load into built modules,
with a report of what matched; a changed head keeps its fresh weights; wrong files are located errors."""

import json

import pytest
import torch

import archc
from archc import cli
from archc.checkpoint import save
from archc.weights import load, read

SPEC = "resnet18"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A resnet18 whose weights and BN statistics are not the initial ones, saved as a plain state_dict."""
    torch.manual_seed(0)
    m = archc.build(SPEC, classes=1000)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.01 * torch.randn_like(p))
        m.train()(torch.randn(4, 3, 64, 64))  # BatchNorm statistics move too
    path = tmp_path_factory.mktemp("w") / "resnet18.pth"
    torch.save(m.state_dict(), path)
    return m.eval(), path


def same(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_plain_state_dict_loads_completely(trained):
    model, path = trained
    m = archc.build(SPEC, weights=path)
    assert m.weights_report.complete and len(m.weights_report.matched) == len(model.state_dict())
    assert m.weights_report.format == "state_dict"
    assert same(m, model)
    x = torch.randn(2, 3, 64, 64)
    assert torch.equal(m.eval()(x), model(x))


def test_safetensors_wrapped_and_checkpoint_files(trained, tmp_path):
    model, _ = trained
    safetensors = pytest.importorskip("safetensors.torch")
    st = tmp_path / "m.safetensors"
    safetensors.save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(st))
    ddp = tmp_path / "ddp.pt"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, ddp)
    ckpt = tmp_path / "ckpt.pt"
    save(model, str(ckpt))
    for path, fmt in ((st, "safetensors"), (ddp, "state_dict under 'state_dict'"), (ckpt, "archc checkpoint")):
        m = archc.build(SPEC, weights=path)
        assert m.weights_report.complete and m.weights_report.format == fmt, path
        assert same(m, model), path
    assert archc.build(SPEC, weights=ddp).weights_report.stripped == "module."


def test_new_head_keeps_its_fresh_weights(trained):
    model, path = trained
    torch.manual_seed(1)
    fresh = archc.build(SPEC, classes=10)
    torch.manual_seed(1)
    with pytest.warns(UserWarning, match="shape mismatch: fc.weight is \\[1000, 512\\] in the file, \\[10, 512\\]"):
        m = archc.build(SPEC, weights=path, classes=10)
    r = m.weights_report
    assert [k for k, _, _ in r.mismatched] == ["fc.weight", "fc.bias"] and not r.missing and not r.unexpected
    ours, theirs, init = m.state_dict(), model.state_dict(), fresh.state_dict()
    for k in ours:
        assert torch.equal(ours[k], init[k] if k.startswith("fc.") else theirs[k]), k


def test_missing_and_unexpected_are_reported(trained, tmp_path):
    model, _ = trained
    sd = {k: v for k, v in model.state_dict().items() if not k.startswith("layer4.1.bn2")}
    sd["extra.weight"] = torch.zeros(3)
    f = tmp_path / "partial.pth"
    torch.save(sd, f)
    m = archc.build(SPEC)
    r = load(m, f)
    assert set(r.missing) == {f"layer4.1.bn2.{k}" for k in ("weight", "bias", "running_mean", "running_var",
                                                             "num_batches_tracked")}
    assert r.unexpected == ["extra.weight"] and not r.complete
    assert "missing: layer4.1.bn2.weight (not in the file): kept freshly initialised" in str(r)


@pytest.mark.parametrize("content,words", [
    (None, "no such file"),
    (b"not a pickle", "not a file that torch.load(weights_only=True) reads"),
    ("code", "not a file that torch.load(weights_only=True) reads"),
    ("empty", "no state_dict in it"),
])
def test_bad_files_are_errors(tmp_path, content, words):
    f = tmp_path / "w.pt"
    if content == "code":  # a pickle that would run code: weights_only refuses it
        torch.save({"model": torch.nn.Linear(2, 2)}, f)
    elif content == "empty":
        torch.save([1, 2, 3], f)
    elif content is not None:
        f.write_bytes(content)
    with pytest.raises(archc.ArchcError, match=words.replace("(", "\\(").replace(")", "\\)")):
        read(f)


def test_wrong_network_is_an_error(trained):
    _, path = trained
    with pytest.raises(archc.ArchcError, match="none of its 122 tensors fits this module"):
        archc.build("squeezenet1_1", weights=path)


def test_compile_weights_command(trained, tmp_path, capsys):
    _, path = trained
    out = tmp_path / "tuned.pt"
    assert cli.main(["compile", SPEC, "--set", "classes=10", "--weights", str(path), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"weights {path} (state_dict): 120 of the module's 122 tensors loaded" in text
    assert "shape mismatch: fc.bias is [1000] in the file, [10] here: kept freshly initialised" in text
    assert archc.checkpoint.load(str(out)).fc.out_features == 10
    assert cli.main(["compile", SPEC, "--weights", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["weights"]
    assert report["matched"] == 122 and report["mismatched"] == [] and report["missing"] == []


def test_compile_weights_error_before_any_output(tmp_path, capsys):
    assert cli.main(["compile", SPEC, "--weights", str(tmp_path / "none.pt")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == f"cannot read weights {tmp_path / 'none.pt'}: no such file"
