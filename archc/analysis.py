"""The analysed graph as figures: per-layer rows and totals, as a table or as JSON."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import networkx as nx

from archc.ir.ops import OPS
from archc.passes.analysis import topo
from archc.spec.load import Spec

WEIGHT_LAYERS = {"conv", "linear", "conv_bn_act"}


@dataclass
class Analysis:
    spec: Spec
    graph: nx.DiGraph

    @property
    def name(self) -> str:
        return self.graph.graph["name"]

    def nodes(self):
        """(node id, attributes) in topological order (the order the spec is written in)."""
        return self._nodes

    @cached_property
    def _nodes(self):
        return [(n, self.graph.nodes[n]) for n in topo(self.graph)]

    @property
    def input_shape(self) -> list[int]:
        """The per-sample input shape, [C, H, W] or [F], with expressions evaluated."""
        return list(self.graph.nodes[self.graph.graph["input"]]["shape"])

    @property
    def params(self) -> int:
        """Trainable parameters of the whole module, auxiliary heads included."""
        return sum(d["params"] for _, d in self._unique())

    @property
    def params_without_aux(self) -> int:
        return sum(d["params"] for _, d in self._unique() if not d["aux"])

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one image's inference forward pass (conv and linear; aux heads excluded)."""
        return sum(d["macs"] for _, d in self.nodes() if not d["aux"])

    @property
    def activations(self) -> int:
        """Elements of every op output in one image's inference forward (views excluded, input included)."""
        return sum(d["activations"] for _, d in self.nodes() if not d["aux"])

    @property
    def peak_activations(self) -> int:
        """Most elements alive at once in one image's inference forward pass that frees every value after
        its last use, as ArchcModule does. Views share their input's storage; the input stays alive (the
        caller holds it)."""
        order = [(n, d) for n, d in self.nodes() if not d["aux"]]
        owner, last = {}, {}
        for step, (n, d) in enumerate(order):
            owner[n] = owner[d["inputs"][0]] if OPS[d["op"]].view and d["inputs"] else n
            for i in d["inputs"]:
                last[owner[i]] = step
        for held in (self.graph.graph["outputs"][0]["node"], self.graph.graph["input"]):
            last[owner[held]] = len(order)
        live = peak = 0
        for step, (n, d) in enumerate(order):
            live += d["activations"] if owner[n] == n else 0
            peak = max(peak, live)
            live -= sum(self.graph.nodes[o]["activations"] for o in {owner[i] for i in d["inputs"]}
                        if last.get(o) == step)
        return peak

    @property
    def depth(self) -> int:
        """Weight layers (conv, linear) on the longest path through the inference graph: ResNet-50's 50."""
        longest = {}
        for n, d in self.nodes():
            if not d["aux"]:
                longest[n] = max((longest[i] for i in d["inputs"]), default=0) + (d["op"] in WEIGHT_LAYERS)
        return longest[self.graph.graph["outputs"][0]["node"]]

    @property
    def outputs(self) -> list[dict]:
        g = self.graph
        return [{"name": o["name"], "shape": list(g.nodes[o["node"]]["shape"]), "aux": o["aux"]}
                for o in g.graph["outputs"]]

    @property
    def receptive_field(self) -> dict:
        rf = self.graph.nodes[self.graph.graph["outputs"][0]["node"]]["rf"]
        return {"size": list(rf["size"]), "jump": list(rf["jump"]), "start": list(rf["start"])}

    @property
    def warnings(self) -> list:
        return self.graph.graph["warnings"]

    def check_expect(self) -> None:
        """The figures the spec declares under `expect:` must be the computed ones."""
        from archc.errors import ExpectError

        actual = {"params": self.params, "params_without_aux": self.params_without_aux, "macs": self.macs,
                  "output": self.outputs[0]["shape"]}
        for key, want in self.spec.data.get("expect", {}).items():
            if actual[key] != want:
                fmt = (lambda v: f"{v:,}") if isinstance(want, int) else str
                raise ExpectError(f"{key} is {fmt(actual[key])} but the spec expects {fmt(want)}",
                                  self.spec.loc(("expect", key)), "expect")

    def _unique(self):
        seen = set()
        for n, d in self.nodes():
            if d["module"] not in seen:
                seen.add(d["module"])
                yield n, d

    def layers(self) -> list[dict]:
        return [{"name": n, "op": d["op"], "shape": list(d["shape"]), "params": d["params"] if n == d["module"] else 0,
                 "macs": d["macs"], "activations": d["activations"], "aux": d["aux"],
                 "receptive_field": {k: list(v) for k, v in d["rf"].items()}, "line": d["loc"].line}
                for n, d in self.nodes()]

    def to_dict(self) -> dict:
        return {"name": self.name, "file": self.spec.file, "params": self.params,
                "params_without_aux": self.params_without_aux, "macs": self.macs,
                "activations": self.activations, "activation_bytes_fp32": 4 * self.activations,
                "peak_activations": self.peak_activations, "depth": self.depth,
                "receptive_field": self.receptive_field, "input": self.input_shape,
                "outputs": self.outputs, "warnings": [str(w) for w in self.warnings],
                "layers": self.layers()}
