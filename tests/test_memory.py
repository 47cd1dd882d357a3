"""The static memory plan (archc/passes/memory.py): every spec's plan has no aliasing conflict (no value written
over while it still has readers), concatenations hold their inputs in place (DenseNet's blocks are one storage
each), values are written over dying inputs only where allowed, and the checker finds broken plans."""

import dataclasses

import pytest

import archc
from archc.passes import INFERENCE, run
from archc.backends.torch.cpu.memory import ARENA, IDEAL, INPLACE, OWN, SLICE, VIEW_SLOT, Slot, Target, conflicts, plan
from conftest import ROOT, SPECS, spec_id


def inference_graph(spec):
    """The fused graph archc.fuse makes, from a path or a spec's text (pure: no torch)."""
    text = isinstance(spec, str) and "\n" in spec
    a = archc.analyze(archc.loads(spec, "t.yaml") if text else archc.load(spec))
    g = a.graph.copy()
    g.outputs = [o for o in g.outputs if not o.aux]
    for n in reversed(g.order()):
        if g[n].meta["aux"]:
            g.erase(n)
    return run(g, INFERENCE), a


def cpu_target():
    from archc.backends.torch.cpu.forward import target

    return target()


def planned(g, batch=1, target=IDEAL):
    return plan(g, g.meta["schedules"][False], batch, 4, target)


SMALL = "archc: 1\nname: t\ninput: [4, 6, 6]\ngraph:\n"


@pytest.mark.parametrize("path", SPECS + [ROOT / "examples" / "inception_resnet_cifar.yaml"], ids=spec_id)
def test_every_spec_plans_without_conflicts(path):
    g, a = inference_graph(path)
    for target in (IDEAL, cpu_target()):
        for batch in (1, 3):
            p = planned(g, batch, target)
            assert conflicts(g, p) == []
            assert set(p.slots) == set(p.order)
            assert p.arena_bytes <= p.sum_bytes
            # storage is never larger than what it holds, and no arena byte is counted twice at one step
            live_arena = [sum(p.nbytes[s] for s in p.offsets if p.storage_life[s][0] <= t <= p.storage_life[s][1])
                          for t in range(len(p.order))]
            assert max(live_arena, default=0) <= p.arena_bytes
    from archc.backends.torch.cpu.forward import memory_plan

    for batch in (1, 3):  # what the generated forward materialises: its plan, or none where an arena costs more
        p = memory_plan(g, batch)
        assert conflicts(g, p) == []
        assert p.peak_bytes <= a.peak_activations * batch * 4, "planned peak above the static peak"


def test_densenet_blocks_are_one_storage_each_and_concat_copies_nothing():
    g, a = inference_graph("densenet121")
    p = planned(g)
    for block, layers in (("denseblock1", 6), ("denseblock2", 12), ("denseblock3", 24), ("denseblock4", 16)):
        concats = [n for n in p.order if n.startswith(f"features.{block}.~concat")]
        assert len(concats) == layers
        storage = {p.slots[c].storage for c in concats}
        assert storage == {concats[-1]} and p.slots[concats[-1]].kind == ARENA
        assert all(p.slots[c].kind == SLICE and p.slots[c].channel == 0 for c in concats[:-1])  # prefixes
        convs = [n for n in p.order if n.startswith(f"features.{block}.") and n.endswith("conv2")]
        assert [p.slots[c].kind for c in convs] == [SLICE] * layers
        assert not any(c in p.copies for c in concats)
    assert p.slots["features.pool0"] == Slot(SLICE, "features.denseblock1.~concat#6", 0)
    # the 2nd layer's output sits after the block input (64 channels) and the 1st layer's 32
    assert p.slots["features.denseblock1.denselayer2.conv2"].channel == 96
    assert planned(g, target=cpu_target()).peak_bytes < a.peak_activations * 4


def test_cpu_target_copies_what_onednn_allocates_and_adds_residuals_in_place():
    g, _ = inference_graph("googlenet")
    p = planned(g, target=cpu_target())
    members = g.inputs("inception3a.~concat")
    assert all(p.slots[m].kind == SLICE for m in members)
    assert [p.slots[m].channel for m in members] == [0, 64, 192, 224]
    # 3x3 convs run on oneDNN, which allocates their output: copied in once; 1x1 convs, GEMMs, write in place
    assert [p.slots[m].copied for m in members] == [False, True, True, False]
    g, _ = inference_graph("resnet50")
    p = planned(g, target=cpu_target())
    # the residual dies at the add: each block's output is written over it, down the whole stage
    assert p.slots["layer1.0.conv3"] == Slot(INPLACE, "layer1.0.downsample.0")
    assert p.slots["layer1.1.conv3"] == p.slots["layer1.2.conv3"] == Slot(INPLACE, "layer1.0.downsample.0")
    assert p.slots["layer1.0.conv1"].kind == OWN
    assert p.slots["flatten"].kind == VIEW_SLOT and p.slots["fc"].kind == OWN  # the output never in the arena


def test_edge_cases_plan_without_conflicts():
    body = ("  - a: {conv: {out: 4, k: 1}}\n"
            "  - b: {conv: {out: 2, k: 1}, from: input}\n"
            "  - c1: {concat: null, from: [a, b]}\n"
            "  - c2: {concat: null, from: [b, a]}\n"        # a and b in two concats at other positions: copied
            "  - c3: {concat: null, from: [input, c1, c1]}\n"  # the input and a repeated value: copied
            "  - c4: {concat: null, from: [c3, c2]}\n"      # a concat of concats
            "  - s: {add: null, from: [c4, c4]}\n"           # one value twice: never written over
            "  - r: relu\n"
            "  - g: gap\n  - f: flatten\n  - l: {linear: {out: 3}}\n")
    g, _ = inference_graph(SMALL + body)
    for target in (IDEAL, cpu_target()):
        p = planned(g, 2, target)
        assert conflicts(g, p) == []
        assert p.slots["c3"].storage == p.slots["c4"].storage and p.slots["c3"].kind == SLICE
        assert p.slots["s"].kind != INPLACE
        assert {u for u, _ in p.copies["c3"]} == {"input", "c1"}
        assert p.slots["l"].kind == OWN


def test_concat_output_of_the_graph_is_not_in_the_arena():
    g, _ = inference_graph(SMALL + "  - a: {conv: {out: 4, k: 1}}\n  - c: {concat: null, from: [a, input]}\n")
    p = planned(g)
    assert p.slots["c"].kind == OWN and p.slots["a"].kind == ARENA and p.offsets.keys() == {"a"}
    assert conflicts(g, p) == []


def test_checker_finds_values_written_over_while_still_read():
    g, _ = inference_graph("resnet18")
    p = planned(g, target=cpu_target())
    assert conflicts(g, p) == []
    # 1. an op writing its value over an input it reads but that is read again later
    broken = dataclasses.replace(p, slots={**p.slots, "layer1.0.conv1": Slot(INPLACE, "maxpool")})
    assert any("overwrites maxpool" in c for c in conflicts(g, broken))
    # 2. two arena storages alive at once given the same bytes
    ideal = planned(g)
    a, b = "layer1.0.conv1", "layer1.0.conv2"
    assert ideal.offsets[a] != ideal.offsets[b]
    broken = dataclasses.replace(ideal, offsets={**ideal.offsets, b: ideal.offsets[a]})
    assert any("arena bytes" in c for c in conflicts(g, broken))
    # 3. a concat input placed over another's channels
    g, _ = inference_graph("googlenet")
    p = planned(g)
    first, second = g.inputs("inception3a.~concat")[:2]
    broken = dataclasses.replace(p, slots={**p.slots, second: dataclasses.replace(p.slots[second], channel=0)})
    assert any(first in c for c in conflicts(g, broken))


def test_a_target_that_writes_nothing_puts_nothing_in_the_arena():
    g, a = inference_graph("densenet121")
    p = planned(g, target=Target(writes=lambda g, n: False))
    assert p.arena_bytes == 0 and not p.offsets
    assert {s.kind for s in p.slots.values()} <= {OWN, VIEW_SLOT, "input"}
    assert p.peak_bytes == a.peak_activations * 4  # the liveness pass's peak, in bytes, on the fused graph


def test_the_arena_is_left_out_only_where_it_lifts_the_peak():
    """GoogLeNet keeps its concatenations in place (the arena stays under the static peak); U-Net's decoder
    concatenations are not alive at the encoder's peak, so holding them throughout would lift it: no arena."""
    from archc.backends.torch.cpu.forward import memory_plan

    for name, arena in (("googlenet", True), ("unet", False)):
        g, a = inference_graph(name)
        p = memory_plan(g, 1)
        assert (p.arena_bytes > 0) == arena, name
        assert p.peak_bytes <= a.peak_activations * 4
