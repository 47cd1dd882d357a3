"""Passes about the graph's structure: verification, auxiliary heads, stochastic depth's schedule."""

from __future__ import annotations

import networkx as nx

from archc.errors import Diagnostics, SpecError
from archc.ir.graph import Graph
from archc.passes import register


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
            errors.add(SpecError("node feeds no output (a `from:` skipped it?)", node.loc, node.name))
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


@register("schedule_drop_path")
def schedule_drop_path(g: Graph) -> None:
    """Stochastic depth's linear rule: the l-th of L scheduled drop-paths drops with p = l / L * p_last."""
    scheduled = [node for node in g.nodes() if "drop_path_linear" in node.meta]
    for depth, node in enumerate(scheduled, 1):
        node.attrs = {**node.attrs, "p": depth / len(scheduled) * node.meta["drop_path_linear"]}
