from pathlib import Path

import pytest

import archc.passes

archc.passes.VERIFY_BETWEEN = True  # every pass must leave the graph valid: verify it after each one

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "archc" / "zoo"  # the specs archc ships (package data)
SPECS = sorted(ZOO.glob("*.yaml"))
MANIFESTS = ROOT / "tests" / "data" / "torchvision"
# Parameters the tests that run a spec's module set, for specs whose defaults are costly on the CPU (their figures
# are checked at the defaults): U-Net's smallest valid tile with 8 channels at the first level, the others at 64x64
# (float64 depthwise and grouped convs take PyTorch's slow path on the CPU); the VGG, ResNet and DenseNet families
# at 32x32 (equality and shapes do not depend on the size; their variants are checked statically at 224), the
# CIFAR ResNet at depth 20; the specs checked against timm (tools/timm_compare.py) at 64x64, Inception-ResNet-v2 at
# its smallest input, 75x75.
FORWARD = {"unet": {"tile": 188, "width": 8, "last_up": 16}, "convnext": {"size": 64}, "efficientnet": {"size": 64},
           "regnet": {"size": 64}, "mobilenet_v2": {"size": 64}, "shufflenet_v2": {"size": 64},
           "vgg": {"size": 32}, "densenet": {"size": 32}, "resnet": {"size": 32}, "resnet110_cifar": {"depth": 20},
           "mobilenet_v3": {"size": 64}, "efficientnet_v2": {"size": 64}, "mnasnet": {"size": 64},
           "inception_resnet_v2": {"size": 75}, "skresnet18": {"size": 64}, "res2net": {"size": 64}}


@pytest.fixture(autouse=True)
def _chdir_root(monkeypatch):
    # Spec paths in error messages are relative to the repository root, as a user types them.
    monkeypatch.chdir(ROOT)


def spec_id(path: Path) -> str:
    return path.stem
