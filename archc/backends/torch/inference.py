"""The inference module: eval-mode graph passes on a copy of a trained module's graph, then a module whose
fused nodes fold the trained conv and BN weights and whose other nodes reuse the trained modules. On the CPU
its forward is generated per kind of input (archc/backends/torch/cpu/forward.py); elsewhere, and whenever the
generated forward does not apply, the executor interprets the graph."""

from __future__ import annotations

from collections import OrderedDict
from operator import attrgetter

import torch

from archc.backends.torch.cpu import forward as codegen
from archc.backends.torch.executor import ArchcModule
from archc.backends.torch.fused import FusedConvBNAct
from archc.passes import INFERENCE, run

# Each fused op, built from the trained modules it replaces (`trained(path)`); every other node keeps its module.
FOLD = {
    "conv_bn_act": lambda a, trained: FusedConvBNAct(trained(a["conv"]), trained(a["bn"]) if a["bn"] else None,
                                                     a["act"]),
}


_VERSION = attrgetter("_version")


class InferenceModule(ArchcModule):
    """The fused module. forward(x) on the CPU runs the forward generated for x's kind — its shape (every size
    the layers allow), strides and dtype — generated on the first such call from the shapes inferred for that
    input: weights packed for oneDNN, memory planned. A size the layers do not allow is the same located
    ShapeError the eager module raises. The last `max_plans` kinds are kept (least recently used dropped); a change
    to any parameter or buffer (load_state_dict, .to(), in-place edits) generates them again. Training mode,
    other devices, dtypes oneDNN does not compute, autograd, tracing, torch.compile and ARCHC_KERNELS=reference
    run the interpreter."""

    MAX_PLANS = 8  # default for max_plans: kinds of input whose generated forward is kept

    def __init__(self, graph, modules=None, max_plans: int | None = None):
        super().__init__(graph, modules)
        self._forwards: OrderedDict = OrderedDict()
        self.max_plans = self.MAX_PLANS if max_plans is None else max_plans

    def forward(self, x: torch.Tensor):
        if codegen.supported(self, x):
            self._check_input(x)
            entry = self._forward_for(x)
            out = entry(x)
            if out is not None:  # None: another thread is running it
                return out
        return super().forward(x)

    def _forward_for(self, x: torch.Tensor) -> codegen.Forward:
        key = (tuple(x.shape), x.stride(), x.dtype)
        state = self._state()
        entry = self._forwards.get(key)
        if entry is None or entry[0] != state:
            if entry is None and self.max_plans < 1:
                return codegen.Forward(self, x)
            entry = self._forwards[key] = (state, codegen.Forward(self, x))
            while len(self._forwards) > max(self.max_plans, 1):
                self._forwards.popitem(last=False)
        self._forwards.move_to_end(key)
        return entry[1]

    def generated(self, x: torch.Tensor) -> codegen.Forward:
        """The generated forward (its source, memory plan and arena) that runs inputs like x."""
        if not codegen.supported(self, x):
            raise ValueError("the generated forward runs eval-mode CPU inputs of a dtype oneDNN computes, "
                             "without autograd")
        self._check_input(x)
        return self._forward_for(x)

    def _state(self) -> tuple:
        """Every parameter and buffer: which tensor, where its data is, how often it changed in place
        (inference tensors, made under torch.inference_mode, keep no count)."""
        tensors = [t for m in self._holders() for t in (*m._parameters.values(), *m._buffers.values())
                   if t is not None]
        try:
            versions = tuple(map(_VERSION, [t for t in tensors if not t.is_inference()]
                                 if self._has_inference else tensors))
        except RuntimeError:  # an inference tensor arrived since: count the others
            self._has_inference = True
            return self._state()
        return (*map(id, tensors), *map(torch.Tensor.data_ptr, tensors), *versions)

    def _holders(self) -> list:
        holders = getattr(self, "_holder_list", None)
        if holders is None:
            holders = self._holder_list = [m for m in self.modules() if m._parameters or m._buffers]
            self._has_inference = any(t.is_inference() for t in (*self.parameters(), *self.buffers()))
        return holders

    def _apply(self, fn, recurse=True):  # .to(), .half(), ...: tensors may become inference tensors
        self._holder_list = None
        return super()._apply(fn, recurse)

    def __getstate__(self):  # copies and pickles generate their own forwards
        state = dict(self.__dict__)
        state["_forwards"], state["_holder_list"] = OrderedDict(), None
        return state


def fuse(model, max_plans: int | None = None):
    """A new eval-only module computing model.eval()'s function with fused ops. `model` is unchanged.
    max_plans: kinds of input (shape, strides, dtype) whose generated CPU forward is kept (default
    InferenceModule.MAX_PLANS, 8; 0 keeps none: every call plans afresh).

    Fused weights are stored channels_last: the Triton kernels read channels (K) contiguously, and on the
    CPU PyTorch's oneDNN convolutions then run channels_last end to end (measured: bench/cpu_inference.py).
    """
    g = model.graph.copy()
    g.outputs = [o for o in g.outputs if not o.aux]
    for n in reversed(g.order()):
        if g[n].meta["aux"]:
            g.erase(n)
    run(g, INFERENCE)
    modules = {}
    for node in g.nodes():
        if node.name == g.input or node.module in modules:
            continue
        fold = FOLD.get(node.op)
        modules[node.module] = fold(node.attrs, model.module_at) if fold else model.module_at(node.module)
    fused = InferenceModule(g, modules, max_plans).eval().to(memory_format=torch.channels_last)
    fused.analysis = model.analysis
    fused._spec_graph = model.graph  # sizes are checked as the trained module checks them: the same errors
    return fused
