"""Parameters, buffers, multiply-accumulates and activation values (per image) of every node, from the op table;
and the limits on what the module would allocate, checked on those figures before any tensor exists."""

from __future__ import annotations

import math

from archc.errors import ArchcError, LimitError
from archc.ir.graph import Graph
from archc.ir.ops import OPS, VIEW
from archc.passes import register
from archc.spec.expr import MAX_MAGNITUDE, number
from archc.spec.limits import Limits


@register("costs")
def costs(g: Graph) -> None:
    for node in g.nodes():
        op = OPS[node.op]
        in_shapes = [g[i].shape for i in g.inputs(node.name)]
        figures = {"params": op.params(node.attrs, in_shapes, node.shape),
                   "buffers": op.buffers(node.attrs, in_shapes, node.shape),
                   "macs": op.macs(node.attrs, in_shapes, node.shape),
                   "activations": 0 if VIEW in op else math.prod(node.shape)}
        for k, v in figures.items():  # computed figures follow the numeric policy too
            if not -MAX_MAGNITUDE <= v <= MAX_MAGNITUDE:
                try:
                    number(v, f" ({k} of this {node.op})")
                except ArchcError as e:
                    raise LimitError(e.message, node.loc, node.name) from None
        node.meta.update(figures)


@register("limits")
def limits(g: Graph) -> None:
    """The module's parameters and buffers, and the most activation values one sample's forward pass holds at once
    (train or eval mode), within the graph's limits (g.meta["limits"]: the spec's). Located at the node that
    holds the most."""
    from archc.passes.liveness import peak

    lim = g.meta.get("limits") or Limits()
    modules = [n for n in g.nodes() if n.name == n.module]  # a shared parameter-free module counts once
    weights = sum(n.meta["params"] + n.meta["buffers"] for n in modules)
    if weights > lim.params:
        big = max(modules, key=lambda n: n.meta["params"] + n.meta["buffers"])
        raise LimitError(f"the module would hold {weights:,} parameters and buffers, this {big.op} "
                         f"{big.meta['params'] + big.meta['buffers']:,} of them {lim.exceeded('params')}",
                         big.loc, big.name)
    schedules = g.meta["schedules"]
    g.meta["peak"] = {False: peak(g, schedules[False])}  # the figure the report quotes, computed once
    g.meta["peak"][True] = g.meta["peak"][False] if schedules[True] == schedules[False] else peak(g, schedules[True])
    most = max(g.meta["peak"].values())
    if most > lim.activations:
        big = max(g.nodes(), key=lambda n: n.meta["activations"])  # the first of the largest
        which = "the input alone" if big.name == g.input else f"this {big.op}'s output"
        raise LimitError(f"one sample's forward pass would hold {most:,} activation values at once, {which} "
                         f"{big.meta['activations']:,} of them {lim.exceeded('activations')}", big.loc, big.name)
