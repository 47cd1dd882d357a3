"""`archc compile -o FILE`: a checkpoint holding the spec (imported blocks inlined), its parameters and
the state_dict.

It loads with `torch.load(weights_only=True)` (no pickled code), and `archc.checkpoint.load(FILE)`
rebuilds the module from the embedded spec.
"""

from __future__ import annotations

import torch

FORMAT = "archc-checkpoint-1"


def save(module, path: str) -> None:
    spec = module.analysis.spec
    torch.save({"format": FORMAT, "file": spec.file, "spec": spec.standalone(), "params": dict(spec.overrides),
                "state_dict": module.state_dict()}, path)


def load(path: str):
    import archc
    from archc.errors import SpecError

    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise SpecError(f"{path}: not an archc checkpoint")
    module = archc.build(archc.loads(ckpt["spec"], ckpt["file"], **ckpt["params"]))
    module.load_state_dict(ckpt["state_dict"], strict=True)
    return module
