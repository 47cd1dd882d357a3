"""Inference passes: drop ops that are identities in eval mode, then fuse conv (+ BN) (+ residual add)
(+ ReLU/ReLU6) chains into single `conv_bn_act` nodes that archc_kernels computes.

A producer is fused into its consumer only when that consumer is its only one (as torch.fx's fuser),
so no intermediate that someone else reads disappears.
"""

from __future__ import annotations

import networkx as nx

from archc.passes import register
from archc.passes.analysis import topo

EVAL_IDENTITIES = {"dropout", "drop_path", "identity"}
ACTIVATIONS = {"relu", "relu6"}


def _consumers(g: nx.DiGraph, n: str) -> list[str]:
    outs = [o["node"] for o in g.graph["outputs"]]
    return list(g.successors(n)) + [f"<output {o}>" for o in outs if o == n]


def _only_consumer(g: nx.DiGraph, n: str, op: str | set) -> str | None:
    users = _consumers(g, n)
    ops = {op} if isinstance(op, str) else op
    if len(users) == 1 and users[0] in g and g.nodes[users[0]]["op"] in ops:
        if g.nodes[users[0]]["inputs"].count(n) == 1:
            return users[0]
    return None


def _replace(g: nx.DiGraph, old: str, new: str) -> None:
    """Point every reader of `old` (nodes and graph outputs) at `new`, then remove `old`."""
    for user in list(g.successors(old)):
        d = g.nodes[user]
        d["inputs"] = [new if i == old else i for i in d["inputs"]]
        g.add_edge(new, user)
    for o in g.graph["outputs"]:
        if o["node"] == old:
            o["node"] = new
    g.remove_node(old)


@register("strip_eval_identities")
def strip_eval_identities(g: nx.DiGraph) -> None:
    """Dropout, drop-path and identity compute nothing in eval mode: bypass them."""
    for n in topo(g):
        d = g.nodes[n]
        if d["op"] in EVAL_IDENTITIES:
            _replace(g, n, d["inputs"][0])


@register("fuse_conv_bn_act")
def fuse_conv_bn_act(g: nx.DiGraph) -> None:
    """conv [-> bn] [-> add(., residual)] [-> relu|relu6]  =>  conv_bn_act(x[, residual])."""
    for n in topo(g):
        if n not in g or g.nodes[n]["op"] != "conv" or g.nodes[n]["attrs"].get("table") is not None:
            continue
        d = g.nodes[n]
        fused = {"conv": d["module"], "bn": None, "act": "none", **d["attrs"]}
        inputs = list(d["inputs"])
        bn = _only_consumer(g, n, "bn")
        if bn and len(g.nodes[bn]["shape"]) == 3:
            fused["bn"] = g.nodes[bn]["module"]
            _replace(g, bn, n)
        add = _only_consumer(g, n, "add")
        if add and len(g.nodes[add]["inputs"]) == 2:
            residual = next(i for i in g.nodes[add]["inputs"] if i != n)
            inputs.append(residual)
            _replace(g, add, n)
            g.add_edge(residual, n)
        act = _only_consumer(g, n, ACTIVATIONS)
        if act:
            fused["act"] = g.nodes[act]["op"]
            _replace(g, act, n)
        if fused["bn"] or fused["act"] != "none" or len(inputs) == 2:
            d.update(op="conv_bn_act", attrs=fused, inputs=inputs)


INFERENCE = ["strip_eval_identities", "fuse_conv_bn_act", "verify"]
