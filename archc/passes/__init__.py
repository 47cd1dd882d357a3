"""Passes: small named functions over the graph, in a registry; pipelines are lists of names.

Each pass takes the graph, changes or annotates it in place, and must leave it valid.
"""

from __future__ import annotations

from typing import Callable

import networkx as nx

from archc.errors import SpecError

PASSES: dict[str, Callable[[nx.DiGraph], None]] = {}


def register(name: str):
    def deco(fn):
        PASSES[name] = fn
        return fn

    return deco


def run(g: nx.DiGraph, pipeline: list[str] | str) -> nx.DiGraph:
    names = pipeline.split(",") if isinstance(pipeline, str) else pipeline
    unknown = [n for n in names if n.strip() not in PASSES]
    if unknown:
        raise SpecError(f"unknown pass {unknown[0]!r} (passes: {', '.join(PASSES)})")
    for name in names:
        PASSES[name.strip()](g)
    return g


from archc.passes import analysis  # noqa: E402,F401  (registers the analysis passes)

ANALYSIS = ["schedule_drop_path", "verify", "mark_aux", "costs", "receptive_field"]
