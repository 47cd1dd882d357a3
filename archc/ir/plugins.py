"""Ops that installed packages add: plugins.

A package adds ops by declaring an entry point in the group `archc.ops` whose object is a function taking no
arguments that calls `archc.register_op(op, lower)` for each op (the op's meaning, as in archc/ir/ops.py, and its
PyTorch lowering). archc loads every such entry point once, the first time the op table is asked for the ops a
spec may write; a spec still executes nothing: it can only name ops that installed code provides.

When a spec names an op that is not there, the error says which package provides it, when that is known: from
KNOWN (plugins archc knows of), from a plugin that is installed but failed to load, or from the spec's own
`requires:` list.
"""

from __future__ import annotations

from importlib import metadata

GROUP = "archc.ops"

# Ops of plugin packages archc knows of: op name -> the package that provides it.
KNOWN: dict[str, str] = {
    "mish": "archc-example-plugin",
    "pixel_shuffle": "archc-example-plugin",
}

LOADED: dict[str, str] = {}  # entry point name -> the package that provides it, for every plugin loaded
FAILED: dict[str, str] = {}  # package -> why its plugin did not load
_done = False


def load() -> None:
    """Load every installed plugin once. A plugin that fails is recorded, not raised: its ops stay unknown, and
    the error that names one says why."""
    global _done
    if _done:
        return
    _done = True
    for ep in metadata.entry_points(group=GROUP):
        package = ep.dist.name if ep.dist is not None else ep.value.split(":")[0]
        try:
            ep.load()()
            LOADED[ep.name] = package
        except Exception as e:  # a broken plugin must not break archc for specs that do not use it
            FAILED[package] = f"{type(e).__name__}: {e}"


def installed(package: str) -> bool:
    try:
        metadata.distribution(package)
        return True
    except metadata.PackageNotFoundError:
        return False


def provider(op: str) -> str | None:
    """The package known to provide op `op`, if any."""
    return KNOWN.get(op)
