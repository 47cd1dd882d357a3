"""Receptive field of every node, per axis: size (input pixels one output value depends on), jump (the distance
in input pixels between neighbouring outputs) and start (the centre of the first output's field). Exact
fractions throughout, so a stride below one (upsampling) gives a fractional jump."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from archc.errors import ArchcError, LimitError
from archc.ir.graph import Graph
from archc.ir.ops import OPS, Window
from archc.passes import register
from archc.spec.expr import MAX_MAGNITUDE, number


@dataclass(frozen=True)
class Field:
    """Per axis: size, jump, and twice the start (`start2`: ints wherever strides are, so the arithmetic stays in
    ints; `start` gives the start itself)."""

    size: tuple
    jump: tuple
    start2: tuple

    @property
    def start(self) -> tuple:
        return tuple(Fraction(x, 2) for x in self.start2)

    def to_dict(self) -> dict:
        return {k: [_number(x) for x in getattr(self, k)] for k in ("size", "jump", "start")}


PIXEL = Field((1, 1), (1, 1), (1, 1))  # one input pixel, centred at 1/2


def _number(x):
    x = Fraction(x)
    return int(x) if x.denominator == 1 else float(x)


def through(rf: Field, w: Window) -> Field:
    """The field after a window: pure arithmetic, per axis (ints, or Fractions where a stride is one)."""
    (s0, s1), (j0, j1), (t0, t1) = rf.size, rf.jump, rf.start2
    (k0, k1), (d0, d1), (p0, p1), (st0, st1) = w.k, w.dilation, w.pad, w.stride
    a0, a1 = d0 * (k0 - 1), d1 * (k1 - 1)  # the window's span beyond its first pixel
    return Field((s0 + a0 * j0, s1 + a1 * j1), (j0 * st0, j1 * st1),
                 (t0 + (a0 - 2 * p0) * j0, t1 + (a1 - 2 * p1) * j1))


@register("receptive_field")
def receptive_field(g: Graph) -> None:
    """meta["rf"]: a Field. Joins take the largest field of their inputs."""
    for node in g.nodes():
        inputs = g.inputs(node.name)
        if not inputs:
            node.meta["rf"] = PIXEL
            continue
        rf = max((g[i].meta["rf"] for i in inputs), key=lambda f: f.size)
        window = OPS[node.op].window
        if window is not None:
            rf = through(rf, window(node.attrs, [g[i].shape for i in inputs]))
            try:  # the numeric policy: a field, jump or start beyond 2^62 pixels (strides piling up) is refused
                for v in (*rf.size, *rf.jump, *rf.start2):
                    if type(v) is not int or not -MAX_MAGNITUDE <= v <= MAX_MAGNITUDE:
                        number(v, " (receptive field)")
            except ArchcError as e:
                raise LimitError(e.message, node.loc, node.name) from None
        node.meta["rf"] = rf
