"""Passes about the graph's structure: verification, auxiliary heads, stochastic depth's schedule."""

from __future__ import annotations

import networkx as nx

from archc.errors import Diagnostics, SpecError
from archc.ir.graph import Graph
from archc.passes import register


UNUSED = ("node feeds no output: nothing that reaches an output reads it (a `from:` skipped it? every item's value is "
          "read by the next item, a `from:`, or `outputs:`; remove the item, or read it)")


@register("verify")
def verify(g: Graph) -> None:
    """The graph keeps its invariants (Graph.lint), and every node is reachable from the input and feeds an
    output. A node that feeds none is reported where its chain of unused nodes starts."""
    g.lint()
    reach = nx.descendants(g.nx, g.input) | {g.input}
    feeds = _ancestors(g, [o.node for o in g.outputs])
    errors = Diagnostics()
    for node in g.nodes():
        if node.name not in reach:
            errors.add(SpecError("node is not reachable from the input", node.loc, node.name))
        elif node.name not in feeds and all(i in feeds for i in g.inputs(node.name)):
            errors.add(SpecError(UNUSED, node.loc, node.name))
    errors.raise_if_any()


def _ancestors(g: Graph, nodes: list[str]) -> set[str]:
    """The nodes and everything they read, in one walk however many they are (linear in the graph's size)."""
    found, todo = set(nodes), list(nodes)
    while todo:
        for p in g.nx.predecessors(todo.pop()):
            if p not in found:
                found.add(p)
                todo.append(p)
    return found


@register("mark_aux")
def mark_aux(g: Graph) -> None:
    """Nodes needed only by auxiliary outputs run in train mode only: meta["aux"]."""
    needed = _ancestors(g, [o.node for o in g.outputs if not o.aux])
    for n in g:
        g[n].meta["aux"] = n not in needed


RAMPS = {  # block k of N (0-based) -> its probability, p the schedule's, computed as the sources compute it
    "l/L": lambda p, k, n: (k + 1) / n * p,  # Huang et al. 2016: block l = k + 1 of L drops l/L * p_L
    "k/N": lambda p, k, n: p * k / n,  # torchvision's EfficientNet: sd_prob * stage_block_id / total_stage_blocks
    "k/(N-1)": lambda p, k, n: p * k / (n - 1.0) if n > 1 else 0.0,  # torchvision's ConvNeXt: 0 first, p last
}


@register("schedule_drop_path")
def schedule_drop_path(g: Graph) -> None:
    """Stochastic depth's schedules: graph.meta["drop_path_blocks"] lists, in order, every residual block that
    declares `drop_path: {linear: p, ramp: ...}` (its drop-path node, or None when its shortcut is not added); the
    k-th of N drops with its ramp's probability."""
    blocks = g.meta.get("drop_path_blocks", [])
    for k, b in enumerate(blocks):
        if b["node"] is not None and b["node"] in g:
            node = g[b["node"]]
            node.attrs = {**node.attrs, "p": RAMPS[b["ramp"]](b["p"], k, len(blocks))}
