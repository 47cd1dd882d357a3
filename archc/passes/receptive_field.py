"""Receptive field of every node, per axis: size (input pixels one output value depends on), jump (the distance
in input pixels between neighbouring outputs) and start (the centre of the first output's field). Exact
fractions throughout, so a stride below one (upsampling) gives a fractional jump."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from archc.ir.graph import Graph
from archc.ir.ops import OPS, Window
from archc.passes import register


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


def hull(fields: list[Field]) -> Field:
    """The field of a value computed from several: the smallest field holding each input's when their jumps agree
    (inputs on one grid: every output reads them all), else the largest (a [C,1,1] gate beside a map)."""
    if len({f.jump for f in fields}) > 1:
        return max(fields, key=lambda f: f.size)
    lo = [min(f.start[i] - Fraction(f.size[i], 2) for f in fields) for i in range(2)]
    hi = [max(f.start[i] + Fraction(f.size[i], 2) for f in fields) for i in range(2)]
    return Field(tuple(_exact(hi[i] - lo[i]) for i in range(2)), fields[0].jump,
                 tuple((lo[i] + hi[i]) / 2 for i in range(2)))


def _exact(x):
    x = Fraction(x)
    return int(x) if x.denominator == 1 else x


def regrid(fields: list[Field], shapes: list, out: tuple) -> list[Field]:
    """Fields of inputs broadcast along an axis (a [C,1,1] gate beside [C,H,W]) moved onto the output's grid: on
    that axis they take the jump of an input that is not broadcast, and a start that keeps them exact at the
    central output (every output reads the same broadcast value)."""
    fields = list(fields)
    for axis in range(2):
        full = [f for f, s in zip(fields, shapes) if len(s) == 3 and s[axis + 1] == out[axis + 1]]
        if not full or len(out) != 3:
            continue
        jump = full[0].jump[axis]
        for j, (f, s) in enumerate(zip(fields, shapes)):
            if len(s) == 3 and s[axis + 1] != out[axis + 1]:
                start = f.start[axis] - (out[axis + 1] // 2) * jump
                fields[j] = Field(f.size, _set(f.jump, axis, jump), _set(f.start, axis, start))
    return fields


def _set(pair: tuple, axis: int, value) -> tuple:
    return tuple(value if i == axis else x for i, x in enumerate(pair))


@register("receptive_field")
def receptive_field(g: Graph) -> None:
    """meta["rf"]: a Field. A node with several inputs takes their hull (of the inputs an op reads values of: a
    crop's size reference is not one)."""
    for node in g.nodes():
        op = OPS[node.op]
        inputs = g.inputs(node.name)
        if not inputs:
            node.meta["rf"] = PIXEL
            continue
        read = inputs[:op.reads] if op.reads is not None else inputs
        fields = [g[i].meta["rf"] for i in read]
        rf = hull(regrid(fields, [g[i].shape for i in read], node.shape)) if len(read) > 1 else fields[0]
        window = op.window(node.attrs, [g[i].shape for i in inputs]) if op.window else None
        if window is not None:
            rf = through(rf, window)
        node.meta["rf"] = rf
