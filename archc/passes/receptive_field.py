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
from archc.spec.expr import number


@dataclass(frozen=True)
class Field:
    size: tuple
    jump: tuple
    start: tuple

    def to_dict(self) -> dict:
        return {k: [_number(x) for x in getattr(self, k)] for k in ("size", "jump", "start")}


PIXEL = Field((1, 1), (1, 1), (Fraction(1, 2), Fraction(1, 2)))  # one input pixel, centred


def _number(x):
    x = Fraction(x)
    return int(x) if x.denominator == 1 else float(x)


def through(rf: Field, w: Window) -> Field:
    """The field after a window: pure arithmetic, per axis (ints, or Fractions where a stride is one)."""
    span = [w.dilation[i] * (w.k[i] - 1) for i in range(2)]
    return Field(tuple(rf.size[i] + span[i] * rf.jump[i] for i in range(2)),
                 tuple(rf.jump[i] * w.stride[i] for i in range(2)),
                 tuple(rf.start[i] + (Fraction(span[i], 2) - w.pad[i]) * rf.jump[i] for i in range(2)))


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
                for v in (*rf.size, *rf.jump, *rf.start):
                    number(v, " (receptive field)")
            except ArchcError as e:
                raise LimitError(e.message, node.loc, node.name) from None
        node.meta["rf"] = rf
