"""The analysed graph as Graphviz DOT: one box per op (or per module group with `depth`), labelled with
name, op and output shape; edges follow the data. Render with `dot -Tsvg`."""

from __future__ import annotations

from archc.analysis import Analysis

_COLOURS = {"conv": "#dbe9f6", "conv_bn_act": "#dbe9f6", "linear": "#dbe9f6", "bn": "#eef3e2",
            "concat": "#fde9c9", "add": "#fde9c9", "mean": "#fde9c9", "input": "#eeeeee"}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(a: Analysis, depth: int | None = None) -> str:
    def group(n: str) -> str:
        return ".".join(n.split(".")[:depth]) if depth else n

    members: dict[str, list] = {}
    for n, d in a.nodes():
        members.setdefault(group(n), []).append(d)
    lines = [f"digraph {_quote(a.name)} {{", "  rankdir=TB;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];']
    for key, ds in members.items():
        last = ds[-1]
        op = last["op"] if len(ds) == 1 else f"{len(ds)} ops"
        shape = "x".join(map(str, last["shape"]))
        style = ', style="rounded,filled,dashed"' if last["aux"] else ""
        label = _quote(key)[:-1] + r"\n" + _quote(f"{op}  {shape}")[1:]  # two lines in the box
        lines.append(f"  {_quote(key)} [label={label}, "
                     f"fillcolor={_quote(_COLOURS.get(last['op'], '#ffffff'))}{style}];")
    edges = {(group(i), group(n)) for n, d in a.nodes() for i in d["inputs"] if group(i) != group(n)}
    lines += [f"  {_quote(u)} -> {_quote(v)};" for u, v in sorted(edges)]
    lines.append("}")
    return "\n".join(lines) + "\n"
