"""The zoo: the specs and block libraries archc ships (package data, archc/zoo/), found by name.

A spec is named by its file's stem (`resnet`), its `name:`, or the name of one of its variants' networks
(`resnet50`: resnet.yaml with `variant=resnet50`; `mobilenet_v3_large`: mobilenet_v3.yaml's `large`), the name
each variant's network takes (archc/spec/document.py: network_name). A path that exists always wins over a name.

Libraries are imported by a library name `PACKAGE/NAME`: `archc/resnet` is archc's own archc/zoo/lib/resnet.yaml;
any other package is a folder found on the library search path, the folders listed in $ARCHC_PATH (separated as
PATH is: `:`): `mylab/blocks` is `mylab/blocks.yaml` inside the first such folder that has it. Nothing outside
those folders is read.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from archc.errors import Loc, SpecError, UnknownNameError
from archc.spec.document import network_name

ROOT = Path(__file__).resolve().parent.parent / "zoo"  # archc/zoo: the specs
LIBRARIES = ROOT / "lib"  # archc/zoo/lib: the block libraries, package `archc`
PACKAGE = "archc"
SEARCH_PATH = "ARCHC_PATH"


@dataclass(frozen=True)
class Entry:
    """A network of the zoo: the name it is found by, its spec file, the variant that name selects (None: the
    spec's default)."""

    name: str
    path: Path
    variant: str | None = None


def specs() -> list[Path]:
    """Every spec file of the zoo, by name."""
    return sorted(ROOT.glob("*.yaml"))


@lru_cache(maxsize=1)
def index() -> dict[str, tuple[Entry, ...]]:
    """Name -> the networks it names (more than one: an ambiguous name). Stems first: a file's stem names it
    whatever else shares the name. Read from the shipped files' top-level keys (a few ms); a test keeps every
    name equal to what loading its spec gives."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    stems: dict[str, tuple[Entry, ...]] = {}
    names: dict[str, dict[tuple, Entry]] = {}
    for path in specs():
        stems[path.stem] = (Entry(path.stem, path),)
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
        if not isinstance(data, dict):
            continue
        found = [(data.get("name"), None)]
        variants = data.get("variants") if isinstance(data.get("variants"), dict) else {}
        for variant, row in variants.items():
            found.append((network_name(str(data.get("name")), variant, row if isinstance(row, dict) else {}),
                          variant))
        for name, variant in found:
            if isinstance(name, str) and name not in stems:
                names.setdefault(name, {})[(path, variant)] = Entry(name, path, variant)
    out = {name: tuple(entries.values()) for name, entries in names.items() if name not in stems}
    return {**out, **stems}


def is_name(text: str) -> bool:
    """Whether `text` reads as a zoo name rather than a path (no folder, no .yaml suffix)."""
    return bool(text) and "/" not in text and os.sep not in text and not text.endswith((".yaml", ".yml"))


def find(spec: str | os.PathLike) -> tuple[Path, str, dict]:
    """The file a spec argument names, how to show it in messages, and the parameters its name sets
    ({"variant": ...}): an existing path as it is; else a zoo name; else a located error with the close names."""
    if not isinstance(spec, str) or not is_name(spec) or Path(spec).exists():
        return Path(spec), str(spec), {}
    entries = index().get(spec)
    if not entries:
        close = difflib.get_close_matches(spec, list(index()), n=5, cutoff=0.6)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UnknownNameError(f"no spec file or zoo network named {spec!r}{hint}; `archc list` shows the zoo",
                               Loc(spec, 1, 1))
    if len(entries) > 1:
        which = ", ".join(f"{e.path.name}" + (f" variant {e.variant}" if e.variant else "") for e in entries)
        raise UnknownNameError(f"zoo name {spec!r} is ambiguous: {which}; name the file", Loc(spec, 1, 1))
    entry = entries[0]
    return entry.path, shown(entry.path), {"variant": entry.variant} if entry.variant else {}


def shown(path: Path) -> str:
    """A zoo file as messages show it: relative to the working folder when it is inside it (a checkout), else
    its full path."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def search_path() -> list[Path]:
    """The folders user libraries are found in: $ARCHC_PATH, in order."""
    return [Path(p) for p in os.environ.get(SEARCH_PATH, "").split(os.pathsep) if p]


def library(ref: str, loc: Loc) -> tuple[Path, Path]:
    """A library name `PACKAGE/NAME...` -> (the library file's real path, the root folder it must stay inside)."""
    package, *rest = ref.split("/")
    if package == PACKAGE:
        roots = [LIBRARIES]
        where = "archc's libraries"
    else:
        roots = [folder / package for folder in search_path()]
        where = f"the folders of ${SEARCH_PATH}" if roots else f"${SEARCH_PATH} (unset: no user libraries)"
    for root in roots:
        try:
            root = root.resolve()
            path = root.joinpath(*rest[:-1], rest[-1] + ".yaml").resolve()
        except (OSError, RuntimeError, ValueError):
            continue
        if root in path.parents and path.is_file():
            return path, root
    if package == PACKAGE:
        shipped = sorted(p.stem for p in LIBRARIES.glob("*.yaml"))
        close = difflib.get_close_matches("/".join(rest), shipped, n=1)
        hint = f"did you mean {PACKAGE}/{close[0]}?" if close else f"{PACKAGE}/ holds: " + \
            ", ".join(f"{PACKAGE}/{n}" for n in shipped)
        raise SpecError(f"import {ref!r}: archc ships no library {'/'.join(rest)!r} ({hint})", loc)
    raise SpecError(f"import {ref!r}: no library {'/'.join(rest)}.yaml in a folder {package}/ of {where}", loc)
