"""archc bench: the timing core shared with bench/ (one code path), and the command's output."""

import json
import sys

import pytest

from archc import bench

TINY = "archc: 1\nname: tiny\ninput: [3, 16, 16]\ngraph:\n  - conv: {conv: {out: 8, k: 3, pad: 1, bias: false}}\n" \
       "  - bn: bn\n  - relu: relu\n  - gap: gap\n  - flatten: flatten\n  - fc: {linear: {out: 4}}\n"


def test_bench_scripts_use_the_package_core():
    sys.path.insert(0, "bench")
    try:
        import _harness
    finally:
        sys.path.remove("bench")
    for name in ("environment", "Budget", "spread", "geomean", "markdown_table", "measure"):
        assert getattr(_harness, name) is getattr(bench, name), name


def test_bench_scripts_write_through_the_one_writer(tmp_path, monkeypatch):
    """bench/_harness.write_atomic makes the results folder a script names, then writes with archc.files."""
    from archc import files

    sys.path.insert(0, "bench")
    try:
        import _harness
    finally:
        sys.path.remove("bench")
    calls = []
    monkeypatch.setattr(files, "write_text", lambda path, text, **k: calls.append((str(path), text)))
    _harness.write_atomic(tmp_path / "new" / "r.md", "x")
    assert calls == [(str(tmp_path / "new" / "r.md"), "x")] and (tmp_path / "new").is_dir()


def test_measure_interleaves_after_warmup():
    calls = []
    times = bench.measure({"a": lambda x: calls.append("a"), "b": lambda x: calls.append("b")}, None, runs=3,
                          warmup=2)
    assert calls == ["a", "b"] * 5 and [len(t) for t in times.values()] == [3, 3]
    assert bench.spread([3.0, 1.0, 2.0, 5.0, 4.0]) == (3.0, 1.8, 4.2)


def test_bench_result(tmp_path):
    import archc

    spec = archc.loads(TINY, str(tmp_path / "tiny.yaml"))
    lines = []
    r = bench.bench(spec, batches=[1, 3], runs=3, warmup=1, progress=lines.append)
    assert [b["batch"] for b in r["batches"]] == [1, 3] and r["device"] == "cpu" and r["dtype"] == "float32"
    for b in r["batches"]:
        assert set(b["variants"]) == set(bench.VARIANTS)
        for v in b["variants"].values():
            assert v["min_ms"] <= v["p20_ms"] <= v["median_ms"] <= v["p80_ms"] <= v["max_ms"] and v["runs"] == 3
            assert v["images_per_s"] == pytest.approx(b["batch"] / v["median_ms"] * 1e3)
        assert b["speedup"]["fused_vs_eager"] == pytest.approx(
            b["variants"]["eager"]["median_ms"] / b["variants"]["fused"]["median_ms"])
        assert b["rel_error_fused"] < 1e-5
    assert "tiny batch 3: run 3/3" in lines and any(line.endswith("\n") for line in lines)
    assert "| batch | eager ms median (p20..p80) |" in bench.table(r)


def test_bench_command_json(capsys):
    from archc import cli

    assert cli.main(["bench", "lenet5", "--batch", "1,4", "--runs", "2", "--warmup", "1", "--json"]) == 0
    captured = capsys.readouterr()
    r = json.loads(captured.out)
    assert r["name"] == "lenet5" and [b["batch"] for b in r["batches"]] == [1, 4]
    assert "lenet5 batch 4: eager" in captured.err  # the progress display


@pytest.mark.parametrize("args,words", [
    (["--batch", "1,x"], "--batch '1,x'"),
    (["--device", "cuda"], "no CUDA device"),
    (["--runs", "0"], "--runs at least 1"),
])
def test_bench_errors(args, words, capsys):
    import torch

    from archc import cli

    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("a CUDA device is here")
    assert cli.main(["bench", "lenet5", *args]) == 2
    assert words in capsys.readouterr().err
