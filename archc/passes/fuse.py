"""Inference passes: drop ops that are identities in eval mode, then fuse conv (+ BN) (+ residual add)
(+ activation) chains into single `conv_bn_act` nodes that archc_kernels computes.

The pattern asks categories, not op names: a CONV, then an AFFINE map (BatchNorm), a SUM with one other input
(the residual), an ACTIVATION the fused op supports. A producer is fused into its consumer only when that
consumer is its only reader (as torch.fx's fuser), so no intermediate that someone else reads disappears.
"""

from __future__ import annotations

from archc.ir.graph import Graph
from archc.ir.ops import ACTIVATION, AFFINE, CONV, EVAL_IDENTITY, OPS, SUM, fusable_activations
from archc.passes import register

FUSED = OPS["conv_bn_act"]


def _sole_reader(g: Graph, n: str, category: str) -> str | None:
    """The node that reads n, when it is the only read of n, n is no output, and it is of `category`."""
    uses = g.uses(n)
    if len(uses) != 1 or g.is_output(n):
        return None
    reader = uses[0][0]
    return reader if category in OPS[g[reader].op] else None


def _bypass(g: Graph, old: str, new: str) -> None:
    g.replace_all_uses(old, new)
    g.erase(old)


@register("strip_eval_identities")
def strip_eval_identities(g: Graph) -> None:
    """Dropout, drop-path and identity compute nothing in eval mode: bypass them."""
    for node in g.nodes():
        if EVAL_IDENTITY in OPS[node.op]:
            _bypass(g, node.name, g.inputs(node.name)[0])


@register("fuse_conv_bn_act")
def fuse_conv_bn_act(g: Graph) -> None:
    """conv [-> bn] [-> add(., residual)] [-> activation]  =>  conv_bn_act(x[, residual])."""
    supported = fusable_activations()
    for node in g.nodes():
        n = node.name
        if n not in g or CONV not in OPS[node.op] or node.attrs.get("table") is not None:
            continue
        attrs = {"conv": node.module, "bn": None, "act": "none", **node.attrs}
        inputs = g.inputs(n)
        bn = _sole_reader(g, n, AFFINE)
        if bn and len(g[bn].shape) == 3:
            attrs["bn"] = g[bn].module
            _bypass(g, bn, n)
        add = _sole_reader(g, n, SUM)
        if add and len(g.inputs(add)) == 2 and len({g[i].shape for i in g.inputs(add)}) == 1 \
                and 1 not in node.shape[1:]:  # (a map of 1 pixel may broadcast at other input sizes)
            inputs.append(next(i for i in g.inputs(add) if i != n))
            _bypass(g, add, n)
        act = _sole_reader(g, n, ACTIVATION)
        if act and OPS[g[act].op].act(g[act].attrs) in supported:
            attrs["act"] = OPS[g[act].op].act(g[act].attrs)
            _bypass(g, act, n)
        if attrs["bn"] or attrs["act"] != "none" or len(inputs) == 2:
            node.op, node.attrs = FUSED.name, attrs
            g.set_inputs(n, inputs)
