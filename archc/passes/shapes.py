"""Shapes at another input size: a built module's graph fixes every op's arguments and weights, but H and W may
differ from the spec's where the layers allow. `infer` propagates a new per-sample input shape through the graph
with the op table's shape rules — the same rules expansion used — and refuses, as a located ShapeError, the first
op the size does not fit: an empty window, a join of unequal maps, or a layer whose weights were built for
another input (a `linear` after `flatten`). `at_input` is the graph with those shapes and the figures that follow
from them (activations, peak memory), what the inference module plans memory and packs weights from.

Both the eager module's input check and archc.fuse's plans call `infer`, so both accept the same sizes and refuse
the others with the same error, before anything is computed.
"""

from __future__ import annotations

from archc.errors import ShapeError
from archc.ir.graph import Graph
from archc.ir.ops import CONCAT, INPUT, JOIN, OPS, STATEFUL, Shape
from archc.passes import PASSES
from archc.passes.liveness import peak


def _show(shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def infer(g: Graph, sample: Shape, nodes=None) -> dict[str, Shape]:
    """Every node's per-sample shape when the input is `sample` (`nodes`: only these, in graph order, e.g. one
    mode's schedule; default every node). Raises ShapeError at the first node the input does not fit."""
    sample = tuple(sample)
    declared = g[g.input].shape
    wanted = None if nodes is None else set(nodes)
    shapes: dict[str, Shape] = {}
    for n in g.order():
        if wanted is not None and n not in wanted:
            continue
        node = g[n]
        op = OPS[node.op]
        if INPUT in op:
            shapes[n] = sample
            continue
        ins = g.inputs(n)
        new_in = [shapes[i] for i in ins]
        try:
            out = op.shape(node.attrs, new_in)
        except ShapeError as e:
            raise ShapeError(f"at input {_show(sample)}: {e.message}", node.loc, node.module) from None
        if JOIN in op and CONCAT not in op and len(ins) > 1:
            _no_new_broadcast(g, node, ins, new_in, out, sample)
        if STATEFUL in op:  # weights were built for the declared input: the new one must give them the same shape
            old_in = [g[i].shape for i in ins]
            built = (op.params(node.attrs, old_in, node.shape), op.buffers(node.attrs, old_in, node.shape))
            if (op.params(node.attrs, new_in, out), op.buffers(node.attrs, new_in, out)) != built:
                raise ShapeError(f"at input {_show(sample)}: this {node.op} holds weights for its input "
                                 f"{_show(old_in[0])} (the spec's input is {_show(declared)}), this input gives it "
                                 f"{_show(new_in[0])}", node.loc, node.module)
        shapes[n] = tuple(out)
    return shapes


def _no_new_broadcast(g: Graph, node, ins, new_in, out, sample) -> None:
    """An elementwise join broadcasts an input along an axis only where that input's size is 1 at the spec's
    input too (a squeeze-excitation gate [C, 1, 1]): a map that shrinks to 1 pixel at some input size does not
    start broadcasting there (a residual add whose shortcut and body disagree on odd sizes)."""
    for i, shape in zip(ins, new_in):
        old = g[i].shape
        if len(shape) == len(out) and any(n == 1 != o and d != 1 for n, o, d in zip(shape, out, old)):
            raise ShapeError(f"at input {_show(sample)}: {node.op} of " + " and ".join(map(_show, new_in))
                             + f" would broadcast {_show(shape)}, which is {_show(old)} at the spec's input "
                             f"{_show(g[g.input].shape)}", node.loc, node.module)


def at_input(g: Graph, sample: Shape, training: bool = False) -> Graph:
    """The graph with every shape for per-sample input `sample` (itself when that is the declared input), the
    figures that depend on shapes (each node's activations; the peak of both modes' schedules) recomputed. Nodes
    outside the mode's schedule (auxiliary heads in eval mode) keep their declared-size shapes and figures."""
    sample = tuple(sample)
    if sample == g[g.input].shape:
        return g
    schedules = g.meta["schedules"]
    shapes = infer(g, sample, schedules[training].order)
    new = g.with_shapes(shapes, attrs={g.input: {**g[g.input].attrs, "shape": list(sample)}})
    PASSES["costs"](new)
    new.meta["peak"] = {mode: peak(new, s) for mode, s in schedules.items() if mode == training or
                        set(s.order) <= set(shapes)}
    return new
