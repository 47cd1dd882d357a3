"""Fused conv + BN + activation (+ residual) kernels for archc.

Two implementations of one specification: Triton kernels for CUDA tensors and
plain PyTorch (``reference``) everywhere else. Importing this package does not
import Triton; the Triton path is loaded on its first use.
"""
from .bottleneck import Bottleneck, bottleneck
from .dispatch import ConvBNAct, backend_for, conv_bn_act, route
from .fold import fold_bn, fold_weight
from .graphs import CudaGraph
from .activations import ACTIVATIONS, Activation

__all__ = ["ACTIVATIONS", "Activation", "Bottleneck", "ConvBNAct", "CudaGraph", "backend_for", "bottleneck",
           "conv_bn_act", "fold_bn", "fold_weight", "route"]
