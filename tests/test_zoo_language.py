"""What the modern CNN zoo needs from the language, on small specs: numbered module scopes, `block` and `-` in
names, tables and repeats over them, variants, blocks as arguments, residuals without a shortcut, stochastic-depth
schedules, several outputs, compound-scaling arithmetic, a parameter keyed at its own path, and receptive fields
through upsampling and crops checked against gradients."""

import pytest
import torch

import archc
from archc.errors import ExpectError
from archc.spec.expr import evaluate

HEAD = "archc: 1\nname: t\ninput: [4, 16, 16]\n"


def analyze(body: str, head: str = HEAD, **params):
    return archc.analyze(archc.loads(head + body, "t.yaml", **params))


def names(a, op=None):
    return [n.name for n in a.nodes() if op is None or n.op == op]


def test_module_is_a_numbered_scope_beside_bare_ops():
    """MobileNetV2's `conv`: numbered sub-scopes (conv.0.0) beside bare numbered ops (conv.2, conv.3)."""
    a = analyze("blocks:\n  cna:\n    args: {out: int, k: 1}\n"
                "    module: [{conv: {out: out, k: k, pad: (k - 1) // 2, bias: false}}, bn, relu6]\n"
                "graph:\n  - conv:\n      - {block: cna, with: {out: 8}}\n      - {block: cna, with: {out: 8, k: 3}}\n"
                "      - {conv: {out: 4, k: 1, bias: false}}\n      - bn\n")
    assert [k for k in archc.build(a).state_dict() if k.endswith("weight")] == [
        "conv.0.0.weight", "conv.0.1.weight", "conv.1.0.weight", "conv.1.1.weight", "conv.2.weight", "conv.3.weight"]


def test_block_and_dashes_as_names():
    a = analyze("graph:\n  - block: [{conv: {out: 4, k: 1}}]\n  - block1-0: {conv: {out: 4, k: 1}}\n"
                "  - {repeat: 2, names: 'stage{i}-{i + 1}', body: [c: {conv: {out: 4, k: 1}}]}\n")
    assert names(a, "conv") == ["block.0", "block1-0", "stage0-1.c", "stage1-2.c"]


def test_anonymous_repeats_splice_their_iterations():
    """A repeat over a stage table of blocks numbers every block in the enclosing sequence (MobileNetV2's flat
    features.1 ... 17); a module makes a stage one position (EfficientNet's features.1.0)."""
    body = ("params:\n  stages: {columns: [c, n], rows: [[4, 1], [8, 2]]}\n"
            "blocks:\n  b:\n    args: {out: int}\n    residual: {body: [conv: {conv: {out: out, k: 1}}], skip: false}\n"
            "graph:\n  - flat: [{repeat: stages, body: {repeat: n, block: b, with: {out: c}}}]\n"
            "  - staged: [{repeat: stages, body: {module: {repeat: n, block: b, with: {out: c}}}}]\n")
    a = analyze(body)
    assert names(a, "conv") == ["flat.0.conv", "flat.1.conv", "flat.2.conv",
                                "staged.0.0.conv", "staged.1.0.conv", "staged.1.1.conv"]


@pytest.mark.parametrize("repeat,widths", [
    ("stages", [4, 8, 8]),                                                   # a table parameter
    ("{columns: [c, n], rows: [[2 * 2, 1], [w, n0]]}", [4, 8, 8]),           # written in place: expressions
    ("{c: [4, w], n: [1, n0]}", [4, 8, 8]),                                  # lists in step
    ("{c: widths, n: [1, 2]}", [4, 8, 8]),                                   # a list parameter
])
def test_repeat_over_tables_and_lists(repeat, widths):
    body = ("params:\n  w: 8\n  n0: 2\n  widths: [4, 8]\n  stages: {columns: [c, n], rows: [[4, 1], [8, 2]]}\n"
            f"graph:\n  - {{repeat: {repeat}, body: {{repeat: n, body: [{{conv: {{out: c, k: 1}}}}]}}}}\n")
    a = analyze(body)
    assert [a.graph[n].attrs["out"] for n in names(a, "conv")] == widths


@pytest.mark.parametrize("repeat,words", [
    ("{c: [4, 8], n: [1]}", "repeat lists must have one length: c has 2, n has 1"),
    ("{columns: [c, n], rows: [[4]]}", "table row 0 has 1 values for 2 columns (c, n)"),
    ("widths", "repeat takes a count, a table or {name: list, ...}, got (4, 8)"),
])
def test_repeat_errors_are_located(repeat, words):
    body = f"params: {{widths: [4, 8]}}\ngraph:\n  - x: {{repeat: {repeat}, body: [{{conv: {{out: 4, k: 1}}}}]}}\n"
    with pytest.raises(archc.SpecError) as e:
        analyze(body)
    assert words in e.value.message and e.value.loc.line == 6


def test_parameters_are_data_not_expressions():
    with pytest.raises(archc.SpecError, match="a parameter is data, not an expression"):
        analyze("params: {w: 2 * 3}\ngraph: [relu]\n")
    with pytest.raises(archc.SpecError, match="table row 1 must be a list of numbers, true/false or names"):
        analyze("params:\n  t: {columns: [a, b], rows: [[1, 2], [[3]]]}\ngraph: [relu]\n")
    with pytest.raises(archc.ShapeError, match=r"table row 1 has 1 values for 2 columns \(a, b\)"):
        analyze("params:\n  t: {columns: [a, b], rows: [[1, 2], [3]]}\ngraph: [{repeat: t, body: relu}]\n")


VARIANTS = ("params: {variant: small, classes: 10}\n"
            "variants:\n"
            "  small: {width: 4, torchvision: small_net, expect: {params: 20}}\n"
            "  big: {width: 8, classes: 5, expect: {params: 40}}\n"
            "graph:\n  - c: {conv: {out: width, k: 1}}\n")


def test_variants_select_a_row_of_parameters_and_its_figures():
    spec = archc.loads(HEAD + VARIANTS, "t.yaml")
    assert (spec.variant, spec.params["width"], spec.params["classes"], spec.torchvision) == \
        ("small", 4, 10, "small_net")
    big = archc.loads(HEAD + VARIANTS, "t.yaml", variant="big")
    assert (big.params["width"], big.params["classes"], big.torchvision) == (8, 5, None)
    assert archc.analyze(big).params == 40  # its own expect holds
    assert archc.analyze(big.with_params({"width": 2}), check=True).params == 10  # other overrides: no expect
    with pytest.raises(archc.SpecError, match=r"unknown variant 'huge' \(variants: small, big\)"):
        archc.loads(HEAD + VARIANTS, "t.yaml", variant="huge")
    wrong = archc.loads(HEAD + VARIANTS.replace("params: 40", "params: 41"), "t.yaml", variant="big")
    with pytest.raises(ExpectError) as e:
        archc.analyze(wrong)
    assert (e.value.loc.line, e.value.path, e.value.message) == (
        7, "variants.big.expect", "params is 40 but the spec expects 41")


def test_variants_set_every_parameter_they_introduce():
    with pytest.raises(archc.SpecError, match="variant 'big' does not set width, which other variants set"):
        archc.loads(HEAD + VARIANTS.replace("width: 8, ", ""), "t.yaml")
    with pytest.raises(archc.SpecError, match="names its default in params"):
        archc.loads(HEAD + VARIANTS.replace("variant: small, ", ""), "t.yaml")


BLOCK_ARGS = ("blocks:\n"
              "  gate:\n    args: {squeeze: int}\n"
              "    seq: [p: gap, fc: {conv: {out: squeeze, k: 1}}, s: sigmoid, fc2: {conv: {out: in_channels, k: 1}},"
              " {mul: null, from: [fc2, input]}]\n"
              "  unit:\n    args: {attn: none, act: relu, use_gate: false}\n"
              "    let: {maybe: gate if use_gate else none}\n"
              "    seq:\n      - conv: {conv: {out: 4, k: 3, pad: 1}}\n      - act: {block: act}\n"
              "      - attn: {block: attn, with: {squeeze: 2}}\n"
              "      - maybe: {block: maybe, with: {squeeze: 1}}\n")


@pytest.mark.parametrize("with_,ops", [
    ("{}", ["conv", "relu"]),
    ("{attn: gate}", ["conv", "relu", "gap", "conv", "sigmoid", "conv", "mul"]),
    ("{act: leaky_relu}", ["conv", "leaky_relu"]),
    ("{act: none, use_gate: true}", ["conv", "gap", "conv", "sigmoid", "conv", "mul"]),
])
def test_blocks_as_arguments(with_, ops):
    a = analyze(BLOCK_ARGS + f"graph:\n  - u: {{block: unit, with: {with_}}}\n")
    assert [n.op for n in a.nodes()][1:] == ops


def test_an_op_as_a_block_argument_takes_its_arguments():
    a = analyze(BLOCK_ARGS.replace("act: {block: act}", "act: {block: act, with: {slope: 0.2}}")
                + "graph:\n  - u: {block: unit, with: {act: leaky_relu}}\n")
    assert a.graph["u.act"].attrs == {"slope": 0.2}


@pytest.mark.parametrize("with_,words", [
    ("{act: conv}", "block act is the op 'conv', which has no argument"),  # conv takes no `slope`... nor nothing
    ("{act: 3}", "unit act must be an op or block name, or none, got 3"),
    ("{act: relu7}", "unit act 'relu7' is not an op, a block or none"),
])
def test_block_argument_errors_are_located(with_, words):
    text = BLOCK_ARGS.replace("act: {block: act}", "act: {block: act, with: {slope: 0.2}}") if "conv" in with_ \
        else BLOCK_ARGS
    with pytest.raises(archc.SpecError) as e:
        analyze(text + f"graph:\n  - u: {{block: unit, with: {with_}}}\n")
    assert words in e.value.message and e.value.path == "u"


def test_a_table_column_chooses_the_block_of_each_row():
    """EfficientNetV2's stages: FusedMBConv rows then MBConv rows, the kind a column of a table a variant sets."""
    text = (BLOCK_ARGS + "params: {variant: a}\nvariants:\n"
            "  a: {stages: {columns: [kind, n], rows: [[unit, 1], [sigmoid, 2]]}}\n"
            "  b: {stages: {columns: [kind, n], rows: [[relu, 1], [3, 1]]}}\n"
            "graph: [{repeat: stages, body: {repeat: n, block: kind}}]\n")
    assert [n.op for n in analyze(text).nodes()][1:] == ["conv", "relu", "sigmoid", "sigmoid"]
    with pytest.raises(archc.SpecError, match="must be an op or block name, or none, got 3"):
        analyze(text, variant="b")


def test_unknown_block_stays_an_error_in_a_block_without_such_argument():
    with pytest.raises(archc.SpecError, match="unknown block 'attnn'"):
        analyze(BLOCK_ARGS.replace("{block: attn,", "{block: attnn,") + "graph: [{block: unit}]\n")


def test_residual_skip_and_stochastic_depth_ramps():
    body = ("blocks:\n  b:\n    args: {out: int}\n    residual:\n"
            "      body: [{conv: {out: out, k: 3, pad: 1}}]\n"
            "      skip: in_channels == out\n"
            "      drop_path: {linear: 0.4, ramp: k/N}\n"
            "graph:\n  - l: {repeat: {out: [8, 8, 8, 8, 8]}, block: b, with: {out: out}}\n")
    a = analyze(body)
    assert names(a, "add") == ["l.1.~add", "l.2.~add", "l.3.~add", "l.4.~add"], "the first block changes shape"
    assert [a.graph[n].attrs["p"] for n in names(a, "drop_path")] == [0.4 * k / 5 for k in (1, 2, 3, 4)]
    ramp = analyze(body.replace("ramp: k/N", "ramp: k/(N-1)"))
    assert [ramp.graph[n].attrs["p"] for n in names(ramp, "drop_path")] == [0.4 * k / 4.0 for k in (1, 2, 3, 4)]
    huang = analyze(body.replace(", ramp: k/N", ""))
    assert [huang.graph[n].attrs["p"] for n in names(huang, "drop_path")] == [(k + 1) / 5 * 0.4 for k in (1, 2, 3, 4)]


def test_drop_path_modes():
    from archc.backends.torch.layers import DropPath

    torch.manual_seed(0)
    x = torch.ones(64, 3)
    row, batch = DropPath(0.5, "row").train()(x), DropPath(0.5, "batch").train()(x)
    assert 0 < (row[:, 0] == 0).sum() < 64, "row: each sample on its own"
    for _ in range(8):
        out = DropPath(0.5, "batch").train()(x)
        assert torch.equal(out, torch.zeros_like(x)) or torch.equal(out, 2 * x), "batch: all or none"
    a = analyze("graph:\n  - {residual: {body: [{conv: {out: 4, k: 1}}], drop_path: {p: 0.3, mode: batch}}}\n")
    assert a.graph["0.~drop_path"].attrs == {"p": 0.3, "mode": "batch"}
    assert batch.shape == x.shape


OUTPUTS = ("graph:\n  - stem: {conv: {out: 8, k: 3, stride: 2, pad: 1}}\n"
           "  - layer1: [{conv: {out: 8, k: 3, pad: 1}}, relu]\n"
           "  - layer2: [{conv: {out: 16, k: 3, stride: 2, pad: 1}}, relu]\n"
           "  - head: {aux: [gap, flatten, {linear: {out: 3}}]}\n"
           "  - layer3: [{conv: {out: 32, k: 3, stride: 2, pad: 1}}, relu]\n")


@pytest.mark.parametrize("outputs,keys", [
    ("[layer1, layer2.1, layer3]", ["layer1", "layer2.1", "layer3"]),
    ("{c3: layer3, c1: layer1.0}", ["c3", "c1"]),
])
def test_outputs_name_internal_nodes_and_forward_returns_a_dict(outputs, keys):
    a = analyze(OUTPUTS + f"outputs: {outputs}\n")
    assert [o["name"] for o in a.outputs] == keys + ["head"]
    m = archc.build(a)
    x = torch.randn(2, 4, 16, 16)
    out = m.eval()(x)
    assert list(out) == keys
    assert [tuple(v.shape[1:]) for v in out.values()] == [tuple(o["shape"]) for o in a.outputs[:-1]]
    assert list(m.train()(x)) == keys + ["head"], "auxiliary outputs come last, in train mode"
    assert a.macs == sum(n.meta["macs"] for n in a.nodes() if not n.meta["aux"])
    from archc import report

    assert f"{keys[0]} [{', '.join(map(str, a.outputs[0]['shape']))}]" in report.summary(a)


def test_unknown_output_path_is_located():
    with pytest.raises(archc.SpecError) as e:
        analyze(OUTPUTS + "outputs: [layer1, layr2]\n")
    assert (e.value.loc.line, e.value.path) == (10, "outputs")
    assert e.value.message == "outputs: no item has the module path 'layr2' (did you mean 'layer2'?)"


@pytest.mark.parametrize("text,value", [
    ("make_divisible(32 * 1.1, 8)", 32), ("make_divisible(35.2 * 1.4, 8)", 48), ("make_divisible(3, 8)", 8),
    ("make_divisible(100, 8, 128)", 128), ("make_divisible(20, 16)", 32),  # 16 would be 20% below
    ("ceil(3 * 1.1)", 4), ("floor(2.9)", 2), ("round(2.5)", 2), ("round(3.5)", 4), ("int(-2.7)", -2),
    ("sum(xs)", 10), ("sum(1, 2, 3)", 6),
])
def test_scaling_arithmetic(text, value):
    assert evaluate(text, {"xs": (1, 2, 3, 4)}) == value


@pytest.mark.parametrize("text,words", [
    ("ceil(1, 2)", "ceil takes 1 argument, got 2"), ("make_divisible(8)", "make_divisible takes 2 to 3 arguments"),
    ("make_divisible(8, 0)", "is undefined"), ("floor(x)", "arithmetic on non-number"),
])
def test_scaling_arithmetic_errors(text, words):
    from archc.errors import ExprError

    with pytest.raises(ExprError, match=words):
        evaluate(text, {"x": "relu"})


def test_scale_is_keyed_at_its_own_path_and_fuses():
    a = analyze("graph:\n  - b:\n      - c: {conv: {out: 4, k: 3, pad: 1}}\n      - layer_scale: {scale: {init: 0.5}}\n"
                "      - n: {layernorm: {eps: 1.0e-6}}\n      - fc: {linear: {out: 6}}\n")
    m = archc.build(a)
    assert [k for k in m.state_dict()] == ["b.layer_scale", "b.c.weight", "b.c.bias", "b.n.weight", "b.n.bias",
                                           "b.fc.weight", "b.fc.bias"]
    assert m.b.layer_scale.shape == (4, 1, 1) and sum(p.numel() for p in m.parameters()) == a.params
    state = {k: torch.randn_like(v) for k, v in m.state_dict().items()}
    m.load_state_dict(state)
    m = m.double().eval()
    x = torch.randn(2, 4, 16, 16, dtype=torch.float64)
    y = torch.nn.functional.conv2d(x, state["b.c.weight"].double(), state["b.c.bias"].double(), padding=1)
    y = torch.nn.functional.layer_norm((y * state["b.layer_scale"].double()).permute(0, 2, 3, 1), (4,),
                                       state["b.n.weight"].double(), state["b.n.bias"].double(), 1e-6)
    y = torch.nn.functional.linear(y, state["b.fc.weight"].double(), state["b.fc.bias"].double()).permute(0, 3, 1, 2)
    torch.testing.assert_close(m(x), y)
    torch.testing.assert_close(archc.fuse(m)(x.contiguous(memory_format=torch.channels_last)), y)


UNET = ("input: [1, 92, 92]\n"
        "blocks:\n  convs:\n    seq: [{conv: {out: 2, k: 3}}, tanh, {conv: {out: 2, k: 3}}, tanh]\n"
        "graph:\n  - d0: convs\n  - {maxpool: {k: 2}}\n  - d1: convs\n  - {maxpool: {k: 2}}\n  - d2: convs\n"
        "  - u1a: {conv_transpose: {out: 2, k: 2, stride: 2}}\n  - d1cc: {crop: null, from: [d1, u1a]}\n"
        "  - u1b: {concat: null, from: [u1a, d1cc]}\n  - u1d: convs\n"
        "  - u0a: {conv_transpose: {out: 2, k: 2, stride: 2}}\n  - d0cc: {crop: null, from: [d0, u0a]}\n"
        "  - u0b: {concat: null, from: [u0a, d0cc]}\n  - u0d: convs\n")


def test_receptive_field_through_up_convolutions_and_crops_holds_every_output():
    """A small U-Net: the static field (a window around start + o * jump) holds the true field of every output
    pixel, measured by gradients, and is tight: some output reaches each edge."""
    a = archc.analyze(archc.loads("archc: 1\nname: u\n" + UNET, "u.yaml"))
    rf = a.receptive_field
    torch.manual_seed(0)
    m = archc.build(a).double().eval()
    x = torch.randn(1, 1, 92, 92, dtype=torch.float64, requires_grad=True)
    y = m(x)
    col = y.shape[3] // 2
    lows, highs = [], []
    for o in range(y.shape[2]):
        g, = torch.autograd.grad(y[0, :, o, col].sum(), x, retain_graph=True)
        rows = (g[0, 0].abs().sum(1) != 0).nonzero().flatten()
        centre = rf["start"][0] + o * rf["jump"][0]
        lows.append(rows.min().item() - (centre - rf["size"][0] / 2))
        highs.append(centre + rf["size"][0] / 2 - rows.max().item() - 1)
    assert min(lows) >= 0 and min(highs) >= 0
    assert min(lows) < 1 and min(highs) < 1, f"a hull no more than a pixel wider than needed: {rf}"


def test_squeeze_excitation_field_is_the_whole_map():
    a = analyze("blocks:\n  se:\n"
                "    seq: [p: gap, f: {conv: {out: 4, k: 1}}, s: sigmoid, {mul: null, from: [s, input]}]\n"
                "graph:\n  - c: {conv: {out: 4, k: 3, pad: 1}}\n  - se: se\n  - d: {conv: {out: 4, k: 3, pad: 1}}\n")
    assert a.graph["c"].meta["rf"].jump == (1, 1)
    assert a.graph["se.3"].meta["rf"].jump == (1, 1), "the product stays on the map's grid"
    assert a.graph["se.3"].meta["rf"].size[0] >= 16, "every output reads the whole map through the gate"


def test_a_block_takes_several_inputs():
    """`from: [a, b]` on a block call: the block's input is a, and b is `input1` inside it (a U-Net decoder level)."""
    a = analyze("blocks:\n  up:\n    seq:\n      - u: {upsample: {scale: 2}}\n"
                "      - cc: {crop: null, from: [input1, u]}\n      - {concat: null, from: [u, cc]}\n"
                "graph:\n  - big: {conv: {out: 2, k: 3}}\n  - small: {maxpool: {k: 2}}\n"
                "  - s: {conv: {out: 3, k: 3}}\n  - dec: {block: up, from: [s, big]}\n",
                head="archc: 1\nname: t\ninput: [1, 18, 18]\n")
    g = a.graph
    assert g.inputs("dec.cc") == ["big", "dec.u"] and g["dec.2"].shape == (5, 12, 12)
    with pytest.raises(archc.SpecError, match="no earlier item named 'input2'"):
        analyze("blocks:\n  b:\n    seq: [{add: null, from: [input, input2]}]\n"
                "graph:\n  - a: relu\n  - c: {block: b, from: [a, input]}\n")
