"""Warnings about a spec that is valid but probably not meant: windows whose floor arithmetic never sees the
last rows or columns of their input (AlexNet's 11x11/4 conv at 224 instead of 227)."""

from __future__ import annotations

from archc.errors import SpecWarning
from archc.ir.graph import Graph
from archc.ir.ops import OPS, Window
from archc.passes import register


def unseen(size: int, axis: int, w: Window) -> tuple[int, float] | None:
    """(input rows the window never sees, the exact output size) along one axis, or None if it sees all."""
    k, s, d, p = w.k[axis], w.stride[axis], w.dilation[axis], w.pad[axis]
    extent = d * (k - 1) + 1
    if extent < s:  # windows smaller than the stride skip input by design (1x1 stride 2)
        return None
    span = size + 2 * p - extent
    ignored = span % s - p
    return (ignored, span / s + 1) if ignored > 0 else None


@register("lint_windows")
def lint_windows(g: Graph) -> None:
    for node in g.nodes():
        op = OPS[node.op]
        if op.window is None:
            continue
        in_shapes = [g[i].shape for i in g.inputs(node.name)]
        w = op.window(node.attrs, in_shapes)
        if w is None or not w.floor:
            continue
        for axis, size in enumerate(in_shapes[0][1:]):
            if found := unseen(size, axis, w):
                ignored, exact = found
                k, s, p = w.k[axis], w.stride[axis], w.pad[axis]
                g.warnings.append(SpecWarning(
                    f"{node.op} {k}/{s} pad {p} on {size}: ({size} + 2*{p} - {w.dilation[axis] * (k - 1) + 1}) / "
                    f"{s} + 1 = {exact:g}, so the last {ignored} input {'row' if axis == 0 else 'column'}(s) are "
                    "never seen", node.loc, node.name))
                break
