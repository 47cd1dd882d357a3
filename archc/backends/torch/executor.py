"""Graph -> nn.Module. Submodule names are the spec's names, so state_dict keys are readable and stable; the
forward pass follows the liveness pass's schedule, freeing each value after its last use."""

from __future__ import annotations

import torch
from torch import nn

from archc.backends.torch.lower import lower
from archc.backends.torch.model_api import ModelApi
from archc.backends.torch.names import check
from archc.ir.graph import Graph
from archc.ir.ops import OPS, PARAMETER
from archc.passes import shapes
from archc.passes.liveness import Schedule


class Group(nn.Module):
    """A named scope of the spec: holds submodules, computes nothing itself."""

    def forward(self, *args):  # pragma: no cover - never called; the graph drives execution
        raise RuntimeError("a Group is a namespace; run the enclosing ArchcModule")


class ArchcModule(ModelApi, nn.Module):
    """Runs the analysed graph. forward(x) returns the main output; in train mode, when the spec has
    auxiliary outputs, it returns the tuple (main, *aux) in spec order (`self.output_names`). When the graph's
    outputs are named (`outputs:` in the spec: graph.meta["dict_outputs"]), it returns a dict {name: tensor} in
    their order instead, auxiliary outputs (train mode) last.
    `modules`: module path -> a module to use instead of lowering the op (archc.fuse passes trained ones).
    timm's model API (forward_features, forward_head, reset_classifier, feature_info, pretrained_cfg...) comes
    from ModelApi (model_api.py)."""

    def __init__(self, graph: Graph, modules: dict[str, nn.Module] | None = None):
        super().__init__()
        check(graph)
        self.graph = graph
        self.name = graph.name
        built = dict(modules or {})
        for node in graph.nodes():
            if node.name != graph.input and node.module not in built:
                built[node.module] = lower(node, [graph[i].shape for i in graph.inputs(node.name)])
        keyed_at_path = {n.module for n in graph.nodes() if PARAMETER in OPS[n.op]}
        for path, module in built.items():
            *scopes, leaf = path.split(".")
            parent = self
            for part in scopes:
                if part not in parent._modules:
                    parent.add_module(part, Group())
                parent = parent._modules[part]
            if path in keyed_at_path:  # its parameter is the key `path` itself: registered on the enclosing module
                parent.register_parameter(leaf, module.weight)
            else:
                parent.add_module(leaf, module)
        order = graph.order()
        self._modules_by_path = built
        self._modules_by_node = {n: built[graph[n].module] for n in order if n != graph.input}
        self.output_names = [o.name for o in graph.outputs]
        self.returns_dict = bool(graph.meta.get("dict_outputs"))
        slot = {n: i for i, n in enumerate(order)}
        self._plans = {training: self._plan(s, slot, training) for training, s in graph.meta["schedules"].items()}
        self._sample = tuple(graph[graph.input].shape)  # per sample: [C, H, W] or [F]
        self._sizes: dict = {}  # (sample shape, training) -> every node's shape, for sizes checked
        self._spec_graph = graph  # the graph input sizes are checked against (archc.fuse: the trained module's)

    def _plan(self, s: Schedule, slot: dict[str, int], training: bool):
        """Steps (module, input slots, output slot, slots to free after) over value slots (the input's is 0), the
        output slots, the number of slots, and the outputs' names (the schedule's outputs, in order)."""
        steps = [(self._modules_by_node[n], [slot[i] for i in self.graph.inputs(n)], slot[n], [slot[d] for d in dead])
                 for n, dead in zip(s.order[1:], s.dead[1:])]
        names = [o.name for o in self.graph.outputs if training or not o.aux]
        return steps, [slot[o] for o in s.outputs], len(slot), names

    def forward(self, x: torch.Tensor):
        if not torch.jit.is_tracing():  # a trace records shapes as tensors; it is checked by the traced call
            self._check_input(x)
        steps, outputs, size, names = self._plans[self.training]
        values: list = [None] * size
        values[0] = x
        for module, inputs, out, free in steps:
            values[out] = module(*[values[i] for i in inputs])
            for i in free:
                values[i] = None
        if self.returns_dict:
            return {name: values[i] for name, i in zip(names, outputs)}
        if len(outputs) == 1:
            return values[outputs[0]]
        return tuple(values[i] for i in outputs)

    def _check_input(self, x) -> None:
        """A batch of the spec's input: [N, C, H, W] (H and W may differ from the spec's where the layers allow)
        or [N, F]; anything else is refused here, naming the shape expected, rather than deep inside a layer. A new
        H x W is checked once (per mode) against every layer the forward runs (archc.passes.shapes.infer): a size
        the layers do not allow is a ShapeError located at the first layer it does not fit, before any work."""
        sample = self._sample
        if not isinstance(x, torch.Tensor) or x.dim() != len(sample) + 1 or x.shape[1] != sample[0] or \
                len(sample) == 1 and x.shape[1:] != sample:
            from archc.errors import ShapeError

            want = "[N, " + ", ".join(map(str, sample[:1] + (("H", "W") if len(sample) == 3 else ()))) + "]"
            got = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ShapeError(f"{self.name}: forward expects a batch of inputs {want} (the spec's input is "
                             f"{list(sample)}), got {got}")
        if not torch.compiler.is_compiling() and x.shape[1:] != sample:  # (compiling: no guard on the size)
            key = (tuple(x.shape[1:]), self.training)
            if key not in self._sizes:
                if len(self._sizes) >= 64:
                    self._sizes.clear()
                g = self._spec_graph
                self._sizes[key] = shapes.infer(g, key[0], g.meta["schedules"][self.training].order)

    def node_modules(self) -> dict[str, nn.Module]:
        """The module that computes each graph node (parameter-free modules may serve several nodes)."""
        return dict(self._modules_by_node)

    def module_at(self, path: str) -> nn.Module:
        """The module that computes the op at a module path (also an op whose parameter is keyed by the path)."""
        return self._modules_by_path[path]
