"""Ops users add without forking archc: archc.register_op, and installed packages' `archc.ops` entry points.

The example plugin (examples/plugin) is made installed for one fresh interpreter by putting its package and a
dist-info directory (the metadata pip would write, entry points included) on PYTHONPATH: no pip, no network."""

import json
import subprocess
import sys
import tomllib

import pytest
import torch
from torch import nn

import archc
from archc.ir import plugins
from archc.ir.ops import ACTIVATION, OPS, Op
from conftest import ROOT

PLUGIN = ROOT / "examples" / "plugin"
SPEC = PLUGIN / "mish_net.yaml"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A folder that makes the example plugin installed for an interpreter that has it on its path."""
    site = tmp_path_factory.mktemp("site")
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    (site / "archc_example_plugin").symlink_to(PLUGIN / "archc_example_plugin")
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    points = project["entry-points"]["archc.ops"]
    (info / "entry_points.txt").write_text("[archc.ops]\n" + "".join(f"{k} = {v}\n" for k, v in points.items()))
    return site


def run(site, code: str):
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


def test_an_installed_plugin_adds_ops_to_specs_the_schema_and_modules(site):
    code = f"""
import json, torch, archc
from archc.ir.ops import spec_ops
from archc.spec.schema import generate
a = archc.analyze({str(SPEC)!r})              # its expect holds: params, output
assert a.graph["up"].shape == (3, 64, 64) and a.receptive_field["jump"] == [0.5, 0.5]
schema = json.dumps(generate(spec_ops()))
m = archc.build(a).eval()
x = torch.randn(2, 3, 32, 32)
y = m(x)
mish = torch.nn.functional.mish
ref = m.head(torch.nn.functional.pixel_shuffle(mish(m.conv2(mish(m.conv1(x)))), 2))
from archc import cli
rc = cli.main(["validate", {str(SPEC)!r}])                # what a user runs
print(json.dumps({{"schema": '"pixel_shuffle"' in schema and '"mish"' in schema, "shape": list(y.shape),
                  "equal": torch.equal(y, ref), "validate": rc}}))
"""
    p = run(site, code)
    assert p.returncode == 0, p.stderr
    *lines, last = p.stdout.splitlines()
    assert lines == [f"{SPEC}: ok: mish_net: 4,448 params, 4.76 MMACs, output out [3, 64, 64]"]
    assert json.loads(last) == {"schema": True, "shape": [2, 3, 64, 64], "equal": True, "validate": 0}


def test_a_missing_plugin_is_a_located_error_naming_its_package():
    """This interpreter has no plugin installed: the spec's ops are unknown, and the errors say where to get them."""
    with pytest.raises(archc.ArchcErrors) as e:
        archc.load(SPEC)
    messages = [f"{x.loc.line}:{x.loc.col}: {x.message}" for x in e.value.errors]
    assert messages[0] == ("5:12: this spec requires the plugin package 'archc-example-plugin': not installed "
                           "(pip install archc-example-plugin)")
    assert messages[1] == ("10:11: unknown op or block 'mish': it is provided by the plugin package "
                           "'archc-example-plugin', not installed (pip install archc-example-plugin)")
    p = subprocess.run([sys.executable, "-m", "archc.cli", "validate", str(SPEC)], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr


def test_requires_names_the_package_of_an_op_archc_does_not_know(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("archc: 1\nname: s\nrequires: [swirl-ops]\ninput: [3, 8, 8]\ngraph:\n  - swirl\n")
    with pytest.raises(archc.ArchcErrors) as e:
        archc.load(f)
    assert [x.message for x in e.value.errors] == [
        "this spec requires the plugin package 'swirl-ops': not installed (pip install swirl-ops)",
        "unknown op or block 'swirl' (archc has no such op; this spec requires plugin packages: 'swirl-ops' not "
        "installed (pip install swirl-ops))"]


@pytest.fixture
def clean_plugins(monkeypatch):
    """Plugins registered by a test go away after it."""
    from archc.backends.torch import PLUGINS

    monkeypatch.setattr(plugins, "FAILED", {})
    yield
    for name in [n for n in PLUGINS if n in OPS]:
        del OPS[name], PLUGINS[name]


def test_register_op(clean_plugins):
    archc.register_op(Op("swish2", "x * sigmoid(2x).", lambda a, i: i[0], categories=frozenset({ACTIVATION})),
                      lambda a, i: type("Swish2", (nn.Module,),
                                        {"forward": lambda self, x: x * torch.sigmoid(2 * x)})())
    text = "archc: 1\nname: t\ninput: [2, 4, 4]\ngraph:\n  - s: swish2\n"
    m = archc.build(archc.loads(text, "t.yaml"))
    x = torch.randn(1, 2, 4, 4)
    assert torch.equal(m(x), x * torch.sigmoid(2 * x))
    with pytest.raises(ValueError, match="already registered"):
        archc.register_op(Op("swish2", "again", lambda a, i: i[0]), lambda a, i: nn.Identity())
    for bad in ("relu", "repeat", "when", "1x"):
        with pytest.raises(ValueError):
            archc.register_op(Op(bad, "", lambda a, i: i[0]), lambda a, i: nn.Identity())


def test_a_plugin_that_fails_to_load_is_reported_where_its_op_is_used(monkeypatch, clean_plugins):
    class Broken:
        name, value, dist = "broken", "swirl_ops:register", type("Dist", (), {"name": "swirl-ops"})()

        def load(self):
            raise ImportError("No module named 'swirl_ops'")

    monkeypatch.setattr(plugins, "_done", False)
    monkeypatch.setattr(plugins.metadata, "entry_points", lambda group: [Broken()])
    monkeypatch.setitem(plugins.KNOWN, "swirl", "swirl-ops")
    with pytest.raises(archc.SpecError) as e:
        archc.loads("archc: 1\nname: t\ninput: [2, 4, 4]\ngraph:\n  - swirl\n", "t.yaml")
    assert str(e.value) == ("t.yaml:5:5: graph.0: unknown op or block 'swirl': it is provided by the plugin package "
                            "'swirl-ops', its plugin failed to load: ImportError: No module named 'swirl_ops'")
