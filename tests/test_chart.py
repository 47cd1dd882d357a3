"""`published:` (read against the grammar, in the schema) and `archc compare --plot`, the lecture's chart."""

import json

import pytest

import archc
from archc import cli

BASE = "archc: 1\nname: n\ninput: [3, 8, 8]\nparams: {classes: 4}\ngraph:\n  - gap: gap\n  - flatten: flatten\n" \
       "  - fc: {linear: {out: classes}}\n"


def test_published_is_read_and_in_the_schema():
    from archc.ir.ops import spec_ops
    from archc.spec.schema import generate

    spec = archc.loads(BASE + "published: {top1: 71.5, source: a paper}\n", "n.yaml")
    assert archc.analyze(spec).published == {"dataset": "ImageNet-1k", "top1": 71.5, "source": "a paper"}
    assert archc.analyze(spec.with_params({"classes": 10})).published is None  # another network now
    keys = generate(spec_ops())["else"]["properties"]["published"]["properties"]
    assert set(keys) == {"top1", "top5", "dataset", "weights", "source"}


@pytest.mark.parametrize("text,words", [
    ("published: {top1: 171.5, source: x}", "published.top1: published top1 must be in [0, 100), got 171.5"),
    ("published: {top1: 71.5}", "published: published needs key 'source'"),
    ("published: {top1: 71.5, source: x, top3: 1}", "published.top3: published has no key 'top3'"),
])
def test_published_mistakes_are_located(text, words):
    with pytest.raises(archc.ArchcError) as e:
        archc.loads(BASE + text + "\n", "n.yaml")
    assert words in str(e.value) and str(e.value).startswith("n.yaml:9:")


def test_lecture_specs_declare_sourced_accuracy():
    names = ("alexnet_2012", "vgg16", "googlenet", "resnet50", "resnet152", "densenet121", "squeezenet1_0",
             "resnext50_32x4d")
    declared = {name: archc.load(name).published for name in names}  # variants' rows carry their own
    for name in names:
        assert declared[name] and declared[name].source, name
    assert declared["resnet50"].top1 == 76.13 and declared["googlenet"].top1 == 69.778
    assert declared["vgg16"].dataset == "ImageNet-1k"  # the default, filled once by the reader


def test_compare_plot_accuracy_chart(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "chart.svg"
    assert cli.main(["compare", "vgg16", "googlenet", "resnet50", "lenet5",
                     "--plot", str(out)]) == 0
    captured = capsys.readouterr()
    assert "top-1" in captured.out and "76.13" in captured.out
    assert "not on the accuracy chart: lenet5: no published accuracy" in captured.err
    svg = out.read_text()
    for label in ("vgg16", "googlenet", "resnet50", "top-1 accuracy on ImageNet-1k"):
        assert label in svg
    assert "lenet5" not in svg
    again = tmp_path / "again.svg"
    cli.main(["compare", "vgg16", "googlenet", "resnet50", "lenet5",
              "--plot", str(again)])
    assert again.read_text() == svg  # the same figures draw the same file


def test_compare_plot_without_accuracy_and_set(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "chart.png"
    assert cli.main(["compare", "resnet18", "resnet34", "--set", "classes=10", "--plot",
                     str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["outputs"][0]["shape"] for d in data] == [[10], [10]] and all(d["published"] is None for d in data)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_plot_format_is_checked(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert cli.main(["compare", "resnet18", "--plot", str(tmp_path / "chart.txt")]) == 2
    assert "write a .svg, .png or .pdf file" in capsys.readouterr().err
