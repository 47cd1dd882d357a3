"""The analysed graph as Graphviz DOT: one box per op (or per module group with `depth`), labelled with
name, op and output shape; edges follow the data. Render with `dot -Tsvg`."""

from __future__ import annotations

from archc.analysis import Analysis
from archc.ir.ops import INPUT, JOIN, NORM, OPS, WEIGHT

_COLOURS = {WEIGHT: "#dbe9f6", NORM: "#eef3e2", JOIN: "#fde9c9", INPUT: "#eeeeee"}  # by category


def _colour(op: str) -> str:
    return next((c for category, c in _COLOURS.items() if category in OPS[op]), "#ffffff")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(a: Analysis, depth: int | None = None) -> str:
    members = a.groups(depth)
    group = {n.name: key for key, ns in members.items() for n in ns}
    lines = [f"digraph {_quote(a.name)} {{", "  rankdir=TB;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];']
    for key, ns in members.items():
        last = ns[-1]
        op = last.op if len(ns) == 1 else f"{len(ns)} ops"
        shape = "x".join(map(str, last.shape))
        style = ', style="rounded,filled,dashed"' if last.meta["aux"] else ""
        label = _quote(key)[:-1] + r"\n" + _quote(f"{op}  {shape}")[1:]  # two lines in the box
        lines.append(f"  {_quote(key)} [label={label}, fillcolor={_quote(_colour(last.op))}{style}];")
    edges = {(group[i], group[n.name]) for n in a.nodes() for i in a.graph.inputs(n.name)
             if group[i] != group[n.name]}
    lines += [f"  {_quote(u)} -> {_quote(v)};" for u, v in sorted(edges)]
    lines.append("}")
    return "\n".join(lines) + "\n"
