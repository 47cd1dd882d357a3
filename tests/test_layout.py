"""The layout is the pipeline: spec -> ir -> passes -> analysis -> backend. No module imports one further along,
nothing before the backend imports torch, and every table is complete (each op lowered, each construct expanded)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import archc
from archc.ir.expand import EXPANSIONS
from archc.ir.ops import INPUT, INTERNAL, OPS
from archc.spec.grammar import CONSTRUCTS

PACKAGE = Path(archc.__file__).parent
# Stage of each module or package, in pipeline order; a module may import only its own stage or earlier ones.
STAGES = ["archc.errors|archc.files", "archc.spec", "archc.ir", "archc.passes", "archc.analysis",
          "archc.report|archc.dot|archc.view|archc.chart", "archc.backends|archc.weights", "archc",
          "archc.checkpoint|archc.export|archc.bench|archc.catalog|archc.predict", "archc.cli"]


def stage(module: str) -> int:
    for i in reversed(range(len(STAGES))):
        if any(module == s or module.startswith(s + ".") for s in STAGES[i].split("|")):
            return i
    raise AssertionError(f"{module} is in no stage")


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return found


@pytest.mark.parametrize("module,path", list(modules()), ids=[m for m, _ in modules()])
def test_imports_flow_one_way(module, path):
    mine = stage(module)
    for name in imports(path):
        if name == "archc" or name.startswith("archc."):
            assert stage(name) <= mine, f"{module} (stage {STAGES[mine]}) imports {name} (stage {STAGES[stage(name)]})"
        if name.split(".")[0] in ("torch", "archc_kernels", "triton"):
            assert stage(module) >= stage("archc.backends"), f"{module} imports {name}"


def test_the_compiler_short_of_modules_never_imports_torch():
    """spec, ir, passes, the figures and the backend's name checks load and run without torch."""
    names = [m for m, _ in modules() if stage(m) < stage("archc.backends")] + ["archc.backends.torch.names"]
    code = (f"import sys, importlib; [importlib.import_module(m) for m in {names!r}]; import archc; "
            "archc.validate('googlenet'); print(sorted(m for m in ('torch', 'triton', 'archc_kernels') "
            "if m in sys.modules))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


def test_every_op_has_a_lowering():
    """Every op runs in PyTorch; every fused op (made by the inference passes) is also built from the trained
    modules it replaces."""
    from archc.backends.torch import PLUGINS
    from archc.backends.torch.inference import FOLD
    from archc.backends.torch.lower import LOWERINGS

    assert set(LOWERINGS) | set(PLUGINS) == {name for name, op in OPS.items() if INPUT not in op}
    assert set(FOLD) == {name for name, op in OPS.items() if INTERNAL in op and INPUT not in op}


def test_every_construct_has_an_expansion():
    assert set(EXPANSIONS) == set(CONSTRUCTS)


def test_module_names_torch_refuses_are_known_without_torch():
    """The torch-free lists of names a module cannot take are exactly what the installed torch refuses."""
    from torch import nn

    from archc.backends.torch.names import ARCHC_ATTRIBUTES, MODULE_ATTRIBUTES

    assert set(dir(nn.Module())) == MODULE_ATTRIBUTES
    module = archc.build("lenet5")
    own = set(dir(module)) - set(dir(nn.Module())) - set(module._modules)
    assert own == ARCHC_ATTRIBUTES
