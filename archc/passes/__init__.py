"""Passes: small named functions over the Graph, in a registry; pipelines are lists of names.

Each pass takes the graph, changes or annotates it in place (results go to `node.meta` and `graph.meta`),
and must leave it valid: with `VERIFY_BETWEEN` (the tests set it) `verify` runs after every pass.
"""

from __future__ import annotations

from collections.abc import Callable

from archc.errors import SpecError
from archc.ir.graph import Graph

PASSES: dict[str, Callable[[Graph], None]] = {}
VERIFY_BETWEEN = False


def register(name: str):
    def deco(fn):
        PASSES[name] = fn
        return fn

    return deco


def run(g: Graph, pipeline: list[str] | str) -> Graph:
    names = [n.strip() for n in (pipeline.split(",") if isinstance(pipeline, str) else pipeline)]
    unknown = [n for n in names if n not in PASSES]
    if unknown:
        raise SpecError(f"unknown pass {unknown[0]!r} (passes: {', '.join(PASSES)})")
    for name in names:
        PASSES[name](g)
        if VERIFY_BETWEEN:
            PASSES["verify"](g)
    return g


from archc.passes import costs, fuse, lint, liveness, receptive_field, structure  # noqa: E402,F401

ANALYSIS = ["schedule_drop_path", "verify", "mark_aux", "lint_windows", "costs", "receptive_field", "liveness",
            "limits"]
"""Static analysis: every figure is known from the graph before any tensor exists, and checked against the limits."""

INFERENCE = ["strip_eval_identities", "fuse_conv_bn_act", "verify", "liveness"]
"""Eval-mode rewriting for the fused inference module (run on a copy of an analysed graph without aux heads)."""
