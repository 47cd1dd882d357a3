"""archc: a compiler for convolutional network architectures written as YAML graph specs.

    archc.load(path, **params)     -> Spec      (read and checked, parameters applied)
    archc.analyze(spec_or_path)    -> Analysis  (shapes, params, MACs, activations, receptive field)
    archc.validate(spec_or_path)   -> Analysis  (analyze, and the module-name checks of build; no torch)
    archc.build(spec_or_path)      -> ArchcModule (an nn.Module; `.graph` is its analysed graph)
    archc.fuse(module)             -> an eval-only module: BN folded, conv+BN+act(+residual) fused kernels
    archc.register_op(op, lower)   -> adds an op (its meaning, archc.ir.ops.Op) and its PyTorch lowering: plugins

The pipeline, each stage importing only the ones before it: spec (text -> Spec) -> ir (ops, graph,
expansion) -> passes (analysis, inference rewriting) -> analysis/report -> backends.torch (modules).
"""

from __future__ import annotations

import re
from pathlib import Path

from archc.errors import ArchcError, ArchcErrors, ExprError, LimitError, ShapeError, SpecError
from archc.spec.load import Spec

__all__ = ["load", "loads", "analyze", "validate", "build", "fuse", "register_op", "Spec",
           "ArchcError", "ArchcErrors", "SpecError", "ShapeError", "ExprError", "LimitError"]


def load(path: str | Path, **params) -> Spec:
    """Read and check a spec, overriding its `params:` (as `--set`)."""
    from archc.ir.ops import spec_ops
    from archc.spec.load import load as _load

    return _load(path, spec_ops(), params)


def loads(text: str, file: str = "<string>", **params) -> Spec:
    """A spec from text; `file` names it in messages and anchors its imports."""
    from archc.ir.ops import spec_ops
    from archc.spec.load import loads as _loads

    return _loads(text, file, spec_ops(), params)


def _spec(spec_or_path, params) -> Spec:
    if isinstance(spec_or_path, Spec):
        return spec_or_path.with_params(params) if params else spec_or_path
    return load(spec_or_path, **params)


def analyze(spec_or_path, check: bool = True, **params):
    """Expand and analyse a spec; with `check`, its `expect:` figures (or its variant's) must hold (unless
    parameters other than the variant changed)."""
    from archc.analysis import Analysis
    from archc.ir.expand import expand
    from archc.passes import ANALYSIS, run

    spec = _spec(spec_or_path, params)
    analysis = Analysis(spec, run(expand(spec), ANALYSIS))
    if check:
        analysis.check_expect()
    return analysis


def validate(spec_or_path, **params):
    """analyze(), plus every check that building the module makes short of allocating tensors (names that
    PyTorch modules refuse); never imports torch. Returns the Analysis."""
    from archc.backends.torch.names import check

    analysis = analyze(spec_or_path, **params)
    check(analysis.graph)
    return analysis


def build(spec_or_path, **params):
    """An nn.Module from a spec path, a Spec or an Analysis; `module.analysis` keeps its figures and graph."""
    from archc.analysis import Analysis
    from archc.backends.torch.executor import ArchcModule

    analysis = spec_or_path if isinstance(spec_or_path, Analysis) else analyze(spec_or_path, **params)
    module = ArchcModule(analysis.graph)
    module.analysis = analysis
    return module


def fuse(module):
    """An inference module computing `module.eval()`'s function with fused conv+BN+activation(+residual) ops."""
    from archc.backends.torch.inference import fuse as _fuse

    return _fuse(module)


def register_op(op, lower) -> None:
    """Add an op to archc without forking it: `op` is its meaning (an archc.ir.ops.Op: arguments, shape, params,
    MACs, window, categories), `lower(attrs, in_shapes)` builds the nn.Module that runs it (import torch inside it:
    registering imports nothing). Installed packages call this from a function named by an entry point in the
    group `archc.ops`; specs can then name the op. Raises ValueError for a name archc or a plugin already uses, or
    that a spec cannot write."""
    from archc.backends.torch import PLUGINS
    from archc.ir.ops import INTERNAL, OPS, Op, register
    from archc.spec.grammar import CONSTRUCTS, RESERVED
    from archc.spec.kinds import NAME

    if not isinstance(op, Op) or not callable(lower):
        raise ValueError("register_op(op, lower) takes an archc.ir.ops.Op and a function (attrs, in_shapes) -> module")
    if not re.match(NAME, op.name) or op.name in CONSTRUCTS or op.name in RESERVED or op.name == "none":
        raise ValueError(f"{op.name!r} cannot name an op (a name, not a construct or reserved word)")
    if INTERNAL in op:
        raise ValueError(f"op {op.name!r}: plugins add ops specs can write (not internal ones)")
    if op.name in OPS:
        raise ValueError(f"op {op.name!r} is already registered")
    register(op)
    PLUGINS[op.name] = lower
