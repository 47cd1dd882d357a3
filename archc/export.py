"""`archc export`: a built (or fused) module as ONNX, a torch.export program (.pt2) or TorchScript, each checked
against the module it came from.

The module is exported in eval mode (auxiliary heads left out) with a dynamic batch dimension, from an example
input of batch 2, and — for onnx and pt2, where the layers allow other input sizes than the spec's — dynamic height
and width (from the smallest size the layers allow; a network whose layers fix the size, such as a linear after
flatten, keeps it). The check runs the export at the spec's size and, when dynamic, at a second size. Formats:
- onnx: `torch.onnx.export(dynamo=True)`, opset 18 (OPSET), constant-folded but otherwise as the module
  computes (BatchNorm stays BatchNormalization; `--fused` exports the BN-folded module). Initializers carry the
  state_dict keys (`layer1.0.conv1.weight`), nodes the module paths (`layer1.0.conv1`, or
  `layer1.0.~add/Add` when a module makes several), the graph input is `input`, the outputs the spec's output
  names. Checked with `onnx.checker` (full check) and run in onnxruntime against the module. Needs the `onnx`
  extra: `pip install 'archc[onnx]'` (onnx, onnxscript, onnxruntime).
- pt2: `torch.export.export`, saved with `torch.export.save`; reloaded and run against the module.
- torchscript: `torch.jit.trace`, saved with `.save`; reloaded and run against the module.
The check fails the export when the outputs differ by more than TOLERANCE (max |a - b| / max |b|).
The file is written through archc's output writer (archc/files.py): its target checked before the export starts,
the export written to a temporary file beside it, checked there, and renamed over the target only once the check
passed — a failed export or check, or a failed write, leaves the old file as it was.

What a deployed model needs beside it: `metadata(module)` (the input pipeline its weights expect, and its class
names when the weights give them) goes into the ONNX model's metadata as JSON (`archc.preprocessing`,
`archc.classes`); `save_weights` writes the module's state_dict as .safetensors (the `safetensors` extra), the same
metadata in its header, loadable with `archc.build(spec, weights=FILE)`.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from archc import files
from archc.errors import ArchcError

OPSET = 18
TOLERANCE = 1e-4
FORMATS = {"onnx": ".onnx", "pt2": ".pt2", "torchscript": ".pt"}


@dataclass
class Exported:
    path: str
    format: str
    error: float | None  # max relative difference from the module on a fresh input (None: not checked)
    checked: str  # what checked it

    def __str__(self) -> str:
        check = f"; {self.checked}: max relative difference {self.error:.1e}" if self.error is not None else \
            f"; {self.checked}"
        return f"wrote {self.path} ({self.format}{check})"


def relative_error(got, want) -> float:
    got, want = torch.as_tensor(got).double(), torch.as_tensor(want).double()
    return ((got - want).abs().max() / want.abs().max().clamp_min(1e-30)).item()


def _outputs(module, x) -> list[torch.Tensor]:
    with torch.no_grad():
        out = module(x)
    if isinstance(out, dict):
        return list(out.values())
    return list(out) if isinstance(out, (tuple, list)) else [out]


def output_names(module) -> list[str]:
    return [o.name for o in module.graph.outputs if not o.aux]


def metadata(module) -> dict[str, str]:
    """What a deployed model needs to be used, as strings of JSON: the input pipeline (`archc.preprocessing`:
    resize, crop, interpolation, mean, std) when the spec or its weights state one, and the class names
    (`archc.classes`) when the weights give them."""
    out = {}
    pre = getattr(module, "preprocessing", None)
    if pre is not None:
        out["archc.preprocessing"] = json.dumps(pre.to_dict())
    names = getattr(module, "categories", None)
    if names:
        out["archc.classes"] = json.dumps(list(names))
    return out


def save_weights(module, path: str | Path, extra: dict[str, str] | None = None, *, protect=()) -> str:
    """The module's state_dict as a .safetensors file (metadata: the spec's name and `extra`), through archc's
    output writer (never over one of `protect`)."""
    try:
        from safetensors.torch import save
    except ImportError:
        raise ArchcError("writing .safetensors weights needs the safetensors extra: pip install "
                         "'archc[safetensors]'") from None
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    meta = {"format": "pt", "archc.network": module.name, **(extra or {})}
    files.write_bytes(path, save(state, metadata=meta), protect=protect)
    return str(path)


def export(module, fmt: str, path: str | Path, check: bool = True, opset: int = OPSET, *, protect=(),
           meta: dict[str, str] | None = None) -> Exported:
    """Export `module` (an ArchcModule, built or fused) to `path` in format `fmt`; with `check`, run the
    exported model against the module on a fresh input of batch 3 (the export was traced at batch 2). `path` is
    checked first (archc.files.check; never one of `protect`, the spec the module was built from nor its
    libraries) and replaced only by a complete export that passed its check. `meta`: more metadata for an ONNX
    model (default: `metadata(module)`)."""
    if fmt not in FORMATS:
        raise ArchcError(f"unknown export format {fmt!r} (formats: {', '.join(FORMATS)})")
    protect = files.protected(files.inputs(module.analysis.spec), protect)
    files.check(path, protect=protect)
    module = module.eval()
    shape = module.analysis.input_shape
    torch.manual_seed(0)
    example = torch.randn(2, *shape)
    if fmt == "onnx":
        return _onnx(module, example, path, check, opset, protect, metadata(module) if meta is None else meta)
    return {"pt2": _pt2, "torchscript": _torchscript}[fmt](module, example, path, check, opset, protect)


@contextlib.contextmanager
def _quiet():
    """The exporters' progress lines and advice, off (a failure still raises)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _batch():
    return torch.export.Dim("batch", min=1, max=4096)


MAX_SIDE = 16384  # the largest height or width a dynamic export accepts


def _spatial(module) -> tuple[int, int] | None:
    """The smallest (h, w) the layers allow when they allow sizes other than the spec's (None: fixed or flat).
    Found with archc's shape inference (archc.passes.shapes), scanning square sizes, then each side alone."""
    from archc.errors import ShapeError
    from archc.passes import shapes

    sample = tuple(module.analysis.input_shape)
    if len(sample) != 3:
        return None
    c, h, w = sample
    order = module.graph.meta["schedules"][False].order

    def ok(hw) -> bool:
        try:
            shapes.infer(module.graph, (c, *hw), order)
        except ShapeError:
            return False
        return True

    others = [(h + 1, w + 1), (h + 2, w + 2), (h + 8, w + 8), (h + 32, w + 32), (2 * h, 2 * w)]
    if not any(ok(hw) for hw in others):
        return None
    side = next((s for s in range(1, min(h, w) + 1) if ok((s, s))), min(h, w))
    return side, side


def _dims(module) -> tuple[dict, tuple | None]:
    """dynamic_shapes for the input (batch; height and width where the layers allow) and a second (h, w) to check
    the export at."""
    least = _spatial(module)
    if least is None:
        return {0: _batch()}, None
    _, h, w = module.analysis.input_shape
    dims = {0: _batch(), 2: torch.export.Dim("height", min=least[0], max=MAX_SIDE),
            3: torch.export.Dim("width", min=least[1], max=MAX_SIDE)}
    return dims, _second_size(module, h, w)


def _second_size(module, h, w) -> tuple | None:
    from archc.errors import ShapeError
    from archc.passes import shapes

    c = module.analysis.input_shape[0]
    for hw in ((h + 32, w + 16), (h + 8, w + 8), (h + 1, w + 1), (h + 2, w + 2), (2 * h, 2 * w)):
        try:
            shapes.infer(module.graph, (c, *hw), module.graph.meta["schedules"][False].order)
            return hw
        except ShapeError:
            continue
    return None


def _export_program(module, example, dims):
    """torch.export with dynamic height and width, or, where the exporter finds them constrained, without."""
    try:
        return torch.export.export(module, (example,), dynamic_shapes=(dims,)), dims
    except Exception:
        if set(dims) == {0}:
            raise
        fixed = {0: dims[0]}
        return torch.export.export(module, (example,), dynamic_shapes=(fixed,)), fixed


def _compare(module, run, check: bool, what: str, other: tuple | None = None) -> tuple[float | None, str]:
    """The export against the module on fresh inputs of batch 3: at the spec's size and, for a dynamic export,
    at size `other` (h, w) too."""
    if not check:
        return None, "not checked"
    torch.manual_seed(1)
    shape = tuple(module.analysis.input_shape)
    inputs = [torch.randn(3, *shape)] + ([torch.randn(3, shape[0], *other)] if other else [])
    error = 0.0
    for x in inputs:
        want = _outputs(module, x)
        got = run(x)
        if len(got) != len(want):
            raise ArchcError(f"{what} returns {len(got)} outputs, the module {len(want)}")
        error = max(error, *(relative_error(g, w) for g, w in zip(got, want)))
        if not error <= TOLERANCE:
            raise ArchcError(f"{what} differs from the module by {error:.2e} at input {list(x.shape[1:])} "
                             f"(relative; at most {TOLERANCE:g} allowed): the export is wrong, please report it")
    if other:
        what += f" at {shape[1]}x{shape[2]} and {other[0]}x{other[1]}"
    return error, what


# -- ONNX ---------------------------------------------------------------------------------------------------

def _avg_pool2d_translation():
    """torch 2.13's ONNX translation of avg_pool2d drops `divisor_override` silently (sum pooling, as LeNet-5's
    subsampling, comes out divided by the window). This one keeps it where it is exact: AveragePool then a
    multiplication by area / divisor, when every window is whole (no ceil overhang, padding counted)."""
    from onnxscript import opset18 as op
    from onnxscript.function_libs.torch_lib.ops.nn import aten_avg_pool2d

    def avg_pool2d(self, kernel_size, stride=(), padding=(0, 0), ceil_mode=False, count_include_pad=True,
                   divisor_override=None):
        out = aten_avg_pool2d(self, kernel_size, stride, padding, ceil_mode, count_include_pad)
        if divisor_override is None:
            return out
        k = list(kernel_size) * (2 if len(kernel_size) == 1 else 1)
        s = list(stride or k) * (2 if len(stride or k) == 1 else 1)
        p = list(padding) * (2 if len(padding) == 1 else 1)
        size = [self.shape[-2], self.shape[-1]] if self.shape is not None else [None, None]
        whole = all(isinstance(n, int) and (n + 2 * p[i] - k[i]) % s[i] == 0 for i, n in enumerate(size))
        if ceil_mode and not whole or not count_include_pad and any(p):
            raise NotImplementedError("avg_pool2d with a divisor over partial windows has no exact ONNX form")
        return op.Mul(out, op.CastLike(op.Constant(value_float=k[0] * k[1] / divisor_override), out))

    return avg_pool2d


def _onnx(module, example, path, check: bool, opset: int, protect, meta: dict[str, str]) -> Exported:
    try:
        import onnx
        import onnxscript.optimizer
    except ImportError:
        raise ArchcError("ONNX export needs the onnx extra: pip install 'archc[onnx]' (onnx, onnxscript, "
                         "onnxruntime)") from None
    names = output_names(module)
    dims, other = _dims(module)
    try:
        with _quiet():
            exported, dims = _export_program(module, example, dims)
            program = torch.onnx.export(
                exported, (example,), input_names=["input"], output_names=names, opset_version=opset, dynamo=True,
                optimize=False, verbose=False,
                custom_translation_table={torch.ops.aten.avg_pool2d.default: _avg_pool2d_translation()})
            onnxscript.optimizer.fold_constants(program.model)
            onnxscript.optimizer.remove_unused_nodes(program.model)
    except Exception as e:
        raise ArchcError(f"ONNX export of {module.name} failed: {_first_line(e)}") from None
    other = other if 2 in dims else None
    model = program.model_proto
    _name_nodes(model)
    model.graph.name = module.name
    spec = module.analysis.spec
    model.doc_string = f"archc export of {module.name} ({spec.file})"
    for key, value in (("archc.spec", spec.file), ("archc.input", str(module.analysis.input_shape)),
                       ("archc.outputs", ", ".join(names)), *meta.items()):
        model.metadata_props.add(key=key, value=value)
    checked = {}

    def verify(tmp: Path) -> None:  # the written file, before it replaces the target
        onnx.checker.check_model(str(tmp), full_check=True)
        try:
            import onnxruntime
        except ImportError:
            checked["result"] = None, "onnx.checker passed; onnxruntime not installed, not run"
            return
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(str(tmp), options, providers=["CPUExecutionProvider"])
        checked["result"] = _compare(module, lambda x: session.run(None, {"input": x.numpy()}), check,
                                     "onnx.checker passed; onnxruntime", other)

    files.write_with(path, lambda tmp: onnx.save(model, str(tmp)), protect=protect, verify=verify)
    return Exported(str(path), f"ONNX opset {opset}", *checked["result"])


def _name_nodes(model) -> None:
    """Name each node by the module that made it (torch.export's name scopes): `layer1.0.conv1`, or
    `layer1.0.conv1/Op` (and `/Op_2`, ...) when the module made several nodes."""
    def scope(node) -> str:
        for p in node.metadata_props:
            if p.key == "pkg.torch.onnx.name_scopes":
                parts = [s.strip(" '\"") for s in p.value.strip("[]").split(",")]
                return parts[1] if len(parts) > 1 and parts[1] else ""
        return ""

    scopes = [scope(n) for n in model.graph.node]
    counts: dict[str, int] = {}
    for s in scopes:
        counts[s] = counts.get(s, 0) + 1
    taken: set[str] = set()
    for node, s in zip(model.graph.node, scopes):
        if not s:
            continue
        name = s if counts[s] == 1 else f"{s}/{node.op_type}"
        k = 1
        while name in taken:
            k += 1
            name = f"{s}/{node.op_type}_{k}"
        taken.add(name)
        node.name = name


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"


# -- torch.export and TorchScript ---------------------------------------------------------------------------

def _pt2(module, example, path, check: bool, opset: int, protect) -> Exported:
    dims, other = _dims(module)
    try:
        with _quiet():
            program, dims = _export_program(module, example, dims)
    except Exception as e:
        raise ArchcError(f"torch.export of {module.name} failed: {_first_line(e)}") from None
    other = other if 2 in dims else None
    checked = {}

    def verify(tmp: Path) -> None:
        with _quiet():
            loaded = torch.export.load(str(tmp)).module()
        checked["result"] = _compare(module, lambda x: _outputs(loaded, x), check, "reloaded with torch.export.load",
                                     other)

    with _quiet():  # (a fused module's tensors are shared with its kernel wrappers: torch.export says so)
        files.write_with(path, lambda f: torch.export.save(program, f), protect=protect, stream=True, verify=verify)
    return Exported(str(path), "torch.export program", *checked["result"])


def _torchscript(module, example, path, check: bool, opset: int, protect) -> Exported:
    try:
        with _quiet(), torch.no_grad():
            traced = torch.jit.trace(module, (example,), strict=False, check_trace=False)
    except Exception as e:
        raise ArchcError(f"TorchScript trace of {module.name} failed: {_first_line(e)}") from None
    checked = {}

    def verify(tmp: Path) -> None:
        loaded = torch.jit.load(str(tmp))
        checked["result"] = _compare(module, lambda x: _outputs(loaded, x), check, "reloaded with torch.jit.load")

    with warnings.catch_warnings():  # torch.jit.save's deprecation notice
        warnings.simplefilter("ignore", FutureWarning)
        files.write_with(path, lambda f: torch.jit.save(traced, f), protect=protect, stream=True, verify=verify)
    return Exported(str(path), "TorchScript (traced)", *checked["result"])
