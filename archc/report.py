"""Human-readable renderings of an Analysis: per-layer table, one-line summary, comparison table."""

from __future__ import annotations

from archc.analysis import Analysis


def human(n: float, unit: str = "") -> str:
    for scale, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " K")):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{suffix}{unit}"
    return f"{n:g}{' ' + unit if unit else ''}"


def _shape(shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _rf(a: Analysis) -> str:
    h, w = a.receptive_field["size"]
    return f"{h}" if h == w else f"{h}x{w}"


def table(a: Analysis, depth: int | None = None) -> str:
    """One row per graph node; with `depth`, one row per module path cut to `depth` names (layer1.0),
    summing parameters and MACs, with the output of the group's last node."""
    rows = []
    for key, members in a.groups(depth, with_input=False).items():
        last = members[-1]
        aux = " (aux)" if last.meta["aux"] else ""
        op = last.op if len(members) == 1 else f"{len(members)} ops"
        params = sum(n.meta["params"] for n in members if n.name == n.module)
        macs = sum(n.meta["macs"] for n in members)
        rows.append((key, op + aux, _shape(last.shape), f"{params:,}" if params else "",
                     f"{macs:,}" if macs else ""))
    head = ("layer", "op", "output", "params", "MACs")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]

    def fmt(r):
        return "  ".join(r[i].ljust(widths[i]) if i < 3 else r[i].rjust(widths[i]) for i in range(5)).rstrip()

    lines = [f"{a.name}  ({a.spec.file}, input {_shape(a.input_shape)})", fmt(head),
             "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in rows]
    lines += ["", summary(a, long=True)]
    return "\n".join(lines)


def summary(a: Analysis, long: bool = False) -> str:
    params = f"{a.params:,} params"
    if a.params_without_aux != a.params:
        params += f" ({a.params_without_aux:,} without auxiliary heads)"
    outs = ", ".join(f"{o['name']} {_shape(o['shape'])}" + (" (aux, train only)" if o["aux"] else "")
                     for o in a.outputs)
    if not long:
        return f"{a.name}: {params}, {human(a.macs)}MACs, output {outs}"
    return "\n".join([
        f"params       {params}",
        f"MACs         {a.macs:,} ({human(a.macs)}MACs) per image, conv and linear multiply-accumulates",
        f"activations  {a.activations:,} values per image ({human(4 * a.activations, 'B')} in fp32): "
        "every op output of one inference forward pass, input included, views excluded",
        f"peak memory  {a.peak_activations:,} values alive at once ({human(4 * a.peak_activations, 'B')} in fp32), "
        "freeing each value after its last use",
        f"depth        {a.depth} weight layers (conv, linear) on the longest path",
        f"receptive    {_rf(a)} px at the output (jump {a.receptive_field['jump'][0]})",
        f"outputs      {outs}",
    ])


def comparison(analyses: list[Analysis]) -> str:
    head = ("name", "depth", "params", "MACs", "activations", "peak", "MACs/param", "output", "top-1")
    rows = [(a.name, str(a.depth), human(a.params_without_aux), human(a.macs), human(4 * a.activations, "B"),
             human(4 * a.peak_activations, "B"), f"{a.macs / max(a.params_without_aux, 1):.1f}",
             _shape(a.outputs[0]["shape"]), f"{a.published['top1']:g}" if a.published else "")
            for a in analyses]
    if not any(a.published for a in analyses):
        head, rows = head[:-1], [r[:-1] for r in rows]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def fmt(r):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    return "\n".join([fmt(head), "  ".join("-" * w for w in widths), *map(fmt, rows),
                      "", "depth: weight layers on the longest path; params exclude auxiliary heads; activations: fp32 "
                      "bytes of all op outputs of one image's forward pass; peak: most of them alive at once"
                      + ("; top-1: published accuracy (the spec's `published:`), %" if len(head) == 9 else "")])
