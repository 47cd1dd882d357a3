"""The typed graph: Nodes (op, attributes, where they were written, module path, shape, and what passes
found) over a networkx multigraph, which holds the structure and runs the algorithms.

Each edge carries the position of the input it feeds (its key), so a node's inputs, in order, are read from
the graph, never kept beside it; a node may read one value twice (`add` of x and x).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

import networkx as nx

from archc.errors import Loc
from archc.ir.ops import INPUT, OPS, Shape


class GraphError(Exception):
    """A broken graph invariant: a bug in a pass or the expander, never the user's doing."""


@dataclass(eq=False)
class Node:
    name: str  # unique: the module path, or path#k for the k-th use of a shared parameter-free module
    op: str
    attrs: dict
    module: str  # the module path that computes it (state_dict keys come from these)
    loc: Loc | None
    shape: Shape
    meta: dict = field(default_factory=dict)  # what passes found: params, macs, activations, rf, aux, ...


@dataclass
class Output:
    name: str
    node: str
    aux: bool  # an auxiliary output: computed in train mode only


class Graph:
    """A DAG of Nodes with one input and named outputs (the first is the main output)."""

    def __init__(self, name: str, file: str):
        self.name, self.file = name, file
        self.nx = nx.MultiDiGraph()
        self.input: str | None = None
        self.outputs: list[Output] = []
        self.warnings: list = []
        self.meta: dict = {}  # what passes found about the whole graph (schedules)
        self._nodes: dict[str, Node] = {}  # name -> Node (also stored on the networkx node), for fast lookup
        self._order: list[str] | None = None
        self._inputs: dict[str, list[str]] = {}  # read from the edges (or given to add), kept until surgery
        self._in_insertion_order = True  # nodes were only added (or erased): insertion order is topological

    # -- reading ------------------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Node:
        return self._nodes[name]

    def __contains__(self, name: str) -> bool:
        return name in self.nx

    def __iter__(self):
        return iter(self.nx)

    def __len__(self) -> int:
        return len(self.nx)

    def inputs(self, name: str) -> list[str]:
        """The values a node reads, in order."""
        if name not in self._inputs:
            self._inputs[name] = [u for u, _, _ in sorted(self.nx.in_edges(name, keys=True), key=lambda e: e[2])]
        return list(self._inputs[name])

    def uses(self, name: str) -> list[tuple[str, int]]:
        """Every read of a node's value: (reader, input position)."""
        return [(v, k) for _, v, k in self.nx.out_edges(name, keys=True)]

    def users(self, name: str) -> list[str]:
        """The nodes that read a node's value (each once)."""
        return list(self.nx.successors(name))

    def is_output(self, name: str) -> bool:
        return any(o.node == name for o in self.outputs)

    def order(self) -> list[str]:
        """Topological order, ties broken by insertion order (the order the spec was written in). A graph that was
        only added to (each node after its inputs) is in that order already: no sort."""
        if self._order is None:
            if self._in_insertion_order:
                self._order = list(self.nx)
            else:
                rank = {n: i for i, n in enumerate(self.nx)}
                self._order = list(nx.lexicographical_topological_sort(self.nx, key=rank.__getitem__))
        return self._order

    def nodes(self) -> list[Node]:
        """Every node, in topological order."""
        return [self[n] for n in self.order()]

    # -- building and surgery -----------------------------------------------------------------------------
    def add(self, node: Node, inputs: list[str]) -> Node:
        if node.name in self.nx:
            raise GraphError(f"node {node.name!r} exists")
        if any(i not in self.nx for i in inputs):
            raise GraphError(f"node {node.name!r} reads {[i for i in inputs if i not in self.nx]}, not in the graph")
        self.nx.add_node(node.name, node=node)
        self._nodes[node.name] = node
        for i, src in enumerate(inputs):
            self.nx.add_edge(src, node.name, key=i)
        if INPUT in OPS[node.op]:
            self.input = node.name
        self._order = None  # an addition keeps the other nodes' inputs and, after its inputs, the order
        self._inputs[node.name] = list(inputs)
        return node

    def set_inputs(self, name: str, inputs: list[str]) -> None:
        self.nx.remove_edges_from(list(self.nx.in_edges(name, keys=True)))
        for i, src in enumerate(inputs):
            self.nx.add_edge(src, name, key=i)
        self._changed(reordered=True)

    def replace_all_uses(self, old: str, new: str) -> None:
        """Every reader of `old` (nodes, at the same input positions, and outputs) reads `new` instead; `new`
        itself keeps reading `old` (so a node inserted after `old` can take over its readers)."""
        for _, user, k in list(self.nx.out_edges(old, keys=True)):
            if user == new:
                continue
            self.nx.remove_edge(old, user, key=k)
            self.nx.add_edge(new, user, key=k)
        for o in self.outputs:
            if o.node == old:
                o.node = new
        self._changed(reordered=True)

    def erase(self, name: str) -> None:
        """Remove a node nothing reads."""
        if self.users(name) or self.is_output(name):
            raise GraphError(f"cannot erase {name!r}: it is still read")
        self.nx.remove_node(name)
        del self._nodes[name]
        self._changed()

    def copy(self) -> Graph:
        return copy.deepcopy(self)

    def with_shapes(self, shapes: dict[str, Shape], attrs: dict[str, dict] | None = None) -> Graph:
        """A copy of the same structure whose nodes have the given shapes (others keep theirs), attributes where
        given, and meta dicts of their own; the graph's meta is copied one level deep. Cheaper than copy():
        attributes are shared, not copied."""
        new = copy.copy(self)
        new.nx = self.nx.copy()
        new._nodes = {}
        for name, node in self._nodes.items():
            twin = dataclasses.replace(node, shape=shapes.get(name, node.shape),
                                       attrs=(attrs or {}).get(name, node.attrs), meta=dict(node.meta))
            new._nodes[name] = twin
            new.nx.nodes[name]["node"] = twin
        new.outputs = [dataclasses.replace(o) for o in self.outputs]
        new.warnings, new.meta = list(self.warnings), dict(self.meta)
        new._inputs = {k: list(v) for k, v in self._inputs.items()}
        new._order = None if self._order is None else list(self._order)
        return new

    def _changed(self, reordered: bool = False) -> None:
        self._order, self._inputs = None, {}
        self._in_insertion_order &= not reordered

    # -- invariants ---------------------------------------------------------------------------------------
    def lint(self) -> None:
        """Structural invariants every pass must keep; a failure is a bug in archc (GraphError)."""
        rank = {n: i for i, n in enumerate(self.nx)}
        if any(rank[u] >= rank[v] for u, v in self.nx.edges()) and not nx.is_directed_acyclic_graph(self.nx):
            raise GraphError(f"{self.name}: the graph has a cycle")
        inputs = [n for n in self if INPUT in OPS[self[n].op]]
        if inputs != [self.input]:
            raise GraphError(f"{self.name}: expected the one input {self.input!r}, found {inputs}")
        pred = self.nx.pred
        for n, node in self.nx.nodes(data="node"):
            keys = sorted(k for by_key in pred[n].values() for k in by_key)
            if node.name != n or node.op not in OPS:
                raise GraphError(f"{n}: node named {node.name!r} with op {node.op!r}")
            if keys != list(range(len(keys))):
                raise GraphError(f"{n}: input positions {keys} are not 0..{len(keys) - 1}")
            arity = OPS[node.op].arity
            if arity is not None and len(keys) != arity or arity is None and not keys:
                raise GraphError(f"{n}: {node.op} takes {arity or 'one or more'} inputs, has {len(keys)}")
        missing = [o.node for o in self.outputs if o.node not in self]
        if not self.outputs or self.outputs[0].aux or missing:
            raise GraphError(f"{self.name}: outputs {[o.node for o in self.outputs]} (main first; missing: {missing})")
