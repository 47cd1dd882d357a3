"""The CPU inference forward, generated: once per kind of input (shape, dtype), the fused graph becomes one
straight-line Python function — no interpreter loop, no dictionary look-ups, no module calls for the ops that
matter — over a static memory plan (archc/passes/memory.py) materialised as one arena.

For the graph of `archc.fuse` (BN folded, conv + BN + activation + residual fused) it plans memory for this
batch size and dtype, packs every convolution's weight for oneDNN (archc_kernels.cpu.Packed), and emits one
line per node: oneDNN's fused convolution ops called directly (the residual added in place over its own storage
when it dies there), a BN no conv precedes as one multiply-add over strided data (DenseNet's pre-activation,
the activation after it in place), pooling and joins writing into their planned arena storage,
concatenations' inputs written into their slices of it (so concat copies nothing but what oneDNN allocated
itself), values deleted after their last use.
Constants (packed weights, arena views, argument tuples) are bound as the function's globals.
The source is archc's own text, generated from the typed graph: nothing of a spec is ever executed.
"""

from __future__ import annotations

import dataclasses
import math
import threading

import torch

import archc_kernels
from archc_kernels import cpu, native
from archc.ir.graph import Graph, Node
from archc.ir.ops import ACTIVATION, CONCAT, OPS, VIEW, pair
from archc.errors import ArchcError
from archc.passes import shapes
from archc.backends.torch.cpu.memory import ARENA, INPLACE, OWN, SLICE, VIEW_SLOT, MemoryPlan, Target, plan

# Ops the generated code writes into storage it is given (the others allocate their value).
_WRITES = {"concat", "add", "avgpool", "gap", "adaptive_avgpool"}


def _flat_view(g: Graph, node: Node) -> bool:
    """A view costs nothing: flatten of a 1x1 map (or of a flat value) reshapes channels_last data in place. A
    view of part of its input (a crop, a chunk) is copied out instead, so that it does not keep the whole input
    alive (U-Net's skips would otherwise stay whole until the decoder)."""
    x = g[g.inputs(node.name)[0]].shape
    if node.op == "flatten":
        return math.prod(x[1:]) == 1
    return VIEW in OPS[node.op] and math.prod(node.shape) == math.prod(x)


def _overwrites(g: Graph, node: Node) -> int | None:
    if node.op == "conv_bn_act" and len(g.inputs(node.name)) == 2:
        return 1  # oneDNN's sum post-op adds the conv into the residual's storage
    if node.op == "add":  # over an input of the output's own shape (not one that broadcasts)
        return next((k for k, i in enumerate(g.inputs(node.name)) if g[i].shape == node.shape), None)
    op = OPS[node.op]
    if ACTIVATION in op and op.act and _inplace(op.act(node.attrs)) is not None:
        return 0
    return None


GEMM_MAX_OUT = 1 << 17
"""Output values up to which a 1x1 conv runs as one GEMM (torch.mm, MKL) over channels_last data plus one
epilogue pass (bias + activation): below it oneDNN's fixed cost per call (~35 us measured: it creates its
primitive descriptor on every call) outweighs the epilogue's extra pass; above it oneDNN's fused epilogue wins."""


def _gemm(g: Graph, node: Node, batch: int, dtype) -> bool:
    """A 1x1, stride-1, unpadded, ungrouped float32 conv small enough to run as torch.mm (and to write its
    value into storage it is given: a concatenation's slice)."""
    if dtype != torch.float32 or node.op not in ("conv", "conv_bn_act") or node.attrs.get("table") is not None:
        return False
    a = node.attrs
    if pair(a["k"]) != (1, 1) or pair(a["stride"]) != (1, 1) or pair(a["pad"]) != (0, 0) or a["groups"] != 1:
        return False
    return len(node.shape) == 3 and batch * math.prod(node.shape) <= GEMM_MAX_OUT


def target(dtype=torch.float32, batch: int = 1) -> Target:
    """What the generated CPU forward does with storage (the memory plan's target) for values of `dtype`: the
    arena holds the concatenations (their inputs written in place: by pooling and joins directly, and by the
    native max pooling in float32; oneDNN's outputs are copied in); every other value that is no slice of one
    is allocated by its op and freed after its last use, so that the arena, held throughout, holds only what
    saves memory."""
    writes = _WRITES | ({"maxpool"} if _native(dtype) else set())

    def writes_into(g, node):
        return node.op in writes or _gemm(g, node, batch, dtype) and len(g.inputs(node.name)) == 1

    return Target(writes=writes_into, overwrites=_overwrites, views=_flat_view,
                  arena=lambda g, node: CONCAT in OPS[node.op])


def _native(dtype) -> bool:
    return dtype == torch.float32 and native.available()


def memory_plan(graph: Graph, batch: int = 1, dtype=torch.float32, static_peak: int | None = None) -> MemoryPlan:
    """The plan the generated CPU forward materialises for a fused graph (archc.fuse's) at the shapes it holds.
    static_peak: the analysis's peak for those shapes, in values per sample (default: the graph's meta)."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    schedule, tgt = graph.meta["schedules"][False], target(dtype, batch)
    planned = plan(graph, schedule, batch, itemsize, tgt)
    if static_peak is None:
        static_peak = graph.meta.get("peak", {}).get(False)  # the analysis's, in values per sample
    if planned.arena_bytes and static_peak is not None and planned.peak_bytes > static_peak * batch * itemsize:
        # The arena is held throughout: where that lifts the peak above the static one, no arena (the
        # concatenations copy their inputs), if that plan is lower.
        plain = plan(graph, schedule, batch, itemsize, dataclasses.replace(tgt, writes=lambda g, n: False))
        if plain.peak_bytes < planned.peak_bytes:
            return plain
    return planned


def planned_graph(module, sample: tuple) -> tuple[Graph, int | None]:
    """The fused graph at per-sample input `sample` (its shapes inferred for that input) and the trained module's
    static peak at that input (values per sample). The module's input check has accepted `sample` on the trained
    module's graph; the fused graph then accepts it too, or archc has a bug (an internal error)."""
    g = module.graph
    try:
        fused = shapes.at_input(g, sample)
        spec = getattr(module, "_spec_graph", g)
        unfused = shapes.at_input(spec, sample) if spec is not g else fused
    except ArchcError as e:
        raise RuntimeError(f"archc internal error: the fused graph of {g.name} refuses input {list(sample)} that "
                           f"the module accepts: {e}") from e
    return fused, None if fused is g else unfused.meta["peak"][False]


def supported(module, x: torch.Tensor) -> bool:
    """The generated forward computes this call: eval mode, a CPU tensor of a dtype oneDNN computes, no
    gradient needed, not traced or compiled, and archc_kernels not forced to its reference."""
    if torch.compiler.is_compiling() or torch.jit.is_tracing():  # first: what follows is not traceable
        return False
    if module.training or not cpu.available() or x.device.type != "cpu" or x.dtype not in cpu.dtypes():
        return False
    if archc_kernels.backend_for(x) != "cpu":
        return False
    return not (torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in module.parameters())))


class Forward:
    """The generated forward of one fused module for inputs of one kind (shape, strides, dtype).

    Every shape it plans from is inferred for x's own shape (archc.passes.shapes). `source` is the generated
    text; `plan` the memory plan; `arena` its storage, reused by every call (a call that finds it busy in another
    thread returns None, and the caller runs the interpreter instead). Outputs never live in the arena. The first
    call runs a checked twin of the forward: after every step, the value's shape, dtype and storage are the
    plan's (a value planned into the arena is exactly its view there), else an internal error, before anything
    reads it. `probe(step, value, local_values)`, when given, is called after every step (tests and benchmarks:
    `probes.Checker`, `probes.Meter`)."""

    def __init__(self, module, x: torch.Tensor, probe=None):
        self.shape, self.dtype = tuple(x.shape), x.dtype
        self.graph, static_peak = planned_graph(module, self.shape[1:])
        g = self.graph
        self.plan = memory_plan(g, x.shape[0], x.dtype, static_peak)
        with torch.inference_mode(False), torch.no_grad():
            self.arena = torch.empty(self.plan.arena_bytes, dtype=torch.uint8)
            if hasattr(probe, "attach"):
                probe.attach(self)
            emitter = _Emitter(module, g, self.plan, self.arena, self.shape, self.dtype, probe)
            self.source = emitter.source()
            namespace = dict(emitter.constants)
            namespace["_verify"] = _Verifier(emitter)
        name = f"<archc {g.name} forward {list(self.shape)} {self.dtype}>"
        exec(compile(self.source, name, "exec"), namespace)
        self._run = namespace["forward"]
        exec(compile(emitter.source(checked=True), name, "exec"), namespace)
        self._first = namespace["forward"]
        self._lock = threading.Lock()

    def __call__(self, x: torch.Tensor):
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if self._first is not None:
                out = self._first(x)
                self._first = None
                return out
            return self._run(x)
        finally:
            self._lock.release()


class _Verifier:
    """The first call's check after every step (see Forward): a mismatch between the plan and what an op computed
    is a bug in archc, reported as such before any later step reads the value (or writes where it planned)."""

    def __init__(self, emitter: _Emitter):
        g, p = emitter.g, emitter.p
        self.name, self.batch, self.dtype = g.name, emitter.batch, emitter.dtype
        self.order, self.shapes = p.order, {n: (emitter.batch, *g[n].shape) for n in p.order}
        self.arena = (emitter.arena.data_ptr(), emitter.arena.data_ptr() + emitter.arena.numel())
        self.outputs = set(g.meta["schedules"][False].outputs)
        self.placed = {}  # value -> the arena view it must be
        for n in p.order:
            slot = p.slots[n]
            if slot.kind == ARENA or slot.kind == SLICE:
                view = emitter.constants[emitter.view(slot.storage, slot.channel, g[n].shape[0])]
                self.placed[n] = (view.data_ptr(), view.stride())

    def __call__(self, step: int, value) -> None:
        n = self.order[step]
        want = self.shapes[n]

        def fail(what):
            raise RuntimeError(f"archc internal error: the generated CPU forward of {self.name} for input "
                               f"{list(self.shapes[self.order[0]])}: step {step} ({n}) {what}")

        if not isinstance(value, torch.Tensor):
            fail(f"gave a {type(value).__name__}, not a tensor")
        if tuple(value.shape) != want or value.dtype != self.dtype:
            fail(f"gave {list(value.shape)} {value.dtype}, planned {list(want)} {self.dtype}")
        if n in self.placed and (value.data_ptr(), value.stride()) != self.placed[n]:
            fail("is not in its planned place in the arena")
        if n in self.outputs and value.numel() and self.arena[0] <= value.data_ptr() < self.arena[1]:
            fail("is an output in the arena")


class _Emitter:
    """Turns the planned graph into the source of `forward(x)` and the constants it reads."""

    def __init__(self, module, g: Graph, p: MemoryPlan, arena: torch.Tensor, shape: tuple, dtype, probe):
        self.module, self.g, self.p, self.arena, self.dtype = module, g, p, arena, dtype
        self.batch = shape[0]
        self.arena_item = torch.empty((), dtype=dtype).element_size()
        self.modules = module.node_modules()
        self.constants: dict[str, object] = {"torch": torch}
        self.lines: list[str] = []
        self.checks: set[int] = set()  # the lines that check a step (the first call's twin only)
        self.names = {n: f"v{i}" for i, n in enumerate(p.order)}
        self.names[g.input] = "x"
        self.views: dict[tuple[str, int, int], str] = {}
        self.done: set[str] = set()  # nodes computed with the one before them
        s = g.meta["schedules"][False]
        if probe is not None:
            self.constants["_probe"] = probe
        for step, (n, dead) in enumerate(zip(s.order, s.dead)):
            if n != g.input:
                self.lines.append(f"# {n}: {g[n].op} -> {p.slots[n].kind} {p.slots[n].storage}")
                self.emit(g[n])
            self.checks.add(len(self.lines))
            self.lines.append(f"_verify({step}, {self.names[n]})")
            if probe is not None:
                self.lines.append(f"_probe({step}, {self.names[n]}, locals())")
            dead = [self.names[d] for d in dead if d != g.input]
            if dead:
                self.lines.append(f"del {', '.join(dead)}")
        outs = [self.names[o] for o in s.outputs]
        if module.returns_dict:  # {name: value} as the module returns it (names are constants: no spec text in code)
            names = tuple(o.name for o in g.outputs if not o.aux)
            self.lines.append(f"return dict(zip({self.const(names, 'names')}, ({', '.join(outs)},)))")
        else:
            self.lines.append(f"return {outs[0]}" if len(outs) == 1 else f"return ({', '.join(outs)},)")

    def source(self, checked: bool = False) -> str:
        lines = self.lines if checked else [line for i, line in enumerate(self.lines) if i not in self.checks]
        return "def forward(x):\n" + "".join(f"    {line}\n" for line in lines)

    # -- constants and storage -----------------------------------------------------------------------------
    def const(self, value, hint: str) -> str:
        name = f"{hint}{len(self.constants)}"
        self.constants[name] = value
        return name

    def view(self, storage: str, channel: int, channels: int) -> str:
        """The constant view of channels [channel, channel + channels) of an arena storage."""
        key = (storage, channel, channels)
        if key not in self.views:
            shape = (self.batch, *self.g[storage].shape)
            start, nbytes = self.p.offsets[storage], self.p.nbytes[storage]
            if start < 0 or start + nbytes > self.arena.numel() or nbytes != math.prod(shape) * self.arena_item \
                    or not 0 <= channel < channel + channels <= shape[1]:
                raise RuntimeError(f"archc internal error: {self.g.name}: arena view of {storage} channels "
                                   f"{channel}..{channel + channels} ({nbytes} bytes at {start}) does not fit "
                                   f"{list(shape)} in an arena of {self.arena.numel()} bytes")
            flat = self.arena[start:start + nbytes].view(self.dtype)
            if len(shape) == 4:  # channels_last: N, H, W, C in memory
                n, c, h, w = shape
                t = flat.view(n, h, w, c).permute(0, 3, 1, 2)
            else:
                t = flat.view(shape)
            self.views[key] = self.const(t[:, channel:channel + channels], "S")
        return self.views[key]

    def in_arena(self, v: str) -> bool:
        return self.p.slots[self.p.slots[v].storage].kind == ARENA

    def dest(self, n: str) -> str | None:
        """Where n's op writes its value: an arena view, or None when the op allocates it."""
        slot = self.p.slots[n]
        if slot.kind == ARENA or slot.kind == SLICE and not slot.copied:
            return self.view(slot.storage, slot.channel, self.g[n].shape[0])
        return None

    def assign(self, n: str, expr: str) -> None:
        """n = expr, where expr allocates n's value; a copied slice then goes into its place."""
        slot, name = self.p.slots[n], self.names[n]
        if slot.kind == SLICE and slot.copied:
            target = self.view(slot.storage, slot.channel, self.g[n].shape[0])
            self.lines.append(f"{target}.copy_({expr})")
            self.lines.append(f"{name} = {target}")
        else:
            self.lines.append(f"{name} = {expr}")

    # -- one node ------------------------------------------------------------------------------------------
    def emit(self, node: Node) -> None:
        n, g = node.name, self.g
        ins = [self.names[i] for i in g.inputs(n)]
        if n in self.done:
            self.lines.append(f"{self.names[n]} = {ins[0]}")
            return
        handler = getattr(self, f"_{node.op}", None)
        if handler is not None and handler(node, ins):
            return
        if self.p.slots[n].kind == VIEW_SLOT and node.op == "flatten":
            self.lines.append(f"{self.names[n]} = {ins[0]}.reshape({self.batch}, -1)")
            return
        if self.p.slots[n].kind == VIEW_SLOT and VIEW in OPS[node.op]:
            if node.shape == g[g.inputs(n)[0]].shape:  # an identity in eval mode (dropout, drop-path)
                self.lines.append(f"{self.names[n]} = {ins[0]}")
            else:  # a view of part of its input (chunk, crop): the module makes it, no copy
                self.lines.append(f"{self.names[n]} = {self.const(self.modules[n], 'M')}({', '.join(ins)})")
            return
        if self.p.slots[n].kind == INPLACE:
            act = _inplace(OPS[node.op].act(node.attrs))
            self.lines.append(f"{self.names[n]} = {self.const(act, 'act')}({ins[0]})")
            return
        expr = f"{self.const(self.modules[n], 'M')}({', '.join(ins)})"
        if self.p.slots[n].kind == OWN and VIEW in OPS[node.op] and self.in_arena(g.inputs(n)[0]):
            expr += ".clone(memory_format=torch.contiguous_format)"  # an output must not alias the arena
        self.assign(n, expr)

    def _packed(self, node: Node) -> cpu.Packed:
        m, g = self.modules[node.name], self.g
        x_shape = (self.batch, *g[g.inputs(node.name)[0]].shape)
        return cpu.Packed(x_shape, self.dtype, m.weight, None, m.bias, stride=m.stride, padding=m.padding,
                          dilation=m.dilation, groups=m.groups, act=getattr(m, "act", "none"))

    def _bn(self, node: Node, ins: list[str]) -> bool:
        """Eval BN as x * scale + shift in one pass over strided input (a concatenation's prefix) where it
        lies; natively with the activation after it, when that is written over it in place (DenseNet's)."""
        bn, n = self.modules[node.name], node.name
        scale, shift = archc_kernels.fold_bn(bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.eps,
                                             dtype=torch.float64)
        act, users = "none", self.g.users(n)
        if len(users) == 1 and self.p.slots[users[0]].kind == INPLACE and OPS[self.g[users[0]].op].act:
            act = OPS[self.g[users[0]].op].act(self.g[users[0]].attrs)
        if len(node.shape) == 3 and _native(self.dtype) and act in native.ACTS and self.p.slots[n].kind == OWN:
            args = self.const((scale.float().contiguous(), shift.float().contiguous(), act), "A")
            self.assign(n, f"{self.const(_affine_act, 'affine')}({ins[0]}, *{args})")
            if act != "none":
                self.done.add(users[0])  # computed with the BN: its value is the BN's storage
            return True
        view = (1, -1) + (1,) * (len(node.shape) - 1)
        scale, shift = (self.const(t.to(self.dtype).view(view), h) for t, h in ((scale, "scale"), (shift, "shift")))
        self.assign(n, f"torch.addcmul({shift}, {ins[0]}, {scale})")
        return True

    def _maxpool(self, node: Node, ins: list[str]) -> bool:
        if len(node.shape) != 3 or not _native(self.dtype):
            return False
        a = node.attrs
        args = (pair(a["k"]), pair(a["stride"] or a["k"]), pair(a["pad"]), (1, 1), a["ceil"])
        out = self.dest(node.name)
        self.assign(node.name, f"{self.const(_maxpool, 'maxpool')}({ins[0]}, *{self.const(args, 'A')}"
                    + (f", {out})" if out else ")"))
        return True

    def _conv_bn_act(self, node: Node, ins: list[str]) -> bool:
        n = node.name
        if self._gemm_conv(node, ins):
            return True
        packed = self._packed(node)
        if len(ins) == 1:
            self.assign(n, self._plain_conv(packed, ins[0]))
            return True
        x, residual = ins
        if not packed.fuses_residual:
            call = self.const(packed.into if self.p.slots[n].kind == INPLACE else packed, "P")
            self.assign(n, f"{call}({residual}, {x})" if self.p.slots[n].kind == INPLACE else
                        f"{call}({x}, {residual})")
            return True
        args, x = self.const(packed.binary_args, "B"), self._padded(packed, x)
        if self.p.slots[n].kind == INPLACE:
            expr = f"{self.const(packed.op_inplace, 'convi')}({residual}, {x}, *{args})"
        else:
            expr = f"{self.const(packed.op_binary, 'convb')}({x}, {residual}, *{args})"
        if packed.after is not None:
            expr = f"{self.const(packed.after, 'act')}({expr})"
        self.assign(n, expr)
        return True

    def _conv(self, node: Node, ins: list[str]) -> bool:
        if node.attrs.get("table") is not None:
            return False
        if self._gemm_conv(node, ins):
            return True
        packed = self._packed(node)
        self.assign(node.name, self._plain_conv(packed, ins[0]))
        return True

    def _plain_conv(self, packed: cpu.Packed, x: str) -> str:
        """oneDNN's conv with its unary post-op, or, for an activation oneDNN has none of, applied after."""
        expr = f"{self.const(packed.op, 'conv')}({self._padded(packed, x)}, *{self.const(packed.args, 'A')})"
        return expr if packed.applied_after is None else f"{self.const(packed.applied_after, 'act')}({expr})"

    def _padded(self, packed: cpu.Packed, x: str) -> str:
        """x, explicitly padded where the conv was packed for that (archc_kernels.shapes.pads_past_window)."""
        return x if packed.pad_input is None else f"{self.const(packed.pad_input, 'pad')}({x})"

    def _gemm_conv(self, node: Node, ins: list[str]) -> bool:
        """A small 1x1 conv as torch.mm over the [pixels, channels] view of channels_last data, written into
        its planned storage (a slice) or over its residual, then bias and activation in one pass."""
        n, slot = node.name, self.p.slots[node.name]
        if not _gemm(self.g, node, self.batch, self.dtype) or len(ins) == 2 and slot.kind != INPLACE:
            return False
        m = self.modules[n]
        cout, cin = m.weight.shape[:2]
        c, h, w = node.shape
        weight = self.const(m.weight.detach().reshape(cout, cin).t().to(self.dtype).contiguous(), "W")
        x2 = f"{ins[0]}.permute(0, 2, 3, 1).reshape(-1, {cin})"
        dest = self.dest(n)
        if len(ins) == 2:  # over the residual, which dies here: residual += x @ w
            self.lines.append(f"t = {ins[1]}.permute(0, 2, 3, 1).view(-1, {cout})")
            self.lines.append(f"t.addmm_({x2}, {weight})")
            value = ins[1]
        elif dest is not None:
            target = self.const(self.constants[dest].permute(0, 2, 3, 1).reshape(-1, c), "S")
            self.lines.append(f"t = torch.mm({x2}, {weight}, out={target})")
            value = dest
        else:
            self.lines.append(f"t = torch.mm({x2}, {weight})")
            value = f"t.view({self.batch}, {h}, {w}, {c}).permute(0, 3, 1, 2)"
        act = getattr(m, "act", "none")
        if m.bias is not None:
            bias = self.const(m.bias.detach().to(self.dtype).contiguous(), "b")
            self.lines.append(f"{self.const(torch.ops.aten._add_relu_.Tensor, 'add_relu_')}(t, {bias})"
                              if act == "relu" else f"t.add_({bias})")
        if act != "none" and (act != "relu" or m.bias is None):
            self.lines.append(f"{self.const(_inplace(act), 'act')}(t)")
        self.assign(n, value)
        self.lines.append("del t")
        return True

    def _concat(self, node: Node, ins: list[str]) -> bool:
        n, slot = node.name, self.p.slots[node.name]
        if slot.kind not in (ARENA, SLICE):
            self.assign(n, f"torch.cat(({', '.join(ins)},), 1)")
            return True
        for u, channel in self.p.copies.get(n, []):
            self.lines.append(f"{self.view(slot.storage, channel, self.g[u].shape[0])}.copy_({self.names[u]})")
        self.lines.append(f"{self.names[n]} = {self.dest(n)}")
        return True

    def _add(self, node: Node, ins: list[str]) -> bool:
        n, kind = node.name, self.p.slots[node.name].kind
        if kind == INPLACE:
            k = _overwrites(self.g, node)
            first, rest = ins[k], ins[:k] + ins[k + 1:]
        elif self.dest(n) is not None:
            first, rest = f"torch.add({ins[0]}, {ins[1]}, out={self.dest(n)})", ins[2:]
        else:
            self.assign(n, " + ".join(ins))
            return True
        self.lines.append(f"{self.names[n]} = {first}" + "".join(f".add_({r})" for r in rest))
        return True

    def _avgpool(self, node: Node, ins: list[str]) -> bool:
        out = self.dest(node.name)
        if out is None:
            return False
        a = node.attrs
        args = (pair(a["k"]), pair(a["stride"] or a["k"]), pair(a["pad"]), a["ceil"], a["count_include_pad"],
                a["divisor"])
        self.lines.append(f"{self.names[node.name]} = torch._C._nn.avg_pool2d({ins[0]}, *{self.const(args, 'A')}, "
                          f"out={out})")
        return True

    def _adaptive_avgpool(self, node: Node, ins: list[str]) -> bool:
        out = self.dest(node.name)
        if out is None:
            return False
        size = node.shape[1:]
        self.lines.append(f"{self.names[node.name]} = torch._C._nn.adaptive_avg_pool2d({ins[0]}, {list(size)}, "
                          f"out={out})")
        return True

    _gap = _adaptive_avgpool


def _maxpool(x, k, s, p, d, ceil, out=None):
    """Native max pooling (no indices) where x's channels are contiguous; PyTorch's otherwise."""
    if native.takes(x):
        return native.maxpool(x, k, s, p, d, ceil, out)
    y = torch.nn.functional.max_pool2d(x, k, s, p, d, ceil)
    return y if out is None else out.copy_(y)


def _affine_act(x, scale, shift, act):
    if native.takes(x):
        return native.affine_act(x, scale, shift, act)
    y = torch.addcmul(shift.view(1, -1, 1, 1), x, scale.view(1, -1, 1, 1))
    return y if act == "none" else _inplace(act)(y)


def _inplace(act: str | None):
    """The in-place form of a standard activation (archc_kernels.ACTIVATIONS), or None."""
    entry = archc_kernels.ACTIVATIONS.get(act)
    return None if entry is None else entry.inplace
