"""Static analysis passes: every figure is known from the graph before any tensor exists."""

from __future__ import annotations

import math

import networkx as nx

from archc.errors import SpecError
from archc.ir.ops import OPS
from archc.passes import register


def topo(g: nx.DiGraph) -> list[str]:
    """Topological order, ties broken by insertion order (the order the spec was written in)."""
    order = {n: i for i, n in enumerate(g)}
    return list(nx.lexicographical_topological_sort(g, key=order.__getitem__))


@register("schedule_drop_path")
def schedule_drop_path(g: nx.DiGraph) -> None:
    """Stochastic depth's linear rule: the l-th of L scheduled drop-paths drops with p = l / L * p_last."""
    scheduled = [n for n in topo(g) if "schedule" in g.nodes[n]]
    for depth, n in enumerate(scheduled, 1):
        _, p_last = g.nodes[n]["schedule"]
        g.nodes[n]["attrs"] = {**g.nodes[n]["attrs"], "p": depth / len(scheduled) * p_last}


@register("verify")
def verify(g: nx.DiGraph) -> None:
    """The graph is a DAG with one input; every node is reachable from it and feeds an output."""
    if not nx.is_directed_acyclic_graph(g):
        raise SpecError(f"{g.graph['file']}: graph has a cycle")
    inputs = [n for n, d in g.nodes(data=True) if d["op"] == "input"]
    if len(inputs) != 1:
        raise SpecError(f"{g.graph['file']}: graph must have exactly one input, has {len(inputs)}")
    reach = nx.descendants(g, inputs[0]) | {inputs[0]}
    outs = [o["node"] for o in g.graph["outputs"]]
    feeds = set(outs).union(*(nx.ancestors(g, o) for o in outs))
    for n, d in g.nodes(data=True):
        op = OPS[d["op"]]
        if op.arity is not None and len(d["inputs"]) != op.arity or op.arity is None and not d["inputs"]:
            raise SpecError(f"{d['op']} has {len(d['inputs'])} inputs", d["loc"], n)
        if n not in reach:
            raise SpecError("node is not reachable from the input", d["loc"], n)
        if n not in feeds:
            raise SpecError("node feeds no output (a `from:` skipped it?)", d["loc"], n)


@register("mark_aux")
def mark_aux(g: nx.DiGraph) -> None:
    """Nodes needed only by auxiliary outputs run in train mode only."""
    main = next(o["node"] for o in g.graph["outputs"] if not o["aux"])
    needed = nx.ancestors(g, main) | {main}
    for n, d in g.nodes(data=True):
        d["aux"] = n not in needed


@register("costs")
def costs(g: nx.DiGraph) -> None:
    """Parameters, multiply-accumulates and activation elements (per image) of every node."""
    for _, d in g.nodes(data=True):
        op, a = OPS[d["op"]], d["attrs"]
        in_shapes = [g.nodes[i]["shape"] for i in d["inputs"]]
        d["params"] = op.params(a, in_shapes, d["shape"])
        d["macs"] = op.macs(a, in_shapes, d["shape"])
        d["activations"] = 0 if op.view else math.prod(d["shape"])


@register("receptive_field")
def receptive_field(g: nx.DiGraph) -> None:
    """Receptive field per axis of every node: size, jump (stride in input pixels) and start (centre of the
    first output's field, in input coordinates). Joins take the largest field of their inputs."""
    for n in topo(g):
        d = g.nodes[n]
        if d["op"] == "input":
            d["rf"] = {"size": (1, 1), "jump": (1, 1), "start": (0.5, 0.5)}
            continue
        ins = [g.nodes[i]["rf"] for i in d["inputs"]]
        rf = max(ins, key=lambda r: r["size"])
        window = OPS[d["op"]].window
        if window is not None:
            k, s, dil, p = window(d["attrs"], [g.nodes[i]["shape"] for i in d["inputs"]])
            rf = {"size": tuple(rf["size"][i] + (dil[i] * (k[i] - 1)) * rf["jump"][i] for i in range(2)),
                  "jump": tuple(rf["jump"][i] * s[i] for i in range(2)),
                  "start": tuple(rf["start"][i] + ((dil[i] * (k[i] - 1)) / 2 - p[i]) * rf["jump"][i]
                                 for i in range(2))}
        d["rf"] = rf
