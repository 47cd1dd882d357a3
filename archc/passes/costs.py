"""Parameters, multiply-accumulates and activation values (per image) of every node, from the op table."""

from __future__ import annotations

import math

from archc.ir.graph import Graph
from archc.ir.ops import OPS, VIEW
from archc.passes import register


@register("costs")
def costs(g: Graph) -> None:
    for node in g.nodes():
        op = OPS[node.op]
        in_shapes = [g[i].shape for i in g.inputs(node.name)]
        node.meta["params"] = op.params(node.attrs, in_shapes, node.shape)
        node.meta["macs"] = op.macs(node.attrs, in_shapes, node.shape)
        node.meta["activations"] = 0 if VIEW in op else math.prod(node.shape)
