"""Each topology construct of the spec language, on small specs: structure, names, shapes, figures."""

import pytest
import torch

import archc


def analyze(body: str, input_=(8, 16, 16), **params):
    head = f"archc: 1\nname: t\ninput: {list(input_)}\n"
    return archc.analyze(archc.loads(head + body, "t.yaml", **params))


def ops(a, op):
    return [n.name for n in a.nodes() if n.op == op]


def names(a):
    return [n.name for n in a.nodes()]


def test_receptive_field_of_stacked_3x3_is_7():
    a = analyze("graph:\n  - {repeat: 3, body: [{conv: {out: 8, k: 3, pad: 1}}, relu]}\n")
    assert a.receptive_field["size"] == [7, 7]
    assert names(a)[1:] == [str(i) for i in range(6)]  # spliced, numbered like a flat list


def test_receptive_field_with_stride():
    a = analyze("graph:\n  - {conv: {out: 8, k: 3, stride: 2}}\n  - {conv: {out: 8, k: 3}}\n")
    assert a.receptive_field == {"size": [7, 7], "jump": [2, 2], "start": [3.5, 3.5]}


@pytest.mark.parametrize("size,warns", [(224, True), (227, False)])
def test_non_integral_conv_warns_with_numbers(size, warns):
    a = analyze("graph:\n  - conv1: {conv: {out: 96, k: 11, stride: 4}}\n", input_=(3, size, size))
    assert a.nodes()[-1].shape == (96, 54 if size == 224 else 55, 54 if size == 224 else 55)
    if warns:
        (w,) = a.warnings
        assert "(224 + 2*0 - 11) / 4 + 1 = 54.25" in w.message and w.path == "conv1" and w.loc.line == 5
    else:
        assert not a.warnings


def test_dense_block_concatenates_all_previous():
    a = analyze("graph:\n  - d: {dense: {layers: 3, body: [{conv: {out: 4, k: 3, pad: 1}}], names: 'layer{i + 1}'}}\n")
    g = a.graph
    convs = ops(a, "conv")
    assert convs == ["d.layer1.0", "d.layer2.0", "d.layer3.0"]
    assert [g[c].attrs["out"] for c in convs] == [4, 4, 4]
    assert [g[g.inputs(c)[0]].shape[0] for c in convs] == [8, 12, 16]
    assert a.outputs[0]["shape"] == [20, 16, 16]


@pytest.mark.parametrize("columns", [1, 2, 3, 4])
def test_fractal_expansion(columns):
    a = analyze(f"graph:\n  - f: {{fractal: {{columns: {columns}, body: [{{conv: {{out: 8, k: 3, pad: 1}}}}],"
                " drop_path: 0.15}}\n")
    convs = ops(a, "conv")
    assert len(convs) == 2 ** columns - 1
    for c in range(1, columns + 1):  # column c holds 2^(c-1) layers
        assert sum(n.startswith(f"f.col{c}.") for n in convs) == 2 ** (c - 1)
    joins = ops(a, "mean")
    if columns > 1:
        assert len(a.graph.inputs(joins[-1])) == columns  # joins at the same depth are merged
        assert a.graph[joins[-1]].attrs["drop_path"] == 0.15
        depth = {}
        for n in a.nodes():  # the longest path passes through every layer of the deepest column
            depth[n.name] = max([depth[i] for i in a.graph.inputs(n.name)], default=0) + (n.op == "conv")
        assert depth[joins[-1]] == 2 ** (columns - 1)


def test_stochastic_depth_linear_decay():
    body = ("blocks:\n  b:\n    residual:\n      body: [{conv: {out: 8, k: 3, pad: 1}}]\n"
            "      drop_path: {linear: 0.5}\n"
            "graph:\n  - layer: {repeat: 4, block: b}\n")
    a = analyze(body)
    ps = [a.graph[n].attrs["p"] for n in ops(a, "drop_path")]
    assert ps == [0.125, 0.25, 0.375, 0.5]
    m = archc.build(a)
    m.eval()
    x = torch.randn(2, 8, 16, 16)
    assert torch.equal(m(x), m(x)), "no randomness at test time"


def test_residual_auto_projection_only_when_shapes_differ():
    body = ("blocks:\n  b:\n    args: {out: int, stride: 1}\n    residual:\n"
            "      body: [conv1: {conv: {out: out, k: 3, stride: stride, pad: 1}}]\n"
            "      shortcut: {auto: downsample}\n      post: {relu: relu}\n"
            "graph:\n  - l: {repeat: 2, block: b, with: {out: 16, stride: '2 if i == 0 else 1'}}\n")
    a = analyze(body)
    assert "l.0.downsample.0" in names(a) and "l.0.downsample.1" in names(a)
    assert not any(n.startswith("l.1.downsample") for n in names(a))
    ds = a.graph["l.0.downsample.0"]
    assert (ds.op, ds.attrs["k"], ds.attrs["stride"], ds.shape) == ("conv", 1, 2, (16, 8, 8))


def test_aux_outputs_only_in_training():
    body = ("graph:\n  - c: {conv: {out: 4, k: 3}}\n  - head: {aux: [gap, flatten, {linear: {out: 3}}]}\n"
            "  - pool: gap\n  - flat: flatten\n  - fc: {linear: {out: 5}}\n")
    a = analyze(body)
    assert [(o["name"], o["aux"]) for o in a.outputs] == [("out", False), ("head", True)]
    assert a.params == a.params_without_aux + 4 * 3 + 3
    m = archc.build(a)
    x = torch.randn(2, 8, 16, 16)
    out, aux = m.train()(x)
    assert out.shape == (2, 5) and aux.shape == (2, 3)
    assert m.eval()(x).shape == (2, 5)


def test_from_and_when():
    body = ("params: {extra: false}\n"
            "graph:\n  - a: {conv: {out: 8, k: 3, pad: 1}}\n  - b: {conv: {out: 8, k: 1}}\n"
            "  - c: {conv: {out: 8, k: 1}, when: extra}\n"
            "  - s: {add: null, from: [a, b, input]}\n")
    a = analyze(body)
    assert a.graph.inputs("s") == ["a", "b", "input"]
    assert "c" not in a.graph
    with pytest.raises(archc.SpecError, match="feeds no output"):
        analyze(body, extra=True)


def test_branches_joins_and_transparency():
    body = ("graph:\n  - squeeze: {conv: {out: 4, k: 1}}\n"
            "  - {branches: [[e1: {conv: {out: 6, k: 1}}, e1_act: relu], [e3: {conv: {out: 6, k: 3, pad: 1}}]]}\n")
    a = analyze(body)
    assert {"e1", "e1_act", "e3"} <= set(a.graph)  # anonymous branches put names in the enclosing scope
    assert a.outputs[0]["shape"] == [12, 16, 16]
    for join, c in [("add", 6), ("mean", 6)]:
        b = analyze(f"graph:\n  - j: {{branches: {{x: {{conv: {{out: 6, k: 1}}}}, y: {{conv: {{out: 6, k: 1}}}}}}, "
                    f"join: {join}}}\n")
        assert b.outputs[0]["shape"] == [c, 16, 16] and ops(b, join) == [f"j.~{join}"]


def test_block_with_named_content_is_indexed_in_a_sequence():
    body = ("blocks:\n  basic:\n    seq: [conv: {conv: {out: 4, k: 1}}, bn: bn]\n"
            "graph:\n  - branch: [{block: basic}, {maxpool: {k: 3, stride: 1, pad: 1}}, {block: basic}]\n")
    a = analyze(body)
    assert [n.name for n in a.nodes() if n.meta["params"]] == ["branch.0.conv", "branch.0.bn", "branch.2.conv",
                                                        "branch.2.bn"]


def test_shared_parameter_free_name_is_one_module():
    a = analyze("graph:\n  - c1: {conv: {out: 4, k: 1}}\n  - relu: relu\n  - c2: {conv: {out: 4, k: 1}}\n"
                "  - relu: relu\n")
    assert ops(a, "relu") == ["relu", "relu#2"]
    m = archc.build(a)
    assert m.node_modules()["relu"] is m.node_modules()["relu#2"] is m.relu


def test_parameter_override_changes_the_model():
    body = "params: {classes: 10}\ngraph:\n  - gap\n  - flatten\n  - fc: {linear: {out: classes}}\n"
    assert analyze(body).outputs[0]["shape"] == [10]
    assert analyze(body, classes=7).outputs[0]["shape"] == [7]
    with pytest.raises(archc.SpecError, match="does not fit"):
        analyze(body, classes=1.5)


def test_mean_drop_path_keeps_one_input_and_averages_survivors():
    from archc.backends.torch.layers import Mean

    torch.manual_seed(0)
    m = Mean(drop_path=0.9).train()
    xs = [torch.full((64, 1, 2, 2), float(v)) for v in (1, 2, 4)]
    out = m(*xs)
    per_sample = out[:, 0, 0, 0]
    possible = {1.0, 2.0, 4.0, 1.5, 2.5, 3.0, 7 / 3}
    assert all(any(abs(v - p) < 1e-6 for p in possible) for v in per_sample.tolist())
    assert torch.equal(Mean(0.9).eval()(*xs), torch.full((64, 1, 2, 2), 7 / 3))


def test_drop_path_module():
    from archc.backends.torch.layers import DropPath

    torch.manual_seed(0)
    x = torch.ones(1000, 3)
    out = DropPath(0.25).train()(x)
    assert torch.all((out[:, 0] == 0) | torch.isclose(out[:, 0], torch.tensor(1 / 0.75)))
    assert abs((out[:, 0] == 0).float().mean().item() - 0.25) < 0.05
    assert torch.equal(DropPath(0.25).eval()(x), x)


def test_modifiers_apply_outside_sequences():
    body = ("blocks:\n  b:\n    args: {out: int}\n    residual:\n"
            "      body: [bn1: bn, relu1: relu, conv1: {conv: {out: out, k: 3, pad: 1}}]\n"
            "      shortcut: {conv: {out: out, k: 1}, from: relu1, when: 'in_channels != out'}\n"
            "graph:\n  - a: {block: b, with: {out: 16}}\n  - b: {block: b, with: {out: 16}}\n")
    a = analyze(body)
    g = a.graph
    assert g.inputs("a.~add") == ["a.conv1", "a.3"] and g.inputs("a.3") == ["a.relu1"]
    assert g.inputs("b.~add") == ["b.conv1", "a.~add"], "when: false leaves the identity shortcut"


def test_construct_keys_as_names():
    a = analyze("graph:\n  - fractal: {fractal: {columns: 2, body: [{conv: {out: 4, k: 1}}], drop_path: 0.1}}\n"
                "  - dense: {dense: {layers: 2, body: [{conv: {out: 2, k: 1}}]}}\n")
    assert "fractal.col2.0.0" in a.graph and "dense.1.0" in a.graph
    b = analyze("graph:\n  - {fractal: {columns: 2, body: [{conv: {out: 4, k: 1}}], drop_path: 0.1}}\n")
    assert "0.col2.0.0" in b.graph, "`drop_path` among a fractal's settings does not make its key a name"


def test_sum_pooling_and_scaled_tanh():
    a = analyze("graph:\n  - p: {avgpool: {k: 2, divisor: 1}}\n  - t: {tanh: {scale: 1.7159, slope: 2 / 3}}\n")
    m = archc.build(a).eval()
    x = torch.randn(2, 8, 16, 16)
    want = 1.7159 * torch.tanh(2 / 3 * torch.nn.functional.avg_pool2d(x, 2) * 4)
    torch.testing.assert_close(m(x), want)


def test_peak_activations_frees_after_last_use():
    chain = analyze("graph:\n  - {conv: {out: 4, k: 1}}\n  - {conv: {out: 2, k: 1}}\n  - flatten\n"
                    "  - {linear: {out: 3}}\n")
    hw = 16 * 16
    assert chain.peak_activations == 8 * hw + 4 * hw + 2 * hw  # the caller holds the input
    skip = analyze("graph:\n  - a: {conv: {out: 4, k: 1}}\n  - b: {conv: {out: 4, k: 1}}\n"
                   "  - c: {conv: {out: 4, k: 1}}\n  - s: {add: null, from: [a, c]}\n")
    assert skip.peak_activations == 8 * hw + 3 * 4 * hw  # a stays alive across b and c for the add


def test_list_block_arguments():
    """`[h, w]` and lists of ints as block arguments: Inception-v3's 1x7 and 7x1 convs from one block."""
    body = ("blocks:\n  basic:\n    args: {out: int, k: int2, pad: [0, 0]}\n"
            "    seq: [conv: {conv: {out: out, k: k, pad: pad, bias: false}}]\n"
            "  stack:\n    args: {widths: ints}\n"
            "    seq: [{conv: {out: max(widths), k: 1}}]\n"
            "graph:\n  - a: {block: basic, with: {out: 6, k: [1, 7], pad: [0, 3]}}\n"
            "  - b: {block: basic, with: {out: 6, k: [7, 1], pad: [3, 0]}}\n"
            "  - c: {block: basic, with: {out: 6, k: 3, pad: [1, 1]}}\n"
            "  - d: {block: stack, with: {widths: [4, 9, 2]}}\n")
    a = analyze(body)
    g = a.graph
    assert (g["a.conv"].attrs["k"], g["a.conv"].attrs["pad"], g["a.conv"].shape) == ((1, 7), (0, 3), (6, 16, 16))
    assert (g["b.conv"].attrs["k"], g["b.conv"].attrs["pad"]) == ((7, 1), (3, 0))
    assert (g["c.conv"].attrs["k"], g["c.conv"].attrs["pad"]) == (3, 1), "equal sides are one value"
    assert g["d.0"].shape == (9, 16, 16)
    assert archc.build(a)(torch.randn(1, 8, 16, 16)).shape == (1, 9, 16, 16)


@pytest.mark.parametrize("with_,words", [
    ("{k: [1, 2, 3]}", "basic k must be an int or [h, w], got [1, 2, 3]"),
    ("{k: 1.5}", "basic k must be an int, got 1.5"),
    ("{k: [1, x]}", "unknown name 'x'"),
])
def test_list_block_arguments_are_checked(with_, words):
    body = ("blocks:\n  basic:\n    args: {k: int2}\n    seq: [conv: {conv: {out: 4, k: k}}]\n"
            f"graph:\n  - a: {{block: basic, with: {with_}}}\n")
    with pytest.raises(archc.SpecError, match=words.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")) as e:
        analyze(body)
    assert (e.value.loc.line, e.value.path) == (9, "a")
