"""The command line as a user runs it: exit codes, output, no tracebacks."""

import json
import subprocess
import sys

import pytest
import torch

from archc import cli
from archc.ir.ops import spec_ops


def run(*args):
    """Run `archc ARGS` in a fresh interpreter, as a user would."""
    p = subprocess.run([sys.executable, "-m", "archc.cli", *args], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def test_compile_resnext_main_job():
    rc, out, err = run("compile", "resnext50_32x4d")
    assert rc == 0, err
    assert "25,028,904 params" in out
    assert "4,230,479,872 (4.23 GMACs)" in out
    assert "outputs      out [1000]" in out
    assert "layer4.2.conv3" in out and "built nn.Module resnext50_32x4d: 25,028,904 parameters" in out
    assert "Traceback" not in out + err


def test_compile_json(capsys):
    assert cli.main(["compile", "googlenet", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"name", "params", "macs", "activations", "outputs", "layers"} <= set(data)
    assert data["params_without_aux"] == 6624904 and data["params"] == data["module"]["params"] == 13004888
    assert [o["name"] for o in data["outputs"]] == ["out", "aux1", "aux2"]
    assert data["layers"][1]["name"] == "conv1.conv" and data["layers"][1]["shape"] == [64, 112, 112]


def test_set_overrides_parameters(capsys):
    assert cli.main(["compile", "resnext50_32x4d", "--set", "classes=10", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["outputs"][0]["shape"] == [10]
    assert data["params"] == 25028904 - 990 * 2049


def test_output_checkpoint_round_trip(tmp_path, capsys):
    from archc.checkpoint import load

    f = tmp_path / "m.pt"
    assert cli.main(["compile", "densenet121", "--set", "classes=3", "-o", str(f)]) == 0
    m = load(str(f))
    saved = torch.load(f, weights_only=True)["state_dict"]
    assert all(torch.equal(v, saved[k]) for k, v in m.state_dict().items())
    assert m.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 3)


def test_spec_error_exit_2_one_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("archc: 1\nname: bad\ninput: [3, 8, 8]\ngraph:\n  - a: {conv: {out: 4, k: 3}}\n"
                 "  - s: {add: null, from: [a, input]}\n")
    rc, out, err = run("compile", str(f))
    assert rc == 2
    assert err.strip() == f"{f}:6:8: s: cannot add [4, 6, 6] and [3, 8, 8]"
    assert out == ""


@pytest.mark.parametrize("args,words", [
    (["compile", "nope.yaml"], "cannot read spec"),
    (["compile", "resnext50_32x4d", "--set", "classes"], "--set expects K=V"),
    (["compile", "resnext50_32x4d", "--set", "clases=3"], "unknown parameter 'clases'"),
])
def test_user_errors_exit_2(args, words, capsys):
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and err.count("\n") == 1


def test_validate_goes_on_over_every_file_and_fails_if_any_failed(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("archc: 1\nname: bad\ninput: [3, 8, 8]\ngraph:\n  - {frob: null}\n"
                   "  - a: {conv: {out: 8, k: 3, strid: 1}}\n")
    clash = tmp_path / "clash.yaml"
    clash.write_text("archc: 1\nname: clash\ninput: [3, 8, 8]\ngraph:\n  - forward: relu\n")
    assert cli.main(["validate", "vgg16", str(bad), "nope.yaml", str(clash), "resnet18"]) == 2
    out, err = capsys.readouterr()
    assert [line.split(":")[0] for line in out.splitlines()] == ["vgg16", "resnet18"]
    assert err.splitlines() == [
        f"{bad}:5:6: graph.0.frob: unknown op 'frob' (ops: {', '.join(spec_ops())})",
        f"{bad}:6:30: graph.1.a.conv.strid: conv has no argument 'strid' (did you mean 'stride'?)",
        "nope.yaml:1:1: cannot read spec: No such file or directory",
        f"{clash}:5:14: forward: 'forward' is an attribute of nn.Module: a module cannot take this name"]


def test_format_json_for_editors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("archc: 1\nname: bad\ninput: [3, 224, 224]\ngraph:\n  - c: {conv: {out: 8, k: 11, stride: 4}}\n"
                   "  - forward: relu\n")
    for command in ("validate", "compile"):
        rc, out, err = run(command, str(bad), "--format", "json")
        assert rc == 2 and out == ""
        warning, error = map(json.loads, err.splitlines())
        assert warning == {"file": str(bad), "line": 5, "column": 8, "path": "c", "severity": "warning",
                           "message": "conv 11/4 pad 0 on 224: (224 + 2*0 - 11) / 4 + 1 = 54.25, so the last 1 "
                                      "input row(s) are never seen"}
        assert error == {"file": str(bad), "line": 6, "column": 14, "path": "forward", "severity": "error",
                         "message": "'forward' is an attribute of nn.Module: a module cannot take this name"}


def test_schema_command_prints_the_shipped_schema(capsys):
    from pathlib import Path

    from archc.spec import schema

    assert cli.main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(
        (Path(schema.__file__).parent / "schema.json").read_text())


def test_validate_and_compare(capsys):
    assert cli.main(["validate", "vgg16", "resnet50"]) == 0
    out = capsys.readouterr().out
    assert "vgg16: ok: vgg16: 138,357,544 params, 15.47 GMACs" in out
    assert cli.main(["compare", "vgg16", "googlenet", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["macs"] > 10 * rows[1]["macs"]  # the lecture's point: VGG is far costlier than GoogLeNet


def test_warning_is_located_on_stderr(tmp_path, capsys):
    f = tmp_path / "alex.yaml"
    f.write_text("archc: 1\nname: a\ninput: [3, 224, 224]\ngraph:\n  - conv1: {conv: {out: 96, k: 11, stride: 4}}\n")
    assert cli.main(["validate", str(f)]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"{f}:5:12: conv1: warning: conv 11/4 pad 0 on 224")


def test_internal_error_is_one_line(monkeypatch, capsys):
    import archc

    monkeypatch.setattr(archc, "analyze", lambda *a, **k: 1 / 0)
    assert cli.main(["validate", "vgg16"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("archc: internal error: ZeroDivisionError") and "Traceback" not in err


def test_analysis_does_not_import_torch():
    """`archc validate` is instant: spec -> analysed and checked graph never imports torch (or triton)."""
    code = ("import sys, archc; a = archc.validate('resnext50_32x4d'); "
            "assert a.params == 25028904; print(sorted(m for m in ('torch', 'triton') if m in sys.modules))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


def test_depth_groups_the_table(capsys):
    assert cli.main(["compile", "resnet50", "--depth", "2"]) == 0
    out = capsys.readouterr().out
    row = next(line.split() for line in out.splitlines() if line.startswith("layer1.0 "))
    assert row[1:3] == ["12", "ops"] and row[-2] == "75,008"  # 3 conv+bn, 3 relu, downsample conv+bn, add
    assert not any(line.startswith("layer1.0.conv1") for line in out.splitlines())


def test_dot_output(tmp_path, capsys):
    f = tmp_path / "g.dot"
    assert cli.main(["dot", "googlenet", "--depth", "1", "-o", str(f)]) == 0
    text = f.read_text()
    assert text.startswith('digraph "googlenet" {') and text.rstrip().endswith("}")
    assert '"inception4a" -> "aux1";' in text and '"inception4a" -> "inception4b";' in text
    assert '"aux1" [label="aux1\\n9 ops  1000"' in text and "dashed" in text
    assert cli.main(["dot", "squeezenet1_1"]) == 0
    out = capsys.readouterr().out
    assert '"features.3.squeeze_activation" -> "features.3.expand1x1";' in out
    assert '"features.3.expand3x3_activation" -> "features.3.~concat";' in out
