"""archc: a compiler for convolutional network architectures written as YAML graph specs.

    archc.load(path, **params)     -> Spec      (validated, parameters applied)
    archc.analyze(spec_or_path)    -> Analysis  (shapes, params, MACs, activations, receptive field)
    archc.build(spec_or_path)      -> ArchcModule (an nn.Module; `.graph` is its analysed graph)
    archc.fuse(module)             -> an eval-only module: BN folded, conv+BN+act(+residual) fused kernels
"""

from __future__ import annotations

from pathlib import Path

from archc.errors import ArchcError, ExprError, LimitError, ShapeError, SpecError
from archc.spec.load import Spec

__all__ = ["load", "analyze", "build", "fuse", "Spec",
           "ArchcError", "SpecError", "ShapeError", "ExprError", "LimitError"]


def load(path: str | Path, **params) -> Spec:
    """Read and validate a spec, overriding its `params:` (as `--set`)."""
    from archc.spec.load import load as _load

    return _load(path, params)


def _spec(spec_or_path, params) -> Spec:
    if isinstance(spec_or_path, Spec):
        return spec_or_path.with_params(params) if params else spec_or_path
    return load(spec_or_path, **params)


def analyze(spec_or_path, check: bool = True, **params):
    """Expand and analyse a spec; with `check`, its `expect:` figures must hold (unless parameters changed)."""
    from archc.analysis import Analysis
    from archc.ir.expand import expand
    from archc.passes import ANALYSIS, run

    spec = _spec(spec_or_path, params)
    analysis = Analysis(spec, run(expand(spec), ANALYSIS))
    if check and not spec.overrides:
        analysis.check_expect()
    return analysis


def build(spec_or_path, **params):
    """An nn.Module from a spec path, a Spec or an Analysis; `module.analysis` keeps its figures and graph."""
    from archc.analysis import Analysis
    from archc.nn.module import ArchcModule

    analysis = spec_or_path if isinstance(spec_or_path, Analysis) else analyze(spec_or_path, **params)
    module = ArchcModule(analysis.graph)
    module.analysis = analysis
    return module


def fuse(module):
    """An inference module computing `module.eval()`'s function with fused conv+BN+activation(+residual) ops."""
    from archc.nn.inference import fuse as _fuse

    return _fuse(module)
