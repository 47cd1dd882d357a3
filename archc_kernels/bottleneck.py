"""The ResNet / ResNeXt bottleneck (torchvision v1.5 layout) as three fused conv launches.

    x ─ 1x1 reduce, BN, ReLU ─ 3x3 (stride, groups), BN, ReLU ─ 1x1 expand, BN ─ + ─ ReLU
    └──────────────── shortcut: x, or 1x1 stride-s conv + BN ("downsample") ──┘

The residual add and the final ReLU run in the epilogue of the expanding conv. The reduced
intermediates go through device memory: keeping them on-chip is not measured to pay yet.
"""
from .dispatch import conv_bn_act


def bottleneck(x, params, *, stride=1, groups=1):
    """``params``: {"conv1", "conv2", "conv3"[, "downsample"]} -> (weight, scale, shift); scale may be None."""
    shortcut = x
    if "downsample" in params:
        shortcut = conv_bn_act(x, *params["downsample"], stride=stride, act="none")
    y = conv_bn_act(x, *params["conv1"], act="relu")
    y = conv_bn_act(y, *params["conv2"], stride=stride, padding=1, groups=groups, act="relu")
    return conv_bn_act(y, *params["conv3"], act="relu", residual=shortcut)
