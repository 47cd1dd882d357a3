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


def hull(fields: list[Field]) -> Field:
    """The field of a value computed from several: the smallest field holding each input's when their jumps agree
    (inputs on one grid: every output reads them all), else the largest (a [C,1,1] gate beside a map). In twice
    the edges, so that integer fields stay in ints (a dense block's joins read hundreds of inputs)."""
    if len({f.jump for f in fields}) > 1:
        return max(fields, key=lambda f: f.size)
    lo = [min(f.start2[i] - f.size[i] for f in fields) for i in range(2)]  # twice the lowest edge
    hi = [max(f.start2[i] + f.size[i] for f in fields) for i in range(2)]
    return Field(tuple(_half(hi[i] - lo[i]) for i in range(2)), fields[0].jump,
                 tuple(_half(lo[i] + hi[i]) for i in range(2)))


def _half(x):
    return x // 2 if type(x) is int and x % 2 == 0 else _exact(Fraction(x) / 2)


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
                fields[j] = Field(f.size, _set(f.jump, axis, jump), _set(f.start2, axis, _exact(2 * start)))
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
            try:  # the numeric policy: a field, jump or start beyond 2^62 pixels (strides piling up) is refused
                for v in (*rf.size, *rf.jump, *rf.start2):
                    if type(v) is not int or not -MAX_MAGNITUDE <= v <= MAX_MAGNITUDE:
                        number(v, " (receptive field)")
            except ArchcError as e:
                raise LimitError(e.message, node.loc, node.name) from None
        node.meta["rf"] = rf
