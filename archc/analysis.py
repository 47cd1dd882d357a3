"""The analysed graph as figures: totals, per-layer rows, the declared figures checked."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from archc.errors import ArchcError, ExpectError
from archc.ir.graph import Graph, Node
from archc.ir.ops import EVAL_IDENTITY, OPS, VIEW, WEIGHT
from archc.passes.liveness import peak
from archc.spec.load import Spec


@dataclass
class Analysis:
    spec: Spec
    graph: Graph

    @property
    def name(self) -> str:
        return self.graph.name

    def nodes(self) -> list[Node]:
        """Every node in topological order (the order the spec is written in)."""
        return self._nodes

    @cached_property
    def _nodes(self) -> list[Node]:
        return self.graph.nodes()

    @property
    def input_shape(self) -> list[int]:
        """The per-sample input shape, [C, H, W] or [F], with expressions evaluated."""
        return list(self.graph[self.graph.input].shape)

    @property
    def params(self) -> int:
        """Trainable parameters of the whole module, auxiliary heads included."""
        return sum(n.meta["params"] for n in self._modules())

    @property
    def params_without_aux(self) -> int:
        return sum(n.meta["params"] for n in self._modules() if not n.meta["aux"])

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one image's inference forward pass (conv and linear; aux heads excluded)."""
        return sum(n.meta["macs"] for n in self.nodes() if not n.meta["aux"])

    @property
    def activations(self) -> int:
        """Values of every op output in one image's inference forward (views excluded, input included)."""
        return sum(n.meta["activations"] for n in self.nodes() if not n.meta["aux"])

    @property
    def peak_activations(self) -> int:
        """Most values alive at once in one image's inference forward pass that frees every value after its
        last use, as the built module does (the same schedule). Views share their input's storage; the input
        stays alive (the caller holds it)."""
        known = self.graph.meta.get("peak", {})
        return known[False] if False in known else peak(self.graph, self.graph.meta["schedules"][False])

    @property
    def depth(self) -> int:
        """Weight layers on the longest path through the inference graph: ResNet-50's 50."""
        g, longest = self.graph, {}
        for n in self.nodes():
            if not n.meta["aux"]:
                longest[n.name] = max((longest[i] for i in g.inputs(n.name)), default=0) + (WEIGHT in OPS[n.op])
        return longest[g.outputs[0].node]

    @property
    def outputs(self) -> list[dict]:
        return [{"name": o.name, "shape": list(self.graph[o.node].shape), "aux": o.aux} for o in self.graph.outputs]

    @property
    def receptive_field(self) -> dict:
        return self.graph[self.graph.outputs[0].node].meta["rf"].to_dict()

    @property
    def published(self) -> dict | None:
        """The accuracy the spec (its selected variant) declares (`published:`), for the architecture as written:
        None when it declares none or when parameters other than the variant were overridden."""
        p = self.spec.published
        return p.to_dict() if p else None

    @property
    def warnings(self) -> list:
        return self.graph.warnings

    def check_expect(self) -> None:
        """The figures the spec declares under `expect:` (or its selected variant does) must be the computed ones;
        nothing is checked when parameters other than the variant are overridden."""
        if self.spec.expect is None:
            return
        expect, where = self.spec.expect
        actual = {"params": lambda: self.params, "params_without_aux": lambda: self.params_without_aux,
                  "macs": lambda: self.macs, "depth": lambda: self.depth, "output": lambda: self.outputs[0]["shape"]}
        for key, want in expect.items():
            got = actual[key]()
            if got != want:
                fmt = (lambda v: f"{v:,}") if isinstance(want, int) else str
                raise ExpectError(f"{key} is {fmt(got)} but the spec expects {fmt(want)}",
                                  self.spec.loc((*where, key)), ".".join(map(str, where)))

    def groups(self, depth: int | None = None, with_input: bool = True) -> dict[str, list[Node]]:
        """The nodes by module path cut to `depth` names (`layer1.0`), in order; one node a group without."""
        out: dict[str, list[Node]] = {}
        for n in self.nodes():
            if with_input or n.name != self.graph.input:
                out.setdefault(".".join(n.name.split(".")[:depth]) if depth else n.name, []).append(n)
        return out

    def _modules(self):
        """One node per module (a shared parameter-free module computes several)."""
        return [n for n in self.nodes() if n.name == n.module]

    def layers(self) -> list[dict]:
        """One row per node: name, op, attributes, inputs, output shape, params (on a module's first node), MACs,
        activations, aux, receptive field, spec line."""
        g = self.graph
        return [{"name": n.name, "op": n.op, "attrs": {k: _plain(v) for k, v in n.attrs.items()},
                 "inputs": g.inputs(n.name), "shape": list(n.shape),
                 "params": n.meta["params"] if n.name == n.module else 0, "macs": n.meta["macs"],
                 "activations": n.meta["activations"], "aux": n.meta["aux"], "receptive_field": n.meta["rf"].to_dict(),
                 "line": n.loc.line if n.loc else None}
                for n in self.nodes()]

    def to_dict(self) -> dict:
        return {"name": self.name, "file": self.spec.file, "params": self.params,
                "params_without_aux": self.params_without_aux, "macs": self.macs,
                "activations": self.activations, "activation_bytes_fp32": 4 * self.activations,
                "peak_activations": self.peak_activations, "depth": self.depth,
                "receptive_field": self.receptive_field, "input": self.input_shape,
                "outputs": self.outputs, "published": self.published, "warnings": [str(w) for w in self.warnings],
                "layers": self.layers()}


def _plain(v):
    """An attribute as JSON holds it (tuples as lists)."""
    return [_plain(x) for x in v] if isinstance(v, tuple) else v


# Pools whose output size is fixed whatever the input's: part of a classifier's head, not of the feature maps.
_FIXED_POOLS = frozenset({"adaptive_avgpool", "adaptive_maxpool"})


@dataclass(frozen=True)
class Head:
    """Where a classifier's head starts, found statically (timm's model API on built modules): `features` is the
    last feature map on the main path (a [C, H, W] value past which only pooling, flattening, dropout,
    normalisation of a 1x1 map and linear layers follow); `nodes` what computes the main output from it, in order;
    `classifier` the last weight layer among them (None: the head only pools, as SqueezeNet's, whose classes come
    from a 1x1 conv inside its feature maps); `pre_logits` the classifier's input (the pooled features), else the
    output."""

    features: str
    nodes: tuple[str, ...]
    classifier: str | None
    pre_logits: str


def head(g: Graph) -> Head:
    """The head of a graph's main output (see Head). Raises ArchcError when something besides the feature map
    feeds it (no single feature map to split the network at)."""
    out = g.outputs[0].node
    n = out
    while True:
        node = g[n]
        shape = node.shape
        spatial = len(shape) == 3 and shape[1] * shape[2] > 1
        cats = OPS[node.op].categories
        if spatial and node.op not in _FIXED_POOLS and not (VIEW in cats or EVAL_IDENTITY in cats) or n == g.input:
            break
        n = g.inputs(n)[0]
    features = n
    order = g.order()
    below = _ancestors(g, features)
    nodes = [m for m in order if m not in below and m in _ancestors(g, out)]
    inside = set(nodes) | {features}
    for m in nodes:
        stray = [i for i in g.inputs(m) if i not in inside]
        if stray:
            raise ArchcError(f"{g.name}: its head ({m}) reads {stray[0]} besides the last feature map {features}: "
                             "no single feature map to split it at")
    weights = [m for m in nodes if WEIGHT in OPS[g[m].op].categories]
    classifier = weights[-1] if weights else None
    return Head(features, tuple(nodes), classifier and g[classifier].module,
                g.inputs(classifier)[0] if classifier else out)


def _ancestors(g: Graph, name: str) -> set[str]:
    """A node and every node it reads, directly or not."""
    seen, todo = {name}, [name]
    while todo:
        for i in g.inputs(todo.pop()):
            if i not in seen:
                seen.add(i)
                todo.append(i)
    return seen
