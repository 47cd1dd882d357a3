"""The ResNet / ResNeXt bottleneck (torchvision v1.5 layout) as three fused conv launches.

    x ─ 1x1 reduce, BN, ReLU ─ 3x3 (stride, groups), BN, ReLU ─ 1x1 expand, BN ─ + ─ ReLU
    └──────────────── shortcut: x, or 1x1 stride-s conv + BN ("downsample") ──┘

The residual add and the final ReLU run in the epilogue of the expanding conv. The reduced
intermediates go through device memory: keeping them on-chip is not measured to pay yet.
"""
from .dispatch import ConvBNAct


class Bottleneck:
    """The block with its convs prepared once (``ConvBNAct``): ``Bottleneck(params, stride=, groups=)(x)``.

    ``params``: {"conv1", "conv2", "conv3"[, "downsample"]} -> (weight, scale, shift); scale may be None.
    """

    def __init__(self, params, *, stride=1, groups=1):
        self.conv1 = ConvBNAct(*params["conv1"], act="relu")
        self.conv2 = ConvBNAct(*params["conv2"], stride=stride, padding=1, groups=groups, act="relu")
        self.conv3 = ConvBNAct(*params["conv3"], act="relu")
        self.downsample = ConvBNAct(*params["downsample"], stride=stride, act="none") if "downsample" in params \
            else None

    def __call__(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.conv3(self.conv2(self.conv1(x)), shortcut)


def bottleneck(x, params, *, stride=1, groups=1):
    """One call of the block (see Bottleneck): routes and prepares its convs for this call only."""
    return Bottleneck(params, stride=stride, groups=groups)(x)
