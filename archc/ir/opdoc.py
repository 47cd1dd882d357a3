"""docs/ops.md, generated from the op table: every op a spec can write, its arguments (kind, default, meaning), its
inputs, whether its multiply-accumulates are counted, its receptive field and its categories.

`python tools/ops_doc.py > docs/ops.md` regenerates the file; a test keeps the committed one equal to `markdown()`.
"""

from __future__ import annotations

from archc.ir import ops as table
from archc.spec.kinds import REQUIRED, Bool, Choice, List, Number, Pair, Str

HEADER = """# Ops

<!-- Generated from the op table (archc/ir/ops.py) by `python tools/ops_doc.py > docs/ops.md`; a test keeps this file
equal to the generator's output. Edit the table, not this file. -->

Every op a spec can write, in the op table's order. Shapes are per sample, without the batch: `[C, H, W]` or `[F]`.
An argument written as a string is an expression (docs/language.md, *Expressions*) where its kind says so. MACs are
multiply-accumulates of one image's inference forward pass: archc counts a conv's, a linear layer's and an RBF
unit's; every other op's are **not counted** (0), as the literature's MAC figures leave out elementwise arithmetic,
normalisation, pooling and data movement. An op's receptive field is its window (a conv's, a pooling's, the whole
map for a global pooling) or, without one, pointwise: each output pixel reads the same pixel of its inputs.
Plugins add ops of their own (docs/extending.md).

"""


def kind_text(kind) -> str:
    """What a value of an argument kind is, in words."""
    match kind:
        case Number():
            text = kind.what
            if kind.lo is not None:
                text += f" ≥ {kind.lo:g}"
            if kind.hi is not None:
                text += f" and < {kind.hi:g}"
            return text + (" or an expression" if kind.expr else "")
        case Pair():
            return f"{kind_text(kind.of).removesuffix(' or an expression')}, or [h, w]"
        case Choice():
            options = [f"`{o}`" for o in kind.options]
            return " or ".join([", ".join(options[:-1]), options[-1]] if len(options) > 1 else options)
        case List():
            size = f"{kind.min} or more" if kind.min else "any number of"
            return f"a list of {size} values, each {kind_text(kind.of)}" + ("; or an expression giving one" * kind.expr)
        case Bool():
            return "true or false" + (" or an expression" if kind.expr else "")
        case Str():
            return kind.what
    return getattr(kind, "what", type(kind).__name__)


def default_text(default) -> str:
    if default is REQUIRED:
        return "required"
    if default is None:
        return "none"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    return f"`{default:g}`" if isinstance(default, float) else f"`{default}`"


def _inputs(op: table.Op) -> str:
    if op.arity is None:
        return "one or more (a join: `from: [a, b, ...]`)"
    return {0: "none", 1: "one", 2: "two (`from: [a, b]`)"}.get(op.arity, str(op.arity))


def op_markdown(op: table.Op) -> str:
    lines = [f"## `{op.name}`", "", op.doc, ""]
    if op.args:
        lines += ["| argument | kind | default | meaning |", "|---|---|---|---|"]
        lines += [f"| `{name}` | {kind_text(a.kind)} | {default_text(a.default)} | {a.doc} |"
                  for name, a in op.args.items()]
        lines.append("")
    macs = "counted" if op.macs is not table._none else "not counted"
    params = "yes" if op.params is not table._none else "none"
    field = "its window (pointwise where its arguments give none)" if op.window is not None else "pointwise"
    categories = ", ".join(sorted(op.categories)) or "none"
    lines += [f"Inputs: {_inputs(op)}. Parameters: {params}. MACs: {macs}. Receptive field: {field}. "
              f"Categories: {categories}.", ""]
    return "\n".join(lines)


def markdown() -> str:
    """docs/ops.md: archc's own ops that a spec can write (not plugins', not internal ones)."""
    ops = [table.OPS[name] for name in table.BUILTIN if table.INTERNAL not in table.OPS[name]]
    index = " · ".join(f"[`{op.name}`](#{op.name})" for op in ops)
    return HEADER + index + "\n\n" + "\n".join(op_markdown(op) for op in ops)
