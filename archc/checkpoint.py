"""`archc compile -o FILE`: a checkpoint holding the spec (imported blocks inlined), its parameters and
the state_dict.

It loads with `torch.load(weights_only=True)` (no pickled code), and `archc.checkpoint.load(FILE)`
rebuilds the module from the embedded spec. A checkpoint is self-contained and untrusted: its spec is read with
no file access (an `import:` is an error) under the same limits as any spec, and is analysed — its size known —
before the module is built; the weights are mapped, not read, until they are copied into that module. Whatever
is wrong with the file raises CheckpointError. Writing goes through archc's one output writer (archc/files.py): a
temporary file beside the target, renamed over it once complete; a target that cannot be written is an OutputError.
"""

from __future__ import annotations

import os
import stat
import zipfile

from archc.errors import ArchcError, CheckpointError

FORMAT = "archc-checkpoint-1"
KEYS = {"format": str, "file": str, "spec": str, "params": dict, "state_dict": dict}


def save(module, path: str | os.PathLike, *, protect=()) -> None:
    """Write `module` (built by archc) as a checkpoint at `path` through archc's output writer (archc/files.py):
    atomically, never through a link, never over the spec it was built from, one of its libraries or any of
    the files in `protect` (the weights it loaded, say). Raises OutputError when the file cannot be written there."""
    import torch

    from archc import files

    spec = module.analysis.spec
    ckpt = {"format": FORMAT, "file": spec.file, "spec": spec.standalone(), "params": dict(spec.overrides),
            "state_dict": module.state_dict()}
    files.write_with(path, lambda f: torch.save(ckpt, f), protect=files.inputs(spec, *protect), stream=True)


def load(path: str | os.PathLike, *, limits=None):
    """The module a checkpoint holds, its weights loaded strictly. `limits`: as archc.load's (the embedded spec
    is checked against them before anything is allocated). Raises CheckpointError, located in the embedded
    spec (file `PATH:spec`) when that is where the problem is."""
    import torch

    import archc
    from archc.ir.ops import spec_ops
    from archc.spec.load import loads

    shown = str(path)
    ckpt = _read(path)
    try:
        spec = loads(ckpt["spec"], f"{shown}:spec", spec_ops(), ckpt["params"], limits, folder=None)
        module = archc.build(spec)
    except CheckpointError:
        raise
    except ArchcError as e:  # located in the embedded spec (PATH:spec:line:column)
        first = e.errors[0]
        raise CheckpointError(f"the embedded spec does not load: {first.message}", first.loc, first.path) from None
    except (TypeError, ValueError, AttributeError) as e:  # parameters of the wrong kinds
        raise CheckpointError(f"{shown}: the embedded spec or its parameters are damaged ({e})") from None
    expected = module.state_dict()
    saved = ckpt["state_dict"]
    missing = [k for k in expected if k not in saved]
    extra = [k for k in saved if k not in expected]
    if missing or extra:
        raise CheckpointError(f"{shown}: weights do not match the spec (missing: {_few(missing)}; unexpected: "
                              f"{_few(extra)})")
    for k, v in saved.items():
        if not isinstance(v, torch.Tensor) or v.shape != expected[k].shape or v.dtype != expected[k].dtype:
            got = f"{type(v).__name__}" if not isinstance(v, torch.Tensor) else f"{list(v.shape)} {v.dtype}"
            raise CheckpointError(f"{shown}: weight {k!r} is {got}, the spec makes it "
                                  f"{list(expected[k].shape)} {expected[k].dtype}")
    try:
        module.load_state_dict(saved, strict=True)
    except (RuntimeError, ValueError, TypeError) as e:
        raise CheckpointError(f"{shown}: weights do not load: {str(e).splitlines()[0]}") from None
    return module


def _read(path) -> dict:
    """The checkpoint's dict, its fields of the right types; the tensors mapped from the file, not read."""
    import torch

    shown = str(path)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise CheckpointError(f"cannot read checkpoint {shown}: not a regular file")
        with zipfile.ZipFile(path) as z:  # torch.save writes an uncompressed zip: anything else is not ours
            if any(i.compress_type != zipfile.ZIP_STORED for i in z.infolist()):
                raise CheckpointError(f"{shown}: not an archc checkpoint (compressed entries)")
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except CheckpointError:
        raise
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {shown}: {e.strerror or e}") from None
    except Exception as e:  # a damaged or foreign file: zip, pickle or torch errors of every kind
        raise CheckpointError(f"{shown}: not an archc checkpoint ({type(e).__name__}: "
                              f"{(str(e).splitlines() or [''])[0][:200]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{shown}: not an archc checkpoint")
    for key, kind in KEYS.items():
        if not isinstance(ckpt.get(key), kind):
            raise CheckpointError(f"{shown}: damaged checkpoint: {key!r} is {type(ckpt.get(key)).__name__}, "
                                  f"not {kind.__name__}")
    if not all(isinstance(k, str) for k in (*ckpt["params"], *ckpt["state_dict"])):
        raise CheckpointError(f"{shown}: damaged checkpoint: names that are not strings")
    return ckpt


def _few(names: list[str]) -> str:
    return (", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")) or "none"
