"""`archc view`: the analysed graph as one self-contained HTML page (Netscope-style), no network at view time.

The page embeds the graph's figures as JSON, its script and style, and the vendored layout library
(vendor/dagre.min.js, MIT, see vendor/LICENSE). In the browser: nodes grouped by module path, each group
collapsible; edges labelled with shapes; each node's op, arguments, params, MACs, receptive field and spec
file:line; the totals; search by name. `archc view -o x.png` screenshots the page in headless Chromium
(headless.py).
"""

from __future__ import annotations

import difflib
import json
import re
from importlib import resources

from archc.analysis import Analysis
from archc.errors import SpecError
from archc.ir.ops import OPS
from archc.passes.outputs import groups
from archc.spec.kinds import REQUIRED

# Colour keys, by category, first match wins (view.css colours them); the key of an op with none is "other".
CATEGORIES = ("input", "weight", "norm", "activation", "join", "view", "eval_identity")


def category(op: str) -> str:
    return next((c for c in CATEGORIES if c in OPS[op]), "pool" if OPS[op].window else "other")


def args_text(op: str, attrs: dict) -> str:
    """The arguments that differ from their defaults, compactly: `out=64 k=7 stride=2 pad=3`."""
    parts = []
    for key, value in attrs.items() if "input" not in OPS[op] else ():
        arg = OPS[op].args.get(key)
        if value is None or arg is not None and arg.default is not REQUIRED and value == arg.default:
            continue
        if isinstance(value, (list, tuple)):
            flat = all(not isinstance(x, (list, tuple)) for x in value)
            value = "x".join(map(str, value)) if flat and len(value) <= 4 else f"[{len(value)} rows]"
        elif isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, float):
            value = f"{value:g}"
        parts.append(f"{key}={value}")
    return " ".join(parts)


def data(a: Analysis, depth: int | None = None, select: str | None = None) -> dict:
    """Everything the page shows, as JSON-ready data. `select`: a node or group shown and selected at first."""
    g = a.graph
    if select is not None and select not in g and select not in groups(g):
        close = difflib.get_close_matches(select, [*g, *groups(g)], n=1)
        raise SpecError(f"--select: {a.name} has no node or module group {select!r}"
                        + (f" (did you mean {close[0]!r}?)" if close else ""))
    totals = {k: v for k, v in a.to_dict().items() if k not in ("layers", "warnings")}
    nodes = []
    for row, n in zip(a.layers(), a.nodes()):
        loc = f"{n.loc.file}:{n.loc.line}:{n.loc.col}" if n.loc else ""
        nodes.append({"name": n.name, "op": n.op, "module": n.module, "cat": category(n.op),
                      "args": args_text(n.op, n.attrs), "attrs": row["attrs"], "inputs": row["inputs"],
                      "shape": row["shape"], "params": row["params"], "macs": row["macs"],
                      "activations": row["activations"], "aux": row["aux"], "rf": row["receptive_field"],
                      "loc": loc, "doc": OPS[n.op].doc})
    return {"name": a.name, "file": a.spec.file, "source": a.spec.about.source or "",
            "overrides": dict(a.spec.overrides), "totals": totals, "warnings": [str(w) for w in a.warnings],
            "outputs": [{"name": o.name, "node": o.node, "aux": o.aux} for o in g.outputs],
            "nodes": nodes, "depth": depth, "select": select}


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _inline(text: str) -> str:
    """Script text inlined in a <script> element: it must not close the element or open an HTML comment."""
    if "</" in text or "<!--" in text:
        raise ValueError("script text would end its <script> element")
    return text


def page(a: Analysis, depth: int | None = None, select: str | None = None) -> str:
    """The HTML page: one file, nothing fetched. `depth`: groups open to that many names (default: groups of
    groups open while the first view stays small); `select`: a node or group shown and selected at first (the
    page also takes one as its URL's #fragment)."""
    payload = json.dumps(data(a, depth, select), separators=(",", ":")).replace("<", "\\u003c")  # JSON stays JSON
    title = f"{a.name} — archc view".replace("&", "&amp;").replace("<", "&lt;")
    slots = {"TITLE": title, "STYLE": _asset("view.css"), "DATA": payload,
             "LIBRARY": _inline(_asset("vendor/dagre.min.js")),
             "SCRIPT": _inline(_asset("view.js"))}
    return re.sub(r"/\*(TITLE|STYLE|DATA|LIBRARY|SCRIPT)\*/", lambda m: slots[m.group(1)], _asset("page.html"))
