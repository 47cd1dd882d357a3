"""Probes for the generated CPU forward (tests and benchmarks): called after every step with the value just
computed and the forward's local values. `Checker` checks the memory plan's aliasing on real data; `Meter`
measures the bytes of tensor storage the forward holds."""

from __future__ import annotations

import torch


class Checker:
    """A probe: after each step, every value written so far and still to be read must be what it was when
    written — the memory plan's aliasing, checked on real data."""

    def __init__(self, order: tuple[str, ...], life: dict[str, tuple[int, int]]):
        self.order, self.life, self.kept = order, life, {}

    def __call__(self, step: int, value: torch.Tensor, local_values: dict) -> None:
        n = self.order[step]
        self.kept[n] = (value, value.clone())
        for v, (now, then) in list(self.kept.items()):
            if self.life[v][1] <= step:  # read for the last time: it may be overwritten (in place) now
                del self.kept[v]
            elif not torch.equal(now, then):
                raise AssertionError(f"step {step} ({n}): {v} changed while still to be read "
                                     f"(until step {self.life[v][1]})")


class Meter:
    """A probe: the most bytes of tensor storage the forward holds at once — its arena, held throughout, and
    the storage of every live value (the input included) — read from the live values after every step."""

    def __init__(self):
        self.peak, self.arena = 0, {}

    def attach(self, forward) -> None:
        s = forward.arena.untyped_storage()
        self.arena = {s.data_ptr(): s.nbytes()}

    def __call__(self, step: int, value: torch.Tensor, local_values: dict) -> None:
        storages = dict(self.arena)
        for t in local_values.values():
            if isinstance(t, torch.Tensor):
                s = t.untyped_storage()
                storages[s.data_ptr()] = s.nbytes()
        self.peak = max(self.peak, sum(storages.values()))
