"""Graph -> nn.Module. Submodule names are the spec's names, so state_dict keys are readable and stable."""

from __future__ import annotations

import networkx as nx
import torch
from torch import nn

from archc.errors import SpecError
from archc.ir.ops import OPS
from archc.passes.analysis import topo


class Group(nn.Module):
    """A named scope of the spec: holds submodules, computes nothing itself."""

    def forward(self, *args):  # pragma: no cover - never called; the graph drives execution
        raise RuntimeError("a Group is a namespace; run the enclosing ArchcModule")


class ArchcModule(nn.Module):
    """Runs the analysed graph. forward(x) returns the main output; in train mode, when the spec has
    auxiliary outputs, it returns the tuple (main, *aux) in spec order (`self.output_names`)."""

    def __init__(self, graph: nx.DiGraph, modules: dict[str, nn.Module] | None = None):
        super().__init__()
        self.graph = graph
        self.name = graph.graph["name"]
        built = modules if modules is not None else {}
        order = topo(graph)
        for n in order:
            d = graph.nodes[n]
            if d["op"] == "input" or d["module"] in built:
                continue
            in_shapes = [graph.nodes[i]["shape"] for i in d["inputs"]]
            built[d["module"]] = OPS[d["op"]].build(d["attrs"], in_shapes)
        for path, module in built.items():
            self._register(path, module, graph)
        slot = {n: i for i, n in enumerate(order)}
        self._modules_by_node = {n: built[graph.nodes[n]["module"]] for n in order[1:]}
        outputs = graph.graph["outputs"]
        self.output_names = [o["name"] for o in outputs]
        self._plans = {
            True: self._plan(order, slot, [slot[o["node"]] for o in outputs]),
            False: self._plan([n for n in order if not graph.nodes[n]["aux"]], slot, [slot[outputs[0]["node"]]]),
        }

    def _register(self, path: str, module: nn.Module, graph: nx.DiGraph) -> None:
        parent = self
        *scopes, leaf = path.split(".")
        for i, part in enumerate(scopes):
            child = parent._modules.get(part)
            if child is None:
                child = Group()
                parent.add_module(part, child)
            elif not isinstance(child, Group):
                raise SpecError(f"{'.'.join(scopes[:i + 1])!r} names both an op and a group of ops")
            parent = child
        if leaf in parent._modules:
            raise SpecError(f"{path!r} names both an op and a group of ops")
        parent.add_module(leaf, module)

    def _plan(self, nodes: list[str], slot: dict[str, int], keep: list[int]):
        """Steps (module, input slots, output slot, slots to free after) that release values early."""
        last_use = {}
        for n in nodes[1:]:
            for i in self.graph.nodes[n]["inputs"]:
                last_use[slot[i]] = slot[n]
        steps = []
        for n in nodes[1:]:
            s = slot[n]
            free = [i for i in {slot[j] for j in self.graph.nodes[n]["inputs"]}
                    if last_use.get(i) == s and i not in keep]
            steps.append((self._modules_by_node[n], [slot[i] for i in self.graph.nodes[n]["inputs"]], s, free))
        return steps, keep, len(slot)

    def forward(self, x: torch.Tensor):
        steps, keep, size = self._plans[self.training]
        values: list = [None] * size
        values[0] = x
        for module, inputs, out, free in steps:
            values[out] = module(*[values[i] for i in inputs])
            for i in free:
                values[i] = None
        if len(keep) == 1:
            return values[keep[0]]
        return tuple(values[i] for i in keep)

    def node_modules(self) -> dict[str, nn.Module]:
        """The module that computes each graph node (parameter-free modules may serve several nodes)."""
        return dict(self._modules_by_node)
