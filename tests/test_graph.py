"""The typed graph and the passes over it: inputs read from the edges, graph surgery, lint between passes,
one liveness schedule for the executor and the peak figure, exact receptive-field arithmetic."""

from fractions import Fraction

import pytest
import torch

import archc
from archc.passes.structure import UNUSED
from archc import passes
from archc.ir.graph import Graph, GraphError, Node, Output
from archc.ir.ops import Window
from archc.passes.liveness import peak
from archc.passes.receptive_field import PIXEL, through


def analyze(body: str, input_=(4, 8, 8)):
    return archc.analyze(archc.loads(f"archc: 1\nname: t\ninput: {list(input_)}\ngraph:\n{body}", "t.yaml"))


def small() -> Graph:
    g = Graph("g", "g.yaml")
    g.add(Node("input", "input", {"shape": (2,)}, "input", None, (2,)), [])
    g.add(Node("a", "relu", {}, "a", None, (2,)), ["input"])
    g.add(Node("b", "add", {}, "b", None, (2,)), ["a", "input"])
    g.outputs.append(Output("out", "b", False))
    return g


def test_inputs_come_from_the_edges_in_order_and_may_repeat():
    a = analyze("  - a: {conv: {out: 4, k: 1}}\n  - s: {add: null, from: [a, a, input]}\n")
    assert a.graph.inputs("s") == ["a", "a", "input"]
    assert a.graph.uses("a") == [("s", 0), ("s", 1)] and a.graph.users("a") == ["s"]
    m = archc.build(a).eval()
    x = torch.randn(1, 4, 8, 8)
    torch.testing.assert_close(m(x), 2 * m.a(x) + x)


def test_surgery_keeps_positions_and_outputs():
    g = small()
    g.add(Node("c", "identity", {}, "c", None, (2,)), ["a"])
    g.replace_all_uses("a", "c")
    assert g.inputs("b") == ["c", "input"] and g.users("a") == ["c"]
    g.replace_all_uses("b", "c")
    assert g.outputs[0].node == "c"
    with pytest.raises(GraphError, match="still read"):
        g.erase("a")
    g.erase("b")
    assert g.order() == ["input", "a", "c"]
    g.lint()


@pytest.mark.parametrize("breakage,words", [
    (lambda g: g.nx.add_edge("b", "a", key=1), "cycle"),
    (lambda g: g.set_inputs("a", ["input", "input"]), "relu takes"),
    (lambda g: g.nx.remove_edge("a", "b", key=0), "input positions"),
    (lambda g: setattr(g.outputs[0], "node", "gone"), "missing"),
])
def test_lint_finds_broken_invariants(breakage, words):
    g = small()
    g.lint()
    breakage(g)
    with pytest.raises(GraphError, match=words):
        g.lint()


def test_a_pass_that_breaks_the_graph_is_caught_between_passes(monkeypatch):
    assert passes.VERIFY_BETWEEN, "the tests lint the graph after every pass"
    monkeypatch.setitem(passes.PASSES, "break", lambda g: g.nx.remove_edge("a", "b", key=0))
    with pytest.raises(GraphError):
        passes.run(small(), ["break"])


def test_verify_reports_where_an_unused_chain_starts():
    with pytest.raises(archc.SpecError) as e:
        analyze("  - a: {conv: {out: 4, k: 1}}\n  - b: relu\n  - c: relu\n  - d: {relu: null, from: a}\n")
    assert [(x.path, x.message) for x in e.value.errors] == [("b", UNUSED)]


def test_the_executor_frees_values_as_the_liveness_schedule_says():
    a = analyze("  - a: {conv: {out: 4, k: 1}}\n  - b: {conv: {out: 4, k: 1}}\n  - c: {conv: {out: 4, k: 1}}\n"
                "  - s: {add: null, from: [a, c]}\n  - f: flatten\n  - fc: {linear: {out: 3}}\n")
    s = a.graph.meta["schedules"][False]
    assert s.order == ("input", "a", "b", "c", "s", "f", "fc")
    assert s.dead == ((), (), (), ("b",), ("a", "c"), ("s",), ("f",))  # flatten aliases s: both die
    steps, outputs, *_ = archc.build(a)._plans[False]
    slot = {n: i for i, n in enumerate(a.graph.order())}
    assert [sorted(free) for *_, free in steps] == [sorted(slot[d] for d in dead) for dead in s.dead[1:]]
    hw = 8 * 8
    assert peak(a.graph, s) == a.peak_activations == 4 * hw + 3 * 4 * hw  # a, b, c and the input


def test_receptive_field_arithmetic_is_exact():
    rf = through(through(PIXEL, Window((3, 3), (2, 2))), Window((3, 3), (1, 1), pad=(1, 1)))
    assert (rf.size, rf.jump, rf.start) == ((7, 7), (2, 2), (Fraction(3, 2), Fraction(3, 2)))
    up = through(rf, Window((1, 1), (Fraction(1, 2), Fraction(1, 2))))  # upsampling by 2
    assert up.jump == (1, 1) and up.to_dict()["jump"] == [1, 1]
    assert through(PIXEL, Window((1, 1), (Fraction(1, 4),) * 2)).to_dict()["jump"] == [0.25, 0.25]
