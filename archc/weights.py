"""Weights in: a state_dict from a file the user has (never fetched) loaded into a built module, with a report.

Files: a PyTorch file holding a state_dict (torchvision's `.pth`, `torch.save(model.state_dict())`, or a training
checkpoint with one under `state_dict`/`model`), an archc checkpoint (`archc compile -o`), or `.safetensors`
(needs the `safetensors` package: `pip install 'archc[safetensors]'`). PyTorch files are read with
`torch.load(weights_only=True)`: tensors and plain containers only, no pickled code.

Every tensor whose key and shape match is loaded; the rest is reported — missing (the module's, not in the file),
unexpected (the file's, not in the module) and shape-mismatched (kept as the module initialised them: a
classifier built with `--set classes=10` keeps its fresh head and loads everything else). Keys saved from a
DistributedDataParallel or torch.compile wrapper (`module.`, `_orig_mod.`) are matched without the prefix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from archc.errors import ArchcError

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
