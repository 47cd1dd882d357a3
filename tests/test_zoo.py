"""The zoo ships with the package: specs found by name, libraries imported by name (and from a search path),
`archc list`; and a wheel installed outside the checkout runs them."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import archc
from archc import catalog, cli
from archc.spec import zoo
from conftest import ROOT, SPECS, ZOO

RESNET_USER_SPEC = """archc: 1
name: mine
input: [3, 32, 32]
import: [archc/resnet]
graph:
  - conv1: {conv: {out: 64, k: 3, pad: 1, bias: false}}
  - bn1: bn
  - relu: relu
  - layer1: {repeat: 2, block: basic, with: {planes: 64}}
  - layer2: {repeat: 2, block: basic, with: {planes: 128, stride: "2 if i == 0 else 1"}}
  - avgpool: gap
  - flatten: flatten
  - fc: {linear: {out: 10}}
"""


# -- names ------------------------------------------------------------------------------------------------------

def test_a_name_selects_its_spec_and_variant():
    spec = archc.load("resnet50")
    assert (Path(spec.file), spec.variant, spec.name, spec.torchvision) == (Path("archc/zoo/resnet.yaml"),
                                                                           "resnet50", "resnet50", "resnet50")
    assert spec.expect[0]["params"] == 25_557_032 and spec.published.top1 == 76.13
    assert archc.load("resnet", variant="resnet101").name == "resnet101"  # the file's stem, then --set
    assert archc.load("resnet50", variant="resnet152").name == "resnet152"  # an explicit variant wins
    assert archc.load("mobilenet_v3_large").variant == "large"  # a variant's network name (its torchvision model)
    assert archc.load("alexnet").file.endswith("alexnet_torchvision.yaml")  # a spec's name
    assert archc.analyze("resnext50_32x4d").params == 25_028_904


def test_every_name_in_the_index_loads_as_that_network():
    """The index is read from the files' top-level keys; loading each name gives a network of that name (a stem
    gives its spec's default network), so the index and the typed reading agree."""
    names = zoo.index()
    assert not [n for n, entries in names.items() if len(entries) > 1], "no name is ambiguous"
    stems = {p.stem for p in SPECS}
    for name in names:
        spec = archc.load(name)
        assert spec.name == name or name in stems, name
    networks = {n.name for f in catalog.families() for n in f.networks}
    assert networks <= set(names), "every network listed is found by its name"


def test_a_path_that_exists_wins_over_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("resnet50").write_text("archc: 1\nname: local\ninput: [3, 8, 8]\ngraph: [relu]\n")
    assert archc.load("resnet50").name == "local"


def test_an_unknown_name_is_one_located_line_with_close_names(capsys):
    assert cli.main(["compile", "resnet5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("resnet5:1:1: no spec file or zoo network named 'resnet5' (did you mean resnet50")
    assert len(err.splitlines()) == 1 and "`archc list`" in err
    assert cli.main(["compile", "specs/nope.yaml"]) == 2  # a path stays a path
    assert capsys.readouterr().err.strip() == "specs/nope.yaml:1:1: cannot read spec: No such file or directory"


def test_view_and_compile_take_names(tmp_path, capsys):
    assert cli.main(["view", "convnext_tiny", "-o", str(tmp_path / "c.html")]) == 0
    assert "convnext_tiny" in capsys.readouterr().out
    assert cli.main(["compile", "resnet", "--set", "variant=resnet101"]) == 0
    assert "built nn.Module resnet101: 44,549,160 parameters" in capsys.readouterr().out


# -- libraries by name --------------------------------------------------------------------------------------------

def test_a_spec_anywhere_imports_archcs_libraries_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("mine.yaml").write_text(RESNET_USER_SPEC)
    model = archc.build("mine.yaml")
    assert "layer2.0.downsample.0.weight" in model.state_dict()  # torchvision's layout, from archc/zoo/lib
    assert Path(archc.load("mine.yaml").imports[0].file) == ZOO / "lib" / "resnet.yaml"


def test_user_libraries_are_found_on_the_search_path(tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    (second / "mylab").mkdir(parents=True)
    (second / "mylab" / "blocks.yaml").write_text(
        "archc: 1\nlibrary: blocks\nblocks:\n  cbr:\n    args: {out: int}\n"
        "    seq: [{conv: {out: out, k: 3, pad: 1}}, bn, relu]\n")
    first.mkdir()
    spec = tmp_path / "s.yaml"
    spec.write_text("archc: 1\nname: s\ninput: [3, 8, 8]\nimport: [mylab/blocks]\ngraph:\n"
                    "  - {block: cbr, with: {out: 4}}\n")
    with pytest.raises(archc.SpecError, match=r"s.yaml:4:10: import 'mylab/blocks': no library blocks.yaml in a "
                                              r"folder mylab/ of \$ARCHC_PATH \(unset"):
        archc.load(spec)
    monkeypatch.setenv("ARCHC_PATH", os.pathsep.join([str(first), str(second)]))
    assert archc.analyze(spec).params == 4 * 3 * 9 + 4 + 8


def test_library_names_read_nothing_outside_their_roots(tmp_path, monkeypatch):
    """A library name is a package and names (no `..`, no absolute path: the grammar); a link inside a search
    folder that points outside it is refused; archc/ names only archc's own libraries."""
    outside = tmp_path / "outside.yaml"
    outside.write_text("archc: 1\nlibrary: x\nblocks:\n  b: {seq: [relu]}\n")
    (tmp_path / "path" / "pkg").mkdir(parents=True)
    (tmp_path / "path" / "pkg" / "evil.yaml").symlink_to(outside)
    monkeypatch.setenv("ARCHC_PATH", str(tmp_path / "path"))
    head = "archc: 1\nname: s\ninput: [3, 8, 8]\n"
    for ref, words in (("pkg/evil", "no library evil.yaml in a folder pkg/"),
                       ("archc/resnt", "archc ships no library 'resnt' (did you mean archc/resnet?)"),
                       ("archc/../x", "must be a relative path to a .yaml file, or a library name")):
        with pytest.raises(archc.ArchcError) as e:
            archc.loads(head + f"import: [{ref}]\ngraph: [relu]\n", str(tmp_path / "s.yaml"))
        assert words in str(e.value), (ref, str(e.value))


# -- archc list ---------------------------------------------------------------------------------------------------

def test_archc_list_shows_every_network_with_its_figures(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["name", "variants", "params", "MACs", "top-1", "source"]
    assert "mobilenet_v3_large" in out and "He et al. 2016" in out
    assert cli.main(["list", "--format", "json"]) == 0
    families = json.loads(capsys.readouterr().out)
    assert sorted(f["name"] for f in families) == sorted(p.stem for p in SPECS)
    nets = {n["name"]: n for f in families for n in f["networks"]}
    assert nets["resnet50"] == {"name": "resnet50", "spec": "resnet", "variant": "resnet50", "params": 25557032,
                                "macs": 4089184256, "top1": 76.13, "top5": 92.862, "dataset": "ImageNet-1k",
                                "torchvision": "resnet50", "weights": "IMAGENET1K_V1"}
    # figures are what the specs declare and every analysis checks
    assert archc.analyze("mobilenet_v3_small").macs == nets["mobilenet_v3_small"]["macs"]


# -- installed ----------------------------------------------------------------------------------------------------

def _site_packages(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def test_an_installed_wheel_runs_the_zoo_outside_the_checkout(tmp_path):
    """`pip install .` (a wheel, not -e) into a fresh virtualenv, used from a folder outside the checkout:
    `archc list`, `archc compile resnet50`, `archc.build("mobilenet_v3_large")`, and a user's spec importing the
    shipped ResNet library. The new environment reaches this one's packages (torch, ...) through a .pth file
    added after the install (so pip never sees this environment's archc)."""
    pytest.importorskip("setuptools")
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for part in ("archc", "archc_kernels"):
        shutil.copytree(ROOT / part, src / part, ignore=ignore)
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / part, src / part)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, capture_output=True, timeout=120)
    wheel, = (tmp_path / "dist").glob("archc-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)], check=True,
                   capture_output=True, timeout=120)
    site = _site_packages(python)
    (site / "_parent_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "work"
    work.mkdir()
    (work / "mine.yaml").write_text(RESNET_USER_SPEC)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ARCHC_PATH")}

    def run(*argv):
        p = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        return p.stdout

    archc_cli = str(venv / "bin" / "archc")
    assert "resnet50" in run(archc_cli, "list")
    out = run(archc_cli, "compile", "resnet50")
    assert "built nn.Module resnet50: 25,557,032 parameters" in out
    assert "built nn.Module resnext50_32x4d: 25,028,904 parameters" in run(archc_cli, "compile", "resnext50_32x4d")
    code = ("import archc, pathlib; m = archc.build('mobilenet_v3_large'); u = archc.build('mine.yaml'); "
            "print(pathlib.Path(archc.__file__).parent, m.name, sum(p.numel() for p in m.parameters()), "
            "u.analysis.params)")
    where, name, params, mine = run(str(python), "-c", code).split()
    assert Path(where) == site / "archc", "the installed package, not the checkout"
    assert (name, params) == ("mobilenet_v3_large", "5483032")
    assert int(mine) == archc.analyze(work / "mine.yaml").params


def test_the_readme_spec_is_resnext50_as_the_zoo_builds_it(tmp_path):
    """README's "A spec", written anywhere, imports archc's library by name and is the zoo's resnext50_32x4d:
    the same figures and state_dict."""
    text = (ROOT / "README.md").read_text().split("## A spec\n\n```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "resnext.yaml").write_text(text)
    ours, zoos = archc.analyze(tmp_path / "resnext.yaml"), archc.analyze("resnext50_32x4d")
    assert (ours.params, ours.macs) == (zoos.params, zoos.macs) == (25_028_904, 4_230_479_872)
    assert [n.name for n in ours.nodes()] == [n.name for n in zoos.nodes()]
