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


# -- round 3 (issue 18): names, scoped references, loop-carried repeats, optional branches, auto shortcuts --------

def build(body: str, input_=(8, 16, 16), **params):
    torch.manual_seed(0)
    return archc.build(analyze(body, input_, **params)).double().eval()


def keys(m, suffix=".weight"):
    return [k for k in m.state_dict() if k.endswith(suffix)]


def test_names_are_numeric_positions_and_construct_words():
    """One rule: letters, digits, _ and -, not starting with -. A numbered position is a name, as are torch's own
    module names `repeat` and `branches` where a construct cannot take the value."""
    m = build("blocks:\n  b: {seq: [c: {conv: {out: 8, k: 1}}]}\n"
              "graph:\n  - '0': {conv: {out: 8, k: 1}}\n"
              "  - repeat: {repeat: 2, block: b}\n"
              "  - branches: {seq: [{conv: {out: 8, k: 1}}]}\n"
              "  - repeat_1: [{repeat: 2, names: '{i + 1}', body: [c: {conv: {out: 8, k: 1}}]}]\n"
              "  - 1x1: {conv: {out: 8, k: 1}}\n")
    assert keys(m) == ["0.weight", "repeat.0.c.weight", "repeat.1.c.weight", "branches.0.weight",
                       "repeat_1.1.c.weight", "repeat_1.2.c.weight", "1x1.weight"]
    assert analyze("graph:\n  - {branches: [[a: {conv: {out: 2, k: 1}}], [b: {conv: {out: 3, k: 1}}]]}\n"
                   ).outputs[0]["shape"] == [5, 16, 16], "a list is branches' own value: the construct"


@pytest.mark.parametrize("body,words", [
    ("graph:\n  - {repeat: 2, names: 'input', body: [c: {conv: {out: 8, k: 1}}]}\n",
     "names template 'input' gives 'input': 'input' is reserved (seq, module, aux, from, when, input cannot name"),
    ("graph:\n  - {repeat: 2, names: '-{i}', body: [c: {conv: {out: 8, k: 1}}]}\n",
     "names template '-{i}' gives '-0': '-0' is not a valid name: it starts with '-'"),
    ("graph:\n  - {repeat: 2, names: 'a.{i}', body: [c: {conv: {out: 8, k: 1}}]}\n",
     "names template 'a.{i}' gives 'a.0': 'a.0' is not a valid name: it has '.'"),
    ("graph:\n  - a: relu\n  - {relu: null, from: 0}\n", "must be a module path, got 0 (a numbered position is "
                                                          "written as a string: '0')"),
    ("graph:\n  - when: relu\n", "'when' is reserved and cannot name an item"),
])
def test_name_rule_errors_are_located(body, words):
    with pytest.raises(archc.SpecError) as e:
        analyze(body)
    assert words in str(e.value)


def test_reopened_scope_continues_its_numbering():
    """`convs: [conv]` in each iteration appends convs.0, convs.1, ... (a ModuleList), interleaved with bns."""
    m = build("graph:\n  - {repeat: 3, carry: x, body: [convs: [{conv: {out: 8, k: 1}}], bns: [bn]]}\n")
    assert keys(m) == ["convs.0.weight", "convs.1.weight", "convs.2.weight", "bns.0.weight", "bns.1.weight",
                       "bns.2.weight"]


def test_from_reads_paths_into_earlier_scopes_and_numbered_positions():
    a = analyze("graph:\n  - transition1: [{conv: {out: 4, k: 1}}, {conv: {out: 6, k: 1}, from: input}]\n"
                "  - grp: [a: {conv: {out: 4, k: 1}, from: input}, b: relu]\n"
                "  - {module: [{conv: {out: 4, k: 1}, from: input}]}\n"
                "  - {concat: null, from: [transition1.0, transition1.1, grp.b, '2.0', grp]}\n")
    assert a.graph.inputs("3") == ["transition1.0", "transition1.1", "grp.b", "2.0", "grp.b"]
    assert a.outputs[0]["shape"] == [22, 16, 16]


def test_from_sees_outer_names_and_input_inside_constructs():
    """Inside branches, a residual or a repeat, `from:` sees the construct's `input` and every enclosing sequence's
    names (not inside a block's body, which sees only its inputs)."""
    a = analyze("graph:\n  - stem: {conv: {out: 4, k: 1}}\n  - mid: relu\n"
                "  - j: {branches: {x: {relu: null, from: input}, y: {conv: {out: 4, k: 1}, from: stem}}, join: add}\n")
    assert a.graph.inputs("j.x") == ["mid"] and a.graph.inputs("j.y") == ["stem"]
    b = analyze("graph:\n  - s: {conv: {out: 8, k: 1}}\n"
                "  - r: {residual: {body: [{add: null, from: [input, s]}, c: {conv: {out: 8, k: 1}}]}}\n")
    assert b.graph.inputs("r.0") == ["s", "s"]
    with pytest.raises(archc.SpecError, match=r"from: no earlier item named 's' here \(visible: input\)"):
        analyze("blocks:\n  b: {seq: [{relu: null, from: s}]}\ngraph:\n  - s: {conv: {out: 8, k: 1}}\n  - b\n")


def test_unknown_from_lists_what_is_visible():
    with pytest.raises(archc.SpecError) as e:
        analyze("graph:\n  - a: {conv: {out: 8, k: 1}}\n  - g: [b: relu, c: relu]\n"
                "  - {module: [relu]}\n  - {add: null, from: [a, g.x]}\n")
    assert ("from: no earlier item named 'g.x' here (visible: input, a, g; paths in this scope: g.b, g.c, 2.0, 2)"
            in str(e.value))
    assert e.value.loc.line == 8 and e.value.path == "graph.3.from.1"


def test_carried_repeat_reads_the_previous_iteration_and_the_enclosing_scope():
    """h_i = conv_i(h_{i-1} + x0): `carry` names the previous iteration's output (the repeat's input at i = 0);
    `join: concat` outputs every iteration's output."""
    m = build("graph:\n  - x0: {conv: {out: 4, k: 1}}\n"
              "  - {repeat: 3, carry: h, join: concat, body: [{add: null, from: [h, x0]}, "
              "convs: [{conv: {out: 4, k: 3, pad: 1}}]]}\n")
    g = m.graph
    adds = ops(m.analysis, "add")
    assert [g.inputs(a) for a in adds] == [["x0", "x0"], ["convs.0", "x0"], ["convs.1", "x0"]]
    assert g.inputs("~concat") == ["convs.0", "convs.1", "convs.2"]
    x = torch.randn(2, 8, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        x0 = m.x0(x)
        h, outs = x0, []
        for conv in m.convs.children():
            h = conv(h + x0)
            outs.append(h)
        torch.testing.assert_close(m(x), torch.cat(outs, 1), rtol=0, atol=0)


def test_res2net_block_for_any_scale():
    """Res2Net's sp = conv_i(sp + spx[i]) from one block: the keys timm has, for any scale."""
    for scale in (2, 4, 6):
        a = archc.analyze(archc.load("archc/zoo/res2net.yaml", scale=scale, size=64))
        block = {n.name.split(".", 2)[2] for n in a.nodes() if n.name.startswith("layer1.1.") and n.meta["params"]}
        assert block == {"conv1", "bn1", "conv3", "bn3", *(f"convs.{i}" for i in range(scale - 1)),
                         *(f"bns.{i}" for i in range(scale - 1))}
        convs = [n for n in a.nodes() if n.name.startswith("layer1.1.convs.")]
        assert len(convs) == scale - 1 and convs[-1].shape == (26, 16, 16)
        assert a.graph["layer1.1.conv3"].attrs["out"] == 256


@pytest.mark.parametrize("join,expect", [("add", "a + b"), ("concat", "[a, b]")])
def test_a_branch_left_out_is_absent_from_its_join(join, expect):
    """RepVGG's identity branch exists only where shapes allow: when it is left out, the join has one input fewer
    (not the block's input in its place)."""
    body = ("params: {identity: false}\n"
            f"graph:\n  - j: {{branches: {{a: {{conv: {{out: 8, k: 1}}}}, b: {{conv: {{out: 8, k: 3, pad: 1}}}}, "
            f"c: {{bn: null, when: identity}}}}, join: {join}}}\n")
    m = build(body)
    assert m.graph.inputs(f"j.~{join}") == ["j.a", "j.b"]
    x = torch.randn(2, 8, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        a, b = m.j.a(x), m.j.b(x)
        torch.testing.assert_close(m(x), a + b if join == "add" else torch.cat([a, b], 1), rtol=0, atol=0)
    assert build(body, identity=True).graph.inputs(f"j.~{join}") == ["j.a", "j.b", "j.c"]


def test_a_from_input_left_out_is_absent_from_a_join_only():
    body = ("params: {extra: false}\ngraph:\n  - a: {conv: {out: 8, k: 1}}\n  - b: {conv: {out: 8, k: 1}, from: input, "
            "when: extra}\n  - s: {add: null, from: [a, b]}\n")
    assert analyze(body).graph.inputs("s") == ["a"]
    with pytest.raises(archc.SpecError, match="is left out by its `when:`; only a join leaves such inputs out"):
        analyze(body.replace("{add: null, from: [a, b]}", "{relu: null, from: b}"))
    with pytest.raises(archc.SpecError, match="branches: every branch is left out by its `when:`"):
        analyze("graph:\n  - {branches: {a: {relu: null, when: 'False'}}, join: add}\n")


@pytest.mark.parametrize("size,out,stride", [(25, 13, 2), (147, 74, 2), (13, 7, 2), (9, 3, 3), (7, 1, 7),
                                              (10, 4, 3)])
def test_auto_shortcut_at_every_size_a_strided_1x1_conv_reaches(size, out, stride):
    """The smallest stride s with ceil(size / s) = out: ResNet-50 at 200x200 (25 -> 13), Xception's 147 -> 74."""
    k = -(-size // out)
    body = (f"graph:\n  - {{residual: {{body: [{{conv: {{out: 16, k: {k}, stride: {k}, pad: {(k * out - size + 1) // 2}"
            "}}], shortcut: auto}}\n")
    a = analyze(body, input_=(8, size, size))
    conv = a.graph["0.downsample.0"]
    assert conv.attrs["stride"] == stride and conv.shape == (16, out, out)


@pytest.mark.parametrize("shapes,words", [
    ((8, 10, 10), "a strided conv cannot enlarge 10 rows to 20"),
    ((8, 10, 10), "no stride takes 10 rows to 6 (stride 1 gives 10, stride 2 gives 5)"),
])
def test_auto_shortcut_says_why_none_fits(shapes, words):
    up = "{upsample: {scale: 2}}" if "enlarge" in words else "{avgpool: {k: 5, stride: 1}}, {pad_channels: {out: 9}}"
    with pytest.raises(archc.ShapeError) as e:
        analyze(f"graph:\n  - {{residual: {{body: [{up}, {{conv: {{out: 16, k: 1}}}}], shortcut: auto}}}}\n",
                input_=shapes)
    assert words in str(e.value) and "shortcut auto: no 1x1 projection maps the input [8, 10, 10]" in str(e.value)


def test_two_calls_of_a_block_that_clash_are_reported_at_the_calls():
    with pytest.raises(archc.SpecError) as e:
        analyze("blocks:\n  unit:\n    seq: [c: {conv: {out: 4, k: 1}}]\ngraph:\n  - branches: [unit, unit]\n")
    assert str(e.value).endswith("t.yaml:8:22: c: name 'c' is already used in this scope: the block this call "
                                 "expands makes it, and so did the call at 8:16 (name the calls to give each its own "
                                 "scope)")


def test_warnings_reach_python_warnings():
    body = "graph:\n  - conv1: {conv: {out: 4, k: 3, stride: 2}}\n"
    spec = archc.loads("archc: 1\nname: t\ninput: [3, 16, 16]\n" + body, "t.yaml")
    for call in (archc.analyze, archc.validate, archc.build):
        with pytest.warns(archc.ArchcWarning) as caught:
            call(spec)
        (w,) = caught
        assert w.message.path == "conv1" and w.message.loc.line == 5 and "never seen" in str(w.message)
        assert w.filename == __file__, "the warning points at the caller"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", archc.ArchcWarning)
        analysis = archc.analyze(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        archc.build(analysis)  # an Analysis has issued its warnings already


def test_the_cli_prints_each_warning_once(tmp_path, capsys):
    from archc.cli import main

    f = tmp_path / "w.yaml"
    f.write_text("archc: 1\nname: w\ninput: [3, 16, 16]\ngraph:\n  - conv1: {conv: {out: 4, k: 3, stride: 2}}\n"
                 "  - relu\n")
    assert main(["validate", str(f)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{f}:5:12: conv1: warning: conv 3/2 pad 0 on 16")


def test_zero_macs_read_as_a_quantity():
    from archc import report

    assert report.summary(analyze("graph:\n  - relu\n")) == "t: 0 params, 0 MACs, output out [8, 16, 16]"


@pytest.mark.parametrize("graph,words", [
    ("  - note: a: b\n", "YAML: mapping values are not allowed in this context (a ': ' inside a plain value starts a "
                         "mapping: quote the string"),
    ("  - x: {relu: null, when: i == 0: 1}\n", "or a value holds ', ', ': ' or a quote: quote the whole value"),
    ("  - x: @relu\n", "('@' cannot start a plain value: quote the string)"),
])
def test_yaml_errors_say_to_quote(graph, words):
    with pytest.raises(archc.SpecError) as e:
        archc.loads("archc: 1\nname: t\ninput: [3, 8, 8]\ngraph:\n" + graph, "t.yaml")
    assert words in str(e.value) and str(e.value).startswith("t.yaml:5:")
