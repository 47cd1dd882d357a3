"""Which values a module returns: `select_outputs` makes named internal values (a node, or the value leaving a
module group such as `layer3`) the graph's outputs, marks them as returned by name (graph.meta["dict_outputs"],
which the executor reads), and prunes what none of them needs; `archc.build(..., features=[...])` runs it on a
copy of the analysed graph."""

from __future__ import annotations

import difflib

import networkx as nx

from archc.errors import SpecError
from archc.ir.graph import Graph, Output
from archc.passes import run


def groups(g: Graph) -> dict[str, list[str]]:
    """Module groups (every proper prefix of a node's path: `layer1`, `layer1.0`) -> their nodes, in order."""
    out: dict[str, list[str]] = {}
    for n in g.order():
        parts = n.split(".")
        for i in range(1, len(parts)):
            out.setdefault(".".join(parts[:i]), []).append(n)
    return out


def leaving(g: Graph, members: list[str]) -> list[str]:
    """The values of a group that leave it: read by a node outside it, or outputs of the graph."""
    inside = set(members)
    return [n for n in members if g.is_output(n) or any(u not in inside for u in g.users(n))]


def resolve(g: Graph, name: str, what: str = "features") -> str:
    """The node whose value `name` stands for: the node itself, or the one value leaving the group `name`."""
    if name in g:
        return name
    members = groups(g).get(name)
    if members is None:
        names = list(g) + list(groups(g))
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SpecError(f"{what}: {g.name} has no node or module group {name!r}{hint}")
    values = leaving(g, members)
    if len(values) != 1:
        raise SpecError(f"{what}: group {name!r} has {len(values)} values leaving it ({', '.join(values)}): "
                        "name one of them")
    return values[0]


def select_outputs(g: Graph, names: list[str]) -> Graph:
    """Make `names` the graph's outputs, in order (none auxiliary), and erase every node none of them needs."""
    if not names:
        raise SpecError("features: name at least one node or module group")
    if len(set(names)) != len(names):
        raise SpecError(f"features: a name is given twice ({', '.join(names)})")
    g.outputs = [Output(name, resolve(g, name), False) for name in names]
    g.meta["dict_outputs"] = True  # the module returns {name: tensor}
    needed = set().union(*(nx.ancestors(g.nx, o.node) | {o.node} for o in g.outputs)) | {g.input}
    for n in reversed(g.order()):
        if n not in needed:
            g.erase(n)
    return run(g, ["verify", "mark_aux", "liveness"])
