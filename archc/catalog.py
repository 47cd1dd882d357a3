"""The zoo's catalogue: every network archc ships, by the name you type (`archc list`; docs/zoo.md is
`archc list --format markdown`, kept equal by a test).

Figures are the ones each spec declares and every analysis checks (`expect:` params and MACs, `published:`
accuracy), so listing reads the specs and builds nothing.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import asdict, dataclass

from archc.spec import zoo


@dataclass(frozen=True)
class Network:
    name: str  # what `archc compile NAME` takes
    spec: str  # the spec file's stem
    variant: str | None
    params: int
    macs: int
    top1: float | None
    top5: float | None
    dataset: str | None
    torchvision: str | None
    weights: str | None  # the torchvision weights the published figure is for


@dataclass(frozen=True)
class Family:
    """A spec file of the zoo and the networks it describes (one, or one per variant)."""

    name: str
    file: str
    description: str
    source: str  # the spec's `source:` to its first year: the paper (or the code) it follows
    default: str  # the network built when no variant is named
    networks: tuple[Network, ...]

    def to_dict(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "networks"},
                "networks": [asdict(n) for n in self.networks]}


def families() -> list[Family]:
    import archc

    out = []
    for path in zoo.specs():
        spec = archc.load(path)
        networks = []
        for variant in spec.variants or [None]:
            one = spec.with_params({"variant": variant}) if variant else spec
            figures, _ = one.expect
            published = one.published
            networks.append(Network(one.name, path.stem, variant, figures["params"], figures["macs"],
                                    published and published.top1, published and published.top5,
                                    published and published.dataset, one.torchvision,
                                    published and published.weights))
        about = spec.document.about
        out.append(Family(path.stem, f"archc/zoo/{path.name}", about.description or "", _short(about.source or ""),
                          spec.name, tuple(networks)))
    return out


def _short(source: str) -> str:
    """A source as a citation: up to its first year ("He et al. 2016")."""
    m = re.match(r"[^;]*?\b(19|20)\d\d\b", source)
    return m.group(0) if m else source.split(";")[0][:60]


def _span(values, fmt) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return ""
    lo, hi = min(values), max(values)
    return fmt(lo) if lo == hi else f"{fmt(lo)}-{fmt(hi)}"


def _si(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:g}"


def _cells(f: Family) -> dict:
    nets = f.networks
    return {"name": f.name, "variants": " ".join(n.name for n in nets) if f.networks[0].variant else "",
            "params": _span([n.params for n in nets], _si), "MACs": _span([n.macs for n in nets], _si),
            "top-1": _span([n.top1 for n in nets], lambda v: f"{v:g}"), "source": f.source}


def text(fams: list[Family]) -> str:
    """One row per spec: its name, the names of its variants' networks (each a name `archc compile` takes),
    parameters, MACs and published top-1 (ranges over the variants), and the source it follows."""
    rows = [_cells(f) for f in fams]
    cols = list(rows[0])
    wrap = 44
    widths = {c: max(len(c), *(len(r[c]) if c != "variants" else min(len(r[c]), wrap) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(widths[c]) for c in cols).rstrip(), "  ".join("-" * widths[c] for c in cols)]
    for r in rows:
        parts = textwrap.wrap(r["variants"], wrap) or [""]
        lines.append("  ".join((parts[0] if c == "variants" else r[c]).ljust(widths[c]) for c in cols).rstrip())
        lines += ["  ".join((p if c == "variants" else "").ljust(widths[c]) for c in cols).rstrip() for p in parts[1:]]
    total = sum(len(f.networks) for f in fams)
    lines.append(f"\n{len(fams)} specs, {total} networks: `archc compile NAME` takes a spec's name or a variant's; "
                 "top-1: published ImageNet-1k (or CIFAR-10) accuracy, %")
    return "\n".join(lines)


def markdown(fams: list[Family]) -> str:
    """The zoo as docs/zoo.md shows it: one row per spec, its variants' networks with their own figures."""
    out = ["| name | architecture | params | MACs | top-1 | source |", "|---|---|---:|---:|---:|---|"]
    for f in fams:
        c = _cells(f)
        if not f.networks[0].variant:  # one network: its own figures
            c["params"] = f"{f.networks[0].params:,}"
        out.append(f"| `{f.name}` | {f.description} | {c['params']} | {c['MACs']} | {c['top-1']} | {f.source} |")
        if f.networks[0].variant:
            for n in f.networks:
                top1 = f"{n.top1:g}" if n.top1 is not None else ""
                out.append(f"| &nbsp;&nbsp;`{n.name}` | variant `{n.variant}`"
                           + (f", torchvision `{n.torchvision}`" if n.torchvision else "")
                           + f" | {n.params:,} | {_si(n.macs)} | {top1} | |")
    return "\n".join(out)


def as_json(fams: list[Family]) -> str:
    return json.dumps([f.to_dict() for f in fams], indent=1)


BEGIN = "<!-- archc list --format markdown: begin (generated; python -m archc.catalog docs/zoo.md) -->"
END = "<!-- archc list --format markdown: end -->"


def replace_table(text: str, table: str) -> str:
    """`text` with what stands between BEGIN and END replaced by `table`."""
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{table}\n{END}{tail}"


if __name__ == "__main__":  # python -m archc.catalog docs/zoo.md: regenerate the table in that file
    import sys
    from pathlib import Path

    target = Path(sys.argv[1])
    from archc import files

    files.write_text(target, replace_table(target.read_text(), markdown(families())))
