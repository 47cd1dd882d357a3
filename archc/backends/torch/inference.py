"""The inference module: eval-mode graph passes on a copy of a trained module's graph, then a module whose
fused nodes fold the trained conv and BN weights and whose other nodes reuse the trained modules."""

from __future__ import annotations

import torch

from archc.backends.torch.executor import ArchcModule
from archc.backends.torch.fused import FusedConvBNAct
from archc.passes import INFERENCE, run

# Each fused op, built from the trained modules it replaces (`trained(path)`); every other node keeps its module.
FOLD = {
    "conv_bn_act": lambda a, trained: FusedConvBNAct(trained(a["conv"]), trained(a["bn"]) if a["bn"] else None,
                                                     a["act"]),
}


def fuse(model):
    """A new eval-only module computing model.eval()'s function with fused ops. `model` is unchanged.

    Fused weights are stored channels_last: the Triton kernels read channels (K) contiguously, and on the
    CPU PyTorch's oneDNN convolutions then run channels_last end to end (measured: bench/cpu_inference.py).
    """
    g = model.graph.copy()
    g.outputs = [o for o in g.outputs if not o.aux]
    for n in reversed(g.order()):
        if g[n].meta["aux"]:
            g.erase(n)
    run(g, INFERENCE)
    modules = {}
    for node in g.nodes():
        if node.name == g.input or node.module in modules:
            continue
        fold = FOLD.get(node.op)
        modules[node.module] = fold(node.attrs, model.module_at) if fold else model.module_at(node.module)
    fused = ArchcModule(g, modules).eval().to(memory_format=torch.channels_last)
    fused.analysis = model.analysis
    return fused
