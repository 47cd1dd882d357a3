"""Liveness: when each value of a forward pass is last needed. One schedule per mode serves both the
module's executor (which frees values as the schedule says) and the static peak-memory figure."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from archc.ir.graph import Graph
from archc.ir.ops import OPS, VIEW
from archc.passes import register


@dataclass(frozen=True)
class Schedule:
    """One forward pass: the nodes it runs in order (the input first), the values it returns, and, after each
    step, the values no longer needed. The input (the caller holds it) and the outputs are never freed."""

    order: tuple[str, ...]
    outputs: tuple[str, ...]
    dead: tuple[tuple[str, ...], ...]


def schedule(g: Graph, training: bool) -> Schedule:
    """The train-mode pass runs every node; the eval-mode pass leaves out auxiliary heads."""
    order = [n for n in g.order() if training or not g[n].meta["aux"]]
    outputs = [o.node for o in g.outputs if training or not o.aux]
    last = {n: step for step, n in enumerate(order)}  # a value nothing reads dies at once
    for step, n in enumerate(order):
        for i in g.inputs(n):
            last[i] = step
    held = {g.input, *outputs}
    dead: list[list[str]] = [[] for _ in order]
    for n, step in last.items():
        if n not in held:
            dead[step].append(n)
    return Schedule(tuple(order), tuple(outputs), tuple(map(tuple, dead)))


@register("liveness")
def liveness(g: Graph) -> None:
    """graph.meta["schedules"]: {training: Schedule} for both modes."""
    g.meta["schedules"] = {True: schedule(g, True), False: schedule(g, False)}


def peak(g: Graph, s: Schedule) -> int:
    """The most activation values alive at once along a schedule. A view shares its input's storage, which
    lives until its last alias dies."""
    owner: dict[str, str] = {}
    aliases: Counter = Counter()
    live = most = 0
    for n, dead in zip(s.order, s.dead):
        node, inputs = g[n], g.inputs(n)
        owner[n] = owner[inputs[0]] if VIEW in OPS[node.op] and inputs else n
        live += node.meta["activations"] if owner[n] == n else 0
        aliases[owner[n]] += 1
        most = max(most, live)
        for v in dead:
            aliases[owner[v]] -= 1
            if not aliases[owner[v]]:
                live -= g[owner[v]].meta["activations"]
    return most
