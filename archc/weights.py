"""Weights in: a state_dict from a file the user has (never fetched) loaded into a built module, with a report.

Files: a PyTorch file holding a state_dict (torchvision's `.pth`, `torch.save(model.state_dict())`, or a training
checkpoint with one under `state_dict`/`model`), an archc checkpoint (`archc compile -o`), or `.safetensors`
(needs the `safetensors` package: `pip install 'archc[safetensors]'`). PyTorch files are read with
`torch.load(weights_only=True)`: tensors and plain containers only, no pickled code.

Every tensor whose key and shape match is loaded; the rest is reported — missing (the module's, not in the file),
unexpected (the file's, not in the module) and shape-mismatched (kept as the module initialised them: a
classifier built with `--set classes=10` keeps its fresh head and loads everything else). Keys saved from a
DistributedDataParallel or torch.compile wrapper (`module.`, `_orig_mod.`) are matched without the prefix.

Weights by name: `torchvision:IMAGENET1K_V2` (or a bare weights name such as `IMAGENET1K_V2`, `DEFAULT`, that is
not a file) loads the published weights of the torchvision model the spec (its variant) names with `torchvision:`,
through torchvision's own weights API: its download into its cache ($TORCH_HOME/hub/checkpoints), the hash its file
name carries checked on download, its key fix-ups (DenseNet's old keys). Needs torchvision (`archc[weights]`).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from archc.errors import ArchcError
from archc.spec.document import Preprocessing

PREFIX = "torchvision:"  # weights by name: torchvision:IMAGENET1K_V2
_WEIGHTS_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
WRAPPERS = ("module.", "_orig_mod.")  # DistributedDataParallel / DataParallel, torch.compile
NESTED = ("state_dict", "model", "model_state_dict", "weights")  # where training checkpoints keep the state_dict


@dataclass
class WeightsReport:
    file: str
    format: str
    matched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, list[int], list[int]]] = field(default_factory=list)  # key, file's, module's
    stripped: str = ""  # the wrapper prefix taken off the file's keys

    @property
    def complete(self) -> bool:
        """Every tensor of the module came from the file, and every tensor of the file went in."""
        return not (self.missing or self.unexpected or self.mismatched)

    def lines(self) -> list[str]:
        total = len(self.matched) + len(self.missing) + len(self.mismatched)
        head = f"weights {self.file} ({self.format}): {len(self.matched)} of the module's {total} tensors loaded"
        if self.stripped:
            head += f" (the file's keys without the prefix {self.stripped!r})"
        out = [head]
        for key, theirs, ours in self.mismatched:
            out.append(f"  shape mismatch: {key} is {theirs} in the file, {ours} here: kept freshly initialised")
        for key in self.missing:
            out.append(f"  missing: {key} (not in the file): kept freshly initialised")
        for key in self.unexpected:
            out.append(f"  unexpected: {key} (in the file, not in the module): ignored")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def to_dict(self) -> dict:
        return {"file": self.file, "format": self.format, "matched": len(self.matched), "missing": self.missing,
                "unexpected": self.unexpected, "stripped": self.stripped,
                "mismatched": [{"key": k, "file": a, "module": b} for k, a, b in self.mismatched]}


def read(path: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """(state_dict, format) from a weights file. A file that is not one raises ArchcError."""
    path = Path(path)
    if not path.is_file():
        raise ArchcError(f"cannot read weights {path}: no such file")
    with path.open("rb") as f:
        head = f.read(9)
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < path.stat().st_size:
        return _safetensors(path), "safetensors"
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # not a PyTorch file, or one that holds code (weights_only refuses it)
        first = (str(e).strip().splitlines() or [""])[0]
        raise ArchcError(f"cannot read weights {path}: not a file that torch.load(weights_only=True) reads "
                         f"({type(e).__name__}: {first})") from None
    if isinstance(obj, dict) and str(obj.get("format")).startswith("archc-checkpoint"):  # any version's weights
        return _tensors(obj.get("state_dict"), path), "archc checkpoint"
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return _tensors(obj, path), "state_dict"
    for key in NESTED:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            return _tensors(obj[key], path), f"state_dict under {key!r}"
    raise ArchcError(f"cannot read weights {path}: no state_dict in it (a {type(obj).__name__}"
                     + (f" with keys {', '.join(map(str, list(obj)[:6]))}" if isinstance(obj, dict) else "") + ")")


def _tensors(obj, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(obj, dict) or not obj:
        raise ArchcError(f"cannot read weights {path}: its state_dict is empty or not a mapping")
    out = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not out:
        raise ArchcError(f"cannot read weights {path}: no tensors in its state_dict")
    return out


def _safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise ArchcError(f"cannot read weights {path}: .safetensors files need the safetensors package "
                         "(pip install 'archc[safetensors]')") from None
    try:
        return load_file(str(path), device="cpu")
    except Exception as e:
        raise ArchcError(f"cannot read weights {path}: {e}") from None


def load(module: torch.nn.Module, path: str | Path) -> WeightsReport:
    """Load the file's matching tensors into `module` (in place) and report what matched and what did not.
    Raises ArchcError when nothing matches (the wrong file for this module)."""
    return apply(module, *read(path), str(path))


def apply(module: torch.nn.Module, state: dict[str, torch.Tensor], fmt: str, path: str) -> WeightsReport:
    """`load` with the file already read (`read`)."""
    ours = module.state_dict()
    report = WeightsReport(str(path), fmt)
    changed = True
    while changed:  # strip wrapper prefixes that every key carries, when the module's keys do not
        changed = False
        for prefix in WRAPPERS:
            if all(k.startswith(prefix) for k in state) and not any(k.startswith(prefix) for k in ours):
                state = {k[len(prefix):]: v for k, v in state.items()}
                report.stripped += prefix
                changed = True
    take = {}
    for key, tensor in state.items():
        if key not in ours:
            report.unexpected.append(key)
        elif tuple(tensor.shape) != tuple(ours[key].shape):
            report.mismatched.append((key, list(tensor.shape), list(ours[key].shape)))
        else:
            take[key] = tensor
            report.matched.append(key)
    report.missing = [k for k in ours if k not in state]
    if not take:
        sample = ", ".join(list(state)[:3])
        raise ArchcError(f"weights {path}: none of its {len(state)} tensors fits this module (its keys: {sample}, "
                         f"...; the module's: {', '.join(list(ours)[:3])}, ...)")
    result = module.load_state_dict(take, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys  # only keys of the module were given
    return report


# -- weights by name -------------------------------------------------------------------------------------------

@dataclass
class Published:
    """Weights published for a torchvision model, as its weights API gives them."""

    state: dict[str, torch.Tensor]
    label: str  # torchvision:resnet50.IMAGENET1K_V2
    name: str  # IMAGENET1K_V2 (DEFAULT resolved)
    file: str  # where torchvision's cache keeps them
    preprocessing: Preprocessing  # the pipeline they expect
    categories: list[str] | None  # class names, in output order


def named(ref) -> str | None:
    """The weights name `ref` stands for (`torchvision:NAME`, or a bare NAME that is not a file), else None."""
    if not isinstance(ref, str):
        return None
    if ref.startswith(PREFIX):
        return ref[len(PREFIX):]
    return ref if _WEIGHTS_NAME.fullmatch(ref) and not os.path.exists(ref) else None


def _torchvision():
    try:
        import torchvision.models
    except ImportError as e:
        raise ArchcError("weights by name (torchvision:NAME) and archc predict need torchvision, which is not "
                         f"installed here ({e.msg}): pip install 'archc[weights]'") from None
    return torchvision.models


def torchvision_enum(spec, name: str | None = None):
    """The torchvision weights `name` of the model `spec` names (its variant's `torchvision:`); with no name, the
    enum of all its weights. Errors are one located line."""
    tv, where = spec.torchvision, _where(spec)
    if tv is None:
        raise ArchcError(f"weights {PREFIX}{name}: {spec.name} names no torchvision model (`torchvision:` in the spec "
                         "or its variant), so it has no published weights to load by name; give a weights file",
                         spec.loc(()), "torchvision")
    models = _torchvision()
    try:
        enum = models.get_model_weights(tv)
    except (ValueError, KeyError):
        raise ArchcError(f"this torchvision has no model {tv!r} (torchvision {_version()})", where,
                         "torchvision") from None
    if name is None:
        return enum
    try:
        return enum[name]
    except KeyError:
        names = ", ".join(["DEFAULT", *(w.name for w in enum)])
        raise ArchcError(f"weights {PREFIX}{name}: torchvision has no such weights for {tv} (it has: {names})",
                         where, "torchvision") from None


def _where(spec):
    """Where the spec names its torchvision model (its variant's row, or its own key)."""
    own = spec.variant is not None and spec.variants[spec.variant].about.torchvision
    return spec.loc(("variants", spec.variant, "torchvision") if own else ("torchvision",))


def _version() -> str:
    import torchvision

    return torchvision.__version__


def pipeline(weights) -> Preprocessing:
    """The input pipeline torchvision's weights meta states (their `transforms()`)."""
    t = weights.transforms()
    return Preprocessing(int(t.resize_size[0]), int(t.crop_size[0]), t.interpolation.value,
                         tuple(map(float, t.mean)), tuple(map(float, t.std)))


def torchvision_weights(spec, name: str, aux: bool = False) -> Published:
    """The weights `name` of the torchvision model the spec names, through torchvision's weights API: downloaded
    (hash-checked) into its cache or read from there, and loaded into torchvision's own model (which fixes up old
    key layouts); with `aux`, its auxiliary heads kept (GoogLeNet's, Inception-v3's)."""
    weights = torchvision_enum(spec, name)
    models = _torchvision()
    from urllib.parse import urlparse

    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)
    present = cached.is_file()
    try:  # torch.hub says "Downloading: ..." on stdout: keep stdout for archc's output (--json)
        with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # GoogLeNet's "auxiliary heads are NOT pretrained"
            model = models.get_model(spec.torchvision, weights=weights, progress=False,
                                     **({"aux_logits": True} if aux else {}))
    except Exception as e:  # offline, refused, a damaged or truncated file, a hash that does not match
        reason = _reason(e)
        if present:
            raise ArchcError(f"weights {PREFIX}{name}: cannot read torchvision's cached file {cached} ({reason}); "
                             "delete it to download it again", _where(spec), "torchvision") from None
        raise ArchcError(f"weights {PREFIX}{name}: cannot download {weights.url} ({reason}); without a network, "
                         f"put the file at {cached}", _where(spec), "torchvision") from None
    state = model.state_dict()
    # the pipeline: the spec's own for the weights it publishes (it states what torchvision's model does inside,
    # such as Inception's transform_input), else the weights' meta
    pre = spec.preprocessing if _published(spec) in (weights.name, name) and spec.preprocessing else \
        pipeline(weights)
    return Published(state, f"{PREFIX}{spec.torchvision}.{weights.name}", weights.name, str(cached), pre,
                     list(weights.meta.get("categories") or []) or None)


def _published(spec) -> str | None:
    p = spec.about.published
    return p.weights if p else None


def _reason(e: Exception) -> str:
    text = str(getattr(e, "reason", None) or e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


def imagenet_categories() -> list[str] | None:
    """ImageNet-1k's class names in torchvision's order, from its weights meta; None without torchvision."""
    try:
        from torchvision.models import ResNet50_Weights
    except ImportError:
        return None
    return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


@dataclass
class Fetched:
    """Weights read (a file) or fetched (by name), not yet loaded into a module."""

    state: dict[str, torch.Tensor]
    format: str
    label: str  # the file, or torchvision:MODEL.NAME
    name: str | None = None  # the torchvision weights' name
    preprocessing: Preprocessing | None = None  # what they expect, when they say
    categories: list[str] | None = None


def fetch(ref, analysis) -> Fetched:
    """The weights `ref` names for the analysed spec: a file (`read`), or published weights by name (`named`)."""
    name = named(ref)
    if name is None:
        return Fetched(*read(ref), str(ref))
    published = torchvision_weights(analysis.spec, name, aux=any(o["aux"] for o in analysis.outputs))
    return Fetched(published.state, f"torchvision weights, cached at {published.file}", published.label,
                   published.name, published.preprocessing, published.categories)


def install(module: torch.nn.Module, fetched: Fetched) -> WeightsReport:
    """Load fetched weights into a built module (`apply`); what they say about their input and classes goes
    on the module (`preprocessing`, `categories`, `weights_name`)."""
    report = apply(module, fetched.state, fetched.format, fetched.label)
    if fetched.preprocessing is not None:
        module.preprocessing = fetched.preprocessing
    if fetched.categories is not None:
        module.categories = fetched.categories
    module.weights_name = fetched.name
    return report


def load_any(module: torch.nn.Module, ref) -> WeightsReport:
    """Load the weights `ref` names (a file, or published weights by name) into a built module."""
    return install(module, fetch(ref, module.analysis))
