"""archc: a compiler for convolutional network architectures written as YAML graph specs.

    archc.load(path, **params)     -> Spec      (read and checked, parameters applied; limits=... raises limits;
                                                 a zoo name such as "resnet50" instead of a path: archc list)
    archc.analyze(spec_or_path)    -> Analysis  (shapes, params, MACs, activations, receptive field, warnings)
    archc.validate(spec_or_path)   -> Analysis  (analyze, and the module-name checks of build; no torch)
    archc.build(spec_or_path)      -> ArchcModule (an nn.Module; `.graph` is its analysed graph)
    archc.fuse(module)             -> an eval-only module: BN folded, conv+BN+act(+residual) fused kernels
    archc.train(spec, data, ...)   -> TrainResult (the trained module, its run folder and metrics): `archc train`
    archc.register_op(op, lower)   -> adds an op (its meaning, archc.ir.ops.Op) and its PyTorch lowering: plugins

The pipeline, each stage importing only the ones before it: spec (text -> Spec) -> ir (ops, graph,
expansion) -> passes (analysis, inference rewriting) -> analysis/report -> backends.torch (modules).
"""

from __future__ import annotations

import contextlib
import gc
import re
from pathlib import Path

from archc.errors import (ArchcError, ArchcErrors, ArchcWarning, CheckpointError, ExprError, LimitError, OutputError,
                          ShapeError, SpecError)
from archc.spec.limits import Limits
from archc.spec.load import Spec

__all__ = ["load", "loads", "analyze", "validate", "build", "fuse", "train", "register_op", "Spec", "Limits",
           "ArchcError", "ArchcErrors", "SpecError", "ShapeError", "ExprError", "LimitError", "CheckpointError",
           "OutputError", "ArchcWarning"]


@contextlib.contextmanager
def _no_gc():
    """The cycle collector off while a spec is read, expanded and built: those allocate many objects and free
    few, and a big spec spent ~40% of its time in collections. Re-enabled by the outermost caller."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load(path: str | Path, *, limits: Limits | dict | None = None, **params) -> Spec:
    """Read and check a spec, overriding its `params:` (as `--set`): a path, or the name of a network of the zoo
    archc ships (`"resnet50"`: archc/zoo/resnet.yaml with variant=resnet50; `archc list` shows them; a path that
    exists wins). `limits`: a Limits, or a mapping such as {"params": 5_000_000_000} raising some limits (see
    archc.Limits and docs/language.md's *Limits*)."""
    from archc.ir.ops import spec_ops
    from archc.spec.load import load as _load
    from archc.spec.zoo import find

    file, shown, named = find(path)
    with _no_gc():
        return _load(file, spec_ops(), {**named, **params}, limits, shown=shown)


def loads(text: str, file: str = "<string>", *, limits: Limits | dict | None = None, **params) -> Spec:
    """A spec from text; `file` names it in messages and anchors its imports."""
    from archc.ir.ops import spec_ops
    from archc.spec.load import loads as _loads

    with _no_gc():
        return _loads(text, file, spec_ops(), params, limits)


def _spec(spec_or_path, params, limits) -> Spec:
    if isinstance(spec_or_path, Spec):
        spec = spec_or_path.with_params(params) if params else spec_or_path
        return spec.with_limits(limits)
    return load(spec_or_path, limits=limits, **params)


def _warn(analysis, stacklevel: int) -> None:
    """Each of an analysis's warnings as a Python warning of archc's category (the CLI prints them itself)."""
    import warnings

    for w in analysis.warnings:
        warnings.warn(ArchcWarning.of(w), stacklevel=stacklevel + 1)


def _analyze(spec_or_path, check: bool, limits, params):
    from archc.analysis import Analysis
    from archc.ir.expand import expand
    from archc.passes import ANALYSIS, run

    with _no_gc():
        spec = _spec(spec_or_path, params, limits)
        analysis = Analysis(spec, run(expand(spec), ANALYSIS))
    if check:
        analysis.check_expect()
    return analysis


def analyze(spec_or_path, check: bool = True, *, limits: Limits | dict | None = None, **params):
    """Expand and analyse a spec; with `check`, its `expect:` figures (or its variant's) must hold (unless
    parameters other than the variant changed). Past a limit (the spec's own, or `limits`), a located LimitError,
    before any tensor exists. Its warnings (`Analysis.warnings`) are also issued as Python warnings of category
    ArchcWarning."""
    analysis = _analyze(spec_or_path, check, limits, params)
    _warn(analysis, 2)
    return analysis


def validate(spec_or_path, *, limits: Limits | dict | None = None, **params):
    """analyze(), plus every check that building the module makes short of allocating tensors (names that
    PyTorch modules refuse); never imports torch. Returns the Analysis (its warnings issued as analyze's)."""
    from archc.backends.torch.names import check

    with _no_gc():
        analysis = _analyze(spec_or_path, True, limits, params)
        check(analysis.graph)
    _warn(analysis, 2)
    return analysis


def build(spec_or_path, weights=None, features=None, *, limits: Limits | dict | None = None, **params):
    """An nn.Module from a spec path, a Spec or an Analysis; `module.analysis` keeps its figures and graph.

    weights: a state_dict file to load (torchvision .pth, .safetensors, an archc checkpoint), or published weights
    by name (`"IMAGENET1K_V2"`, `"torchvision:DEFAULT"`: the torchvision model's the spec names, through
    torchvision's weights API, `archc[weights]`): every tensor whose key and shape match; `module.weights_report`
    says what did not (archc/weights.py), with a warning.
    features: names of nodes or module groups (`["layer2", "layer3", "layer4"]`): the module returns a dict of
    those values instead, computing only what they need (the rest of the network is not built).
    limits: a Limits, or a mapping raising some limits (see archc.Limits)."""
    from archc.analysis import Analysis
    from archc.backends.torch.executor import ArchcModule

    with _no_gc():
        fresh = not isinstance(spec_or_path, Analysis)
        analysis = _analyze(spec_or_path, True, limits, params) if fresh else spec_or_path
        if features is not None:
            from archc.passes.outputs import select_outputs

            analysis = Analysis(analysis.spec, select_outputs(analysis.graph.copy(), list(features)))
        module = ArchcModule(analysis.graph)
    if fresh:  # an Analysis passed in has issued its warnings already
        _warn(analysis, 2)
    module.analysis = analysis
    module.weights_report = None
    module.weights_name = None  # torchvision weights loaded by name
    module.preprocessing = analysis.spec.preprocessing  # the input pipeline its weights expect, if known
    module.categories = None  # class names in output order, when the weights say
    if weights is not None:
        import warnings

        from archc.weights import load_any

        module.weights_report = load_any(module, weights)
        if not module.weights_report.complete:
            warnings.warn(ArchcWarning(str(module.weights_report)), stacklevel=2)
    return module


def fuse(module, max_plans: int | None = None):
    """An inference module computing `module.eval()`'s function with fused conv+BN+activation(+residual) ops, at
    every input size the layers allow. On the CPU each kind of input (shape, strides, dtype) gets a forward
    generated and memory-planned for it; the last `max_plans` (default 8) are kept."""
    from archc.backends.torch.inference import fuse as _fuse

    return _fuse(module, max_plans)


def train(spec=None, data=None, *, params: dict | None = None, limits: Limits | dict | None = None, log=print,
          **options):
    """Train the module `spec` makes on `data` and evaluate it each epoch: what `archc train` does (docs/training.md).

    spec: a spec path or Spec (None with `resume=`: the run's own). data: a folder of class folders of images (with
    train/ and val/ inside, or split by `val_split`), or a torchvision dataset's name (cifar10, mnist, ...).
    params: spec parameters, as --set (`classes` is set from the data). options: archc.training.TrainConfig's
    fields — epochs, batch, opt, lr, sched, warmup, amp, ema, out, resume, ... Returns a TrainResult: the
    trained module (eval mode), the run's folder (weights as .safetensors, metrics.jsonl, last.pt), its epochs."""
    from archc.training import train as _train

    return _train(spec, data, params=params, limits=limits, log=log, **options)


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
