from pathlib import Path

import pytest

import archc.passes

archc.passes.VERIFY_BETWEEN = True  # every pass must leave the graph valid: verify it after each one

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
MANIFESTS = ROOT / "tests" / "data" / "torchvision"


@pytest.fixture(autouse=True)
def _chdir_root(monkeypatch):
    # Spec paths in error messages are relative to the repository root, as a user types them.
    monkeypatch.chdir(ROOT)


def spec_id(path: Path) -> str:
    return path.stem
