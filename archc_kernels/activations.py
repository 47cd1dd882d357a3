"""The activations a fused conv applies: one table, from which every path takes its form.

An entry says, for one activation, how each implementation computes it:
- ``inplace``: the reference (the specification), applied in place to a tensor (None: the identity) — also what
  the generated CPU forward and the oneDNN path run when they cannot fuse it;
- ``code``: the ACT code of the Triton epilogue (``archc_kernels/triton/common.activate`` has one branch per
  code: the one place besides this table that knows an activation), or None (the Triton path then leaves such
  calls to the reference);
- ``onednn``: oneDNN's unary post-op for ``torch.ops.mkldnn._convolution_pointwise`` as (name, scalars,
  algorithm), or None where oneDNN has none (then ``inplace`` runs after the conv);
- ``native``: the code of archc's native ``affine_act`` kernel (BN + activation in one pass), or None.

On the compiler side, the ops a fused conv may absorb carry the FUSABLE category in the op table
(archc/ir/ops.py); tests keep both sides equal and check every form against the op's own module (its
lowering). Adding an activation with fusion: its op (with FUSABLE) and its lowering, an entry here, a branch in
``activate``, a sample row in tests/test_ops.py (docs/extending.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Activation:
    name: str
    inplace: Callable[[torch.Tensor], torch.Tensor] | None
    code: int | None
    onednn: tuple[str, list, str | None] | None
    native: int | None


def _gelu_(y: torch.Tensor) -> torch.Tensor:  # PyTorch has no in-place GELU
    return y.copy_(F.gelu(y))


ACTIVATIONS: dict[str, Activation] = {a.name: a for a in [
    Activation("none", None, 0, ("none", [], None), 0),
    Activation("relu", torch.relu_, 1, ("relu", [], None), 1),
    Activation("relu6", lambda y: y.clamp_(0.0, 6.0), 2, ("hardtanh", [0.0, 6.0], None), 2),
    Activation("sigmoid", torch.sigmoid_, 3, ("sigmoid", [], None), None),
    Activation("tanh", torch.tanh_, 4, ("tanh", [], None), None),
    Activation("silu", lambda y: F.silu(y, inplace=True), 5, ("swish", [], None), None),
    Activation("hardswish", lambda y: F.hardswish(y, inplace=True), 6, ("hardswish", [], None), None),
    Activation("hardsigmoid", lambda y: F.hardsigmoid(y, inplace=True), 7, ("hardsigmoid", [], None), None),
    Activation("gelu", _gelu_, 8, ("gelu", [], "none"), None),
    Activation("leaky_relu", lambda y: F.leaky_relu_(y, 0.01), 9, ("leaky_relu", [0.01], None), None),
]}


def activation_name(act) -> str:
    """Canonical activation name; None means "none". Unknown names raise ValueError."""
    name = "none" if act is None else act
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; expected one of {sorted(ACTIVATIONS)}")
    return name
