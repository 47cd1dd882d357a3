"""The static memory plan: where every value of an inference forward pass lives, decided from the graph's shapes
and the liveness schedule before any tensor exists.

One arena per (batch size, dtype): storages whose lifetimes do not overlap share bytes (offsets by greedy
placement, largest storage first). A concatenation's inputs are placed in their slices of its output, so the
concat itself copies nothing; DenseNet's growing concatenations all become prefixes of one storage per block.
An op may write its value over an input that dies there (a residual added in place, an activation).

What a backend can do with storage is its `Target`: which ops write their value into storage they are given
(the others allocate their own: an `own` slot, and a slice such an op produces is copied in once, `copied`), which
input an op may write over, which ops are views. Pure (no torch): the backend materialises the plan
(archc/backends/torch/codegen.py) and tests check it (`conflicts`: no value overwritten while it has readers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from collections.abc import Callable

from archc.ir.graph import Graph, Node
from archc.ir.ops import CONCAT, INPUT, OPS, VIEW
from archc.passes.liveness import Schedule

INPUT_SLOT, ARENA, OWN, SLICE, VIEW_SLOT, INPLACE = "input", "arena", "own", "slice", "view", "inplace"


@dataclass(frozen=True)
class Slot:
    """Where one value lives. kind: `input` (the caller's tensor), `arena` (a storage of its own in the arena),
    `own` (storage its op allocates), `slice` (channels [channel, channel + C) of `storage`, a concatenation it
    is part of), `view` (its input's storage, reshaped), `inplace` (written over its input `storage`'s bytes).
    `storage`: the value owning the storage (itself for input, arena and own). `copied`: a slice whose op
    cannot write into given storage: computed into storage of its own, then copied into its slice."""

    kind: str
    storage: str
    channel: int = 0
    copied: bool = False


@dataclass(frozen=True)
class Target:
    """What a backend does with storage. `writes(g, node)`: the op writes its value into storage it is given
    (a slice of a concatenation); `arena(g, node)`: a value of such an op that is no slice gets arena storage
    (otherwise the op allocates it); `overwrites(g, node)`: the input position whose storage it may write its
    value over, when that input dies there (None: none); `views(g, node)`: its value is its input's storage."""

    writes: Callable[[Graph, Node], bool] = lambda g, n: True
    overwrites: Callable[[Graph, Node], int | None] = lambda g, n: None
    views: Callable[[Graph, Node], bool] = lambda g, n: VIEW in OPS[n.op]
    arena: Callable[[Graph, Node], bool] | None = None  # None: every op that writes


IDEAL = Target()
"""A backend that writes every value where it is told (no in-place ops): the plan the graph itself allows."""


@dataclass
class MemoryPlan:
    batch: int
    itemsize: int
    order: tuple[str, ...]  # the schedule's steps
    slots: dict[str, Slot]  # every value
    nbytes: dict[str, int]  # every value's bytes at this batch and item size
    life: dict[str, tuple[int, int]]  # every value: (the step that writes it, the last step that reads it)
    storage_life: dict[str, tuple[int, int]]  # every storage: from its first write to its last read
    offsets: dict[str, int]  # arena storages: byte offset
    arena_bytes: int
    copies: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # concat -> inputs copied in at its step

    @property
    def sum_bytes(self) -> int:
        """Every value's bytes as if none shared storage (views excluded, the input included)."""
        return sum(b for v, b in self.nbytes.items() if self.slots[v].kind != VIEW_SLOT)

    def own_live(self) -> list[int]:
        """Per step: bytes of storage outside the arena alive (the input, op-allocated values, and values
        computed apart for a moment before being copied into their slice)."""
        live = [0] * len(self.order)
        for s, (first, last) in self.storage_life.items():
            if self.slots[s].kind in (INPUT_SLOT, OWN):
                for step in range(first, last + 1):
                    live[step] += self.nbytes[s]
        for v, slot in self.slots.items():
            if slot.copied:
                live[self.life[v][0]] += self.nbytes[v]
        return live

    @property
    def peak_bytes(self) -> int:
        """The most bytes alive at once: the arena (held throughout) plus storage outside it, the input
        included — comparable with the analysis's static peak (which counts the input too)."""
        return self.arena_bytes + max(self.own_live(), default=0)

    def members(self, storage: str) -> list[str]:
        return [v for v, s in self.slots.items() if s.storage == storage]

    def to_dict(self) -> dict:
        return {"batch": self.batch, "itemsize": self.itemsize, "arena_bytes": self.arena_bytes,
                "sum_bytes": self.sum_bytes, "peak_bytes": self.peak_bytes,
                "values": [{"name": v, "kind": s.kind, "storage": s.storage, "channel": s.channel,
                            "copied": s.copied, "bytes": self.nbytes[v], "life": list(self.life[v]),
                            "offset": self.offsets.get(s.storage)}
                           for v, s in self.slots.items()]}


def lifetimes(g: Graph, s: Schedule) -> dict[str, tuple[int, int]]:
    """(write step, last read step) per value; outputs and the input are held to the end."""
    step = {n: i for i, n in enumerate(s.order)}
    life = {n: [i, i] for n, i in step.items()}
    for n in s.order:
        for i in g.inputs(n):
            life[i][1] = max(life[i][1], step[n])
    for held in (g.input, *s.outputs):
        life[held][1] = len(s.order) - 1
    return {n: tuple(v) for n, v in life.items()}


def plan(g: Graph, s: Schedule, batch: int = 1, itemsize: int = 4, target: Target = IDEAL,
         align: int = 64) -> MemoryPlan:
    """The memory plan of schedule `s` for `batch` samples of `itemsize` bytes per value."""
    order, outputs = s.order, set(s.outputs)
    life = lifetimes(g, s)
    nbytes = {n: batch * math.prod(g[n].shape) * itemsize for n in order}
    slots: dict[str, Slot] = {g.input: Slot(INPUT_SLOT, g.input)}
    copies: dict[str, list[tuple[str, int]]] = {}

    # 1. Concatenations, last first: each input goes to its slice of the outermost concatenation holding it; a
    #    concatenation whose inputs already lie side by side in one storage (DenseNet's) is a slice of it.
    for n in reversed(order):
        node = g[n]
        if CONCAT not in OPS[node.op] or n in outputs or not target.writes(g, node):
            continue
        root = slots.get(n) or _enclosing(g, g.inputs(n), slots) or Slot(ARENA, n)
        slots[n] = root
        channel = root.channel
        for u in g.inputs(n):
            at = Slot(SLICE, root.storage, channel, not target.writes(g, g[u]))
            channel += g[u].shape[0]
            held = slots.get(u)
            if held is None and u not in outputs and INPUT not in OPS[g[u].op] and not target.views(g, g[u]):
                slots[u] = at
            elif held is None or held.kind != SLICE or (held.storage, held.channel) != (at.storage, at.channel):
                copies.setdefault(n, []).append((u, at.channel))  # the concat copies this one in at its step

    # 2. The rest, in order: views, values written over a dying input, arena storages, op-allocated ones.
    for n in order:
        if n in slots:
            continue
        node = g[n]
        ins = g.inputs(n)
        if target.views(g, node) and ins and slots[ins[0]].kind != SLICE:
            slots[n] = Slot(VIEW_SLOT, slots[ins[0]].storage)
            continue
        k = target.overwrites(g, node)
        if k is not None and k < len(ins) and _may_overwrite(n, ins, k, slots, life, outputs):
            slots[n] = Slot(INPLACE, slots[ins[k]].storage)
            continue
        in_arena = (target.arena or target.writes)(g, node) and target.writes(g, node)
        slots[n] = Slot(ARENA if in_arena and n not in outputs else OWN, n)

    storage_life: dict[str, list[int]] = {}
    for v in order:
        first, last = life[v]
        span = storage_life.setdefault(slots[v].storage, [first, last])
        span[0], span[1] = min(span[0], first), max(span[1], last)
    storage_life = {k: tuple(v) for k, v in storage_life.items()}
    arena = {st: -(-nbytes[st] // align) * align for st, sl in slots.items() if sl.kind == ARENA}
    offsets, arena_bytes = _place(arena, storage_life)
    return MemoryPlan(batch, itemsize, tuple(order), slots, nbytes, life, storage_life, offsets, arena_bytes,
                      copies)


def _enclosing(g: Graph, ins: list[str], slots: dict[str, Slot]) -> Slot | None:
    """The slice a concatenation is when its inputs already lie side by side, in order, in one storage."""
    first = slots.get(ins[0])
    if first is None or first.kind != SLICE or len(set(ins)) != len(ins):
        return None
    channel = first.channel
    for u in ins:
        held = slots.get(u)
        if held is None or held.kind != SLICE or (held.storage, held.channel) != (first.storage, channel):
            return None
        channel += g[u].shape[0]
    return Slot(SLICE, first.storage, first.channel)


def _may_overwrite(n, ins, k, slots, life, outputs) -> bool:
    """n may write over input k's storage: k dies at n, is read by n once, its storage holds nothing else (no
    slices, no views) and is the arena's or the op's own (never the caller's), and an output never lands in the
    arena (the next call would overwrite it)."""
    r = ins[k]
    slot = slots[r]
    storage = slot.storage
    if slot.kind not in (ARENA, OWN, INPLACE) or ins.count(r) != 1 or r in outputs:
        return False
    if life[r][1] != life[n][0] or any(slots[i].storage == storage for j, i in enumerate(ins) if j != k):
        return False
    if slots[storage].kind == ARENA and n in outputs:
        return False
    sharing = [v for v, s in slots.items() if s.storage == storage]
    return all(slots[v].kind in (ARENA, OWN, INPLACE) and life[v][1] <= life[n][0] for v in sharing)


def _place(sizes: dict[str, int], life: dict[str, tuple[int, int]]) -> tuple[dict[str, int], int]:
    """Byte offsets, largest storage first, each at the lowest offset clear of every placed storage whose
    lifetime overlaps its own (greedy by size, as TFLite's arena planner)."""
    offsets: dict[str, int] = {}
    end = 0
    for st in sorted(sizes, key=lambda v: (-sizes[v], life[v][0])):
        first, last = life[st]
        busy = sorted((offsets[o], offsets[o] + sizes[o]) for o in offsets
                      if life[o][0] <= last and first <= life[o][1])
        at = 0
        for lo, hi in busy:
            if at + sizes[st] <= lo:
                break
            at = max(at, hi)
        offsets[st] = at
        end = max(end, at + sizes[st])
    return offsets, end


def writes(g: Graph, p: MemoryPlan) -> list[tuple[int, str, str, int, int]]:
    """Every write of the planned forward: (step, value written, storage, first channel, end channel). A
    concatenation writes only the inputs it copies in; its placed inputs wrote their slices themselves."""
    out = []
    for v in p.order:
        s, t = p.slots[v], p.life[v][0]
        if s.kind == VIEW_SLOT:
            continue
        if CONCAT in OPS[g[v].op] and s.kind in (ARENA, SLICE):
            out += [(t, v, s.storage, ch, ch + g[u].shape[0]) for u, ch in p.copies.get(v, [])]
        else:
            out.append((t, v, s.storage, s.channel, s.channel + g[v].shape[0]))
    return out


def _overwritten(g: Graph, p: MemoryPlan, w: str) -> str | None:
    """The input an `inplace` value is written over: its one input in the same storage."""
    if p.slots[w].kind != INPLACE:
        return None
    same = [i for i in g.inputs(w) if p.slots[i].storage == p.slots[w].storage]
    return same[0] if len(same) == 1 else None


def conflicts(g: Graph, p: MemoryPlan) -> list[str]:
    """Every write into bytes that a value still to be read holds: the same channels of its storage, or
    another arena storage sharing its bytes. The one write allowed over a live value is an op writing its
    value over the input it reads for the last time (an `inplace` slot). Empty: no value is overwritten
    while it still has readers."""
    found = []
    held = {v: (p.slots[v].storage, p.slots[v].channel,
                p.slots[v].channel + g[v].shape[0]) for v in p.order}
    for v, s in p.slots.items():  # a view holds the bytes of its input's storage
        if s.kind == VIEW_SLOT:
            base = next(u for u in p.order if p.slots[u].storage == s.storage and p.slots[u].kind != VIEW_SLOT)
            held[v] = held[base]
    span = {st: (p.offsets[st], p.offsets[st] + p.nbytes[st]) for st in p.offsets}
    for t, w, storage, lo, hi in writes(g, p):
        for v in p.order:
            first, last = p.life[v]
            if v == w or not first <= t <= last:
                continue
            other, a, b = held[v]
            if other == storage:
                if a < hi and lo < b and not (t == last and _overwritten(g, p, w) == v):
                    found.append(f"step {t}: {w} overwrites {v} (storage {storage}, channels {lo}..{hi}) "
                                 f"which is read until step {last}")
            elif storage in span and other in span and span[storage][0] < span[other][1] \
                    and span[other][0] < span[storage][1]:
                found.append(f"step {t}: {w} writes arena bytes of {storage} that {v} in {other} holds, "
                             f"read until step {last}")
    return found


def describe(plan, static_peak_values: int, what: str) -> str:
    """A memory plan against the analysis's static peak: totals, then the arena's storages with the values each
    holds (`archc compile --memory`)."""
    from collections import Counter

    from archc.report import human

    per = plan.itemsize * plan.batch
    kinds = Counter(s.kind for s in plan.slots.values())
    copied = sum(s.copied for s in plan.slots.values())
    storages = sorted(plan.offsets, key=plan.offsets.get)
    lines = [
        f"memory plan of {what}, batch {plan.batch}, {plan.itemsize} bytes per value:",
        f"  sum of values   {human(plan.sum_bytes, 'B'):>10}  every value as if none shared storage",
        f"  static peak     {human(static_peak_values * per, 'B'):>10}  the analysis's peak memory (each value "
        "freed after its last use)",
        f"  arena           {human(plan.arena_bytes, 'B'):>10}  one allocation: {len(storages)} storages, "
        f"{kinds[SLICE]} values written into their slice of a concatenation ({copied} copied in)",
        f"  planned peak    {human(plan.peak_bytes, 'B'):>10}  the arena and the most storage outside it alive at "
        "once, input included",
        "  values          " + ", ".join(f"{n} {k}" for k, n in kinds.most_common()),
    ]
    if storages:
        rows = [(s, f"{plan.offsets[s]:,}", human(plan.nbytes[s], "B"),
                 f"{len(plan.members(s))} values, steps {plan.storage_life[s][0]}..{plan.storage_life[s][1]}")
                for s in storages if plan.slots[s].kind == ARENA]
        head = ("arena storage", "offset", "bytes", "holds")
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
        def fmt(r):
            return "  ".join(c.ljust(w) if i in (0, 3) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

        lines += ["", fmt(head).rstrip(), *(fmt(r).rstrip() for r in rows)]
    return "\n".join(lines)
