"""How much work and memory a spec may cost: past a limit, archc stops with a located LimitError (exit 2), before
the work is done or the memory allocated.

`Limits` holds the limits a user may raise (`--limit NAME=N` on the command line, `limits={"NAME": N}` in the API:
archc.load/loads/analyze/validate/build, archc.checkpoint.load). The fixed ones below keep the reader's, the schema
check's and the expander's recursion within Python's stack, or belong to the language; they are not options.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from archc.errors import SpecError

YAML_DEPTH = 40  # collections nested in one YAML document (the deepest spec shipped nests 11)
ITEM_DEPTH = 100  # items nested while expanding, through lists, constructs and block calls
IMPORT_DEPTH = 8  # libraries importing libraries


@dataclass(frozen=True)
class Limits:
    """The limits a user may raise, with their defaults."""

    bytes: int = 1 << 20  # a spec file and its libraries together (an embedded checkpoint spec alike)
    yaml_nodes: int = 200_000  # YAML values of the spec and its libraries, aliases expanded
    nodes: int = 100_000  # graph nodes after expansion
    steps: int = 500_000  # expansion work: items expanded (those `when:` leaves out too), node inputs, table entries
    repeat: int = 10_000  # a repeat's count, a dense block's layers
    params: int = 1_000_000_000  # parameters and buffers the module allocates (4 GB in fp32)
    activations: int = 1_000_000_000  # values one sample's forward pass holds at once (its peak)

    DOC = {
        "bytes": "bytes of a spec and its libraries together",
        "yaml_nodes": "YAML values of a spec and its libraries, aliases expanded",
        "nodes": "graph nodes after expansion",
        "steps": "expansion steps: items expanded (also those `when:` leaves out), node inputs, table entries",
        "repeat": "a repeat's count and a dense block's layers",
        "params": "parameters and buffers of the built module",
        "activations": "values one sample's forward pass holds at once (its peak)",
    }

    @classmethod
    def of(cls, value: Limits | dict | None) -> Limits:
        """Limits from None (the defaults), a Limits, or a mapping of names to numbers (the others default)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            raise SpecError(f"limits must be a mapping of names to numbers, got {type(value).__name__}")
        return cls().raised(value)

    def raised(self, changes: dict) -> Limits:
        """These limits with some changed: each a positive whole number (5e9 is 5,000,000,000)."""
        names = [f.name for f in dataclasses.fields(self)]
        out = {}
        for name, v in changes.items():
            if name not in names:
                raise SpecError(f"unknown limit {name!r} (limits: {', '.join(names)})")
            if isinstance(v, str):
                v = _number(v)
            if isinstance(v, float) and v.is_integer() and 0 < v < 2**63:
                v = int(v)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise SpecError(f"limit {name} must be a positive whole number, got {v!r}")
            out[name] = v
        return dataclasses.replace(self, **out)

    def exceeded(self, name: str) -> str:
        """What to say after a message about passing limit `name`."""
        return f"(the {name} limit is {getattr(self, name):,}: raise it with --limit {name}=N)"


def _number(text: str):
    try:
        return int(text.replace("_", ""))
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text
