"""archc.fuse computes what the eager module computes at every input the layers allow — other sizes than the
spec's (smaller and larger, non-square), batch 1 and 3, contiguous and channels_last — with plans switching back
and forth in one process; sizes the layers do not allow, both refuse with the same located error."""

import functools
import math

import pytest
import torch

import archc
from archc.errors import ShapeError
from archc.passes import shapes
from conftest import FORWARD, SPECS, spec_id
from test_fuse import randomise_bn

BUDGET = 2.5e8  # multiply-accumulates of one forward (batch included) the fast set runs; the slow set runs the rest
TOLERANCE = 1e-4  # relative: max |fused - eager| / max |eager|, float32


def allowed(model, hw) -> bool:
    c = model.analysis.input_shape[0]
    try:
        shapes.infer(model.graph, (c, *hw), model.graph.meta["schedules"][False].order)
    except ShapeError:
        return False
    return True


def near(model, hw, step: int) -> tuple | None:
    """An allowed size at or after hw, moving by `step` on both axes (so they stay unequal), or None."""
    h, w = hw
    for i in range(48):
        cand = (max(h + step * i, 1), max(w + step * i, 1))
        if allowed(model, cand):
            return cand
    return None


def sizes(model) -> dict[str, tuple]:
    """The declared (built) size, a smaller and a larger one, odd and not square where the layers allow."""
    _, h, w = model.analysis.input_shape
    found = {"declared": (h, w)}
    smaller = near(model, (max(h * 5 // 8 | 1, 1), max(w * 11 // 16 | 1, 2)), -1)
    larger = near(model, ((h + 4) | 1, (w + 8) | 1), 1)
    for name, hw in (("smaller", smaller), ("larger", larger)):
        if hw and hw != (h, w):
            found[name] = hw
    return found


def sequence(model) -> list[tuple[str, tuple, int, bool]]:
    """(size name, (h, w), batch, channels_last): the smaller size at batch 3 channels_last, the larger at batch 1,
    the declared at batch 1 channels_last, the smaller again at batch 1 contiguous, then the first again — every
    size, both batch sizes and both layouts, plans switching back and forth and reused."""
    s = sizes(model)
    first = s.get("smaller", s["declared"])
    combos = [("smaller" if "smaller" in s else "declared", first, 3, True)]
    combos += [(n, s[n], 1, False) for n in ("larger",) if n in s]
    combos += [("declared", s["declared"], 1, True), (combos[0][0], first, 1, False)]
    return combos + [combos[0]]


def relative_error(got, want) -> float:
    if isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want)
        return max(relative_error(got[k], want[k]) for k in want)
    if isinstance(want, tuple):
        return max(relative_error(g, w) for g, w in zip(got, want, strict=True))
    assert got.shape == want.shape and got.dtype == want.dtype
    return ((got - want).abs().max() / want.abs().max().clamp_min(1e-30)).item()


@functools.lru_cache(maxsize=2)
def built(path):
    torch.manual_seed(0)
    model = randomise_bn(archc.build(path, **FORWARD.get(path.stem, {}))).eval()
    return model, archc.fuse(model)


def cost(model, hw, batch) -> float:
    _, h, w = model.analysis.input_shape
    return model.analysis.macs * batch * hw[0] * hw[1] / (h * w)


def run(model, fused, combos):
    c = model.analysis.input_shape[0]
    eager = {}
    for name, hw, batch, channels_last in combos:
        x = torch.randn(batch, c, *hw, generator=torch.Generator().manual_seed(hw[0] * 1000 + hw[1] * 10 + batch))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            if (hw, batch) not in eager:
                eager[(hw, batch)] = model(x)
            got = fused(x)
        err = relative_error(got, eager[(hw, batch)])
        assert err < TOLERANCE, f"{name} {hw} batch {batch} channels_last={channels_last}: relative error {err:.2e}"


@pytest.mark.parametrize("path", SPECS, ids=spec_id)
def test_fused_equals_eager_at_every_size(path):
    model, fused = built(path)
    combos = [k for k in sequence(model) if cost(model, k[1], k[2]) <= BUDGET]
    if not combos:
        pytest.skip("every size costs more than the fast set runs: see the slow test")
    run(model, fused, combos)


@pytest.mark.slow
@pytest.mark.parametrize("path", SPECS, ids=spec_id)
def test_fused_equals_eager_at_every_size_full(path):
    """The whole sequence, the costly sizes included, where the fast set left some out."""
    model, fused = built(path)
    combos = sequence(model)
    if all(cost(model, k[1], k[2]) <= BUDGET for k in combos):
        pytest.skip("the fast set ran the whole sequence")
    run(model, fused, combos)


@pytest.mark.parametrize("path", SPECS, ids=spec_id)
def test_sizes_the_layers_refuse_are_refused_alike(path):
    """The smallest sizes a network refuses: the eager and the fused module raise the same ShapeError, located
    at the layer, before computing anything."""
    model, fused = built(path)
    c = model.analysis.input_shape[0]
    refused = next((s for s in (1, 2, 3, 5, 8, 13) if not allowed(model, (s, s))), None)
    if refused is None:
        pytest.skip("every size tried is allowed")
    x = torch.randn(1, c, refused, refused)
    with torch.inference_mode():
        with pytest.raises(ShapeError) as eager:
            model(x)
        with pytest.raises(ShapeError) as fast:
            fused(x)
    assert str(eager.value) == str(fast.value)
    assert eager.value.loc is not None and f"at input [{c}, {refused}, {refused}]" in str(eager.value)


@pytest.mark.parametrize("size", [64, 256])
def test_densenet121_at_other_sizes(size):
    """Once wrong at 64 and a heap corruption at 256 (the plan's arena sized for 224)."""
    torch.manual_seed(0)
    model = randomise_bn(archc.build("densenet")).eval()
    fused = archc.fuse(model)
    x = torch.randn(1, 3, size, size)
    with torch.inference_mode():
        assert relative_error(fused(x), model(x)) < TOLERANCE
        assert relative_error(fused(x), model(x)) < TOLERANCE  # the plan again, reused


def test_a_flat_layer_fixes_the_size():
    """A linear after flatten holds weights for one input size: other sizes are refused at it, naming both."""
    model = archc.build("lenet5").eval()
    fused = archc.fuse(model)
    for m in (model, fused):
        with pytest.raises(ShapeError, match=r"f6: at input \[1, 40, 40\]: this linear holds weights for its "
                                             r"input \[120\] \(the spec's input is \[1, 32, 32\]\), this input "
                                             r"gives it \[1080\]"), torch.inference_mode():
            m(torch.randn(2, 1, 40, 40))


def test_plans_are_kept_per_kind_of_input_and_bounded():
    model = randomise_bn(archc.build("resnet", size=32)).eval()
    fused = archc.fuse(model, max_plans=2)
    xs = [torch.randn(1, 3, s, s) for s in (32, 40, 48)]
    with torch.inference_mode():
        for x in xs:
            fused(x)
        assert [k[0] for k in fused._forwards] == [(1, 3, 40, 40), (1, 3, 48, 48)]  # the least recent went
        first = fused.generated(xs[1])
        assert fused.generated(xs[1]) is first  # reused
        cl = xs[1].contiguous(memory_format=torch.channels_last)
        assert fused.generated(cl) is not first  # another layout, another plan
        assert relative_error(fused(cl), model(cl)) < TOLERANCE
    assert len(fused._forwards) == 2


def test_every_plan_is_made_from_its_own_shapes():
    model = randomise_bn(archc.build("densenet", size=32)).eval()
    fused = archc.fuse(model)
    with torch.inference_mode():
        small, large = (fused.generated(torch.randn(2, 3, s, s)) for s in (32, 64))
    assert small.graph is fused.graph and large.graph is not fused.graph
    assert large.graph[large.graph.input].shape == (3, 64, 64)
    assert large.plan.arena_bytes == 4 * small.plan.arena_bytes
    for forward in (small, large):
        assert all(forward.plan.nbytes[n] == 2 * 4 * math.prod(forward.graph[n].shape) for n in forward.plan.order)


def test_a_wrong_plan_is_an_internal_error_not_a_wrong_answer(monkeypatch):
    """The first call of a plan checks every step against it: a plan made from wrong shapes (here: the declared
    size's, the bug of issue 16) is caught before any value is read, as an internal error."""
    from archc.backends.torch.cpu import forward as generated

    model = randomise_bn(archc.build("densenet", size=32)).eval()
    fused = archc.fuse(model)
    monkeypatch.setattr(generated, "planned_graph", lambda module, sample: (module.graph, None))
    with torch.inference_mode(), pytest.raises(RuntimeError, match=r"archc internal error: the generated CPU "
                                               r"forward of densenet121 for input \[1, 3, 32, 32\]: step 0 \(input\) "
                                               r"gave \[1, 3, 64, 64\]"):
        fused(torch.randn(1, 3, 64, 64))


def test_windows_wholly_in_the_padding_do_not_crash():
    """PyTorch's oneDNN convolution crashes (SIGSEGV) on this conv over channels_last data — found by the
    differential fuzzing (case 313): archc pads such inputs explicitly (archc_kernels.shapes.pads_past_window), in
    the eager module, the generated forward and archc_kernels' reference alike."""
    import archc_kernels

    text = ("archc: 1\nname: t\ninput: [4, 12, 1]\ngraph:\n"
            "  - c: {conv: {out: 12, k: [3, 1], stride: 2, pad: [1, 1], dilation: 2}}\n  - b: bn\n  - a: tanh\n")
    model = randomise_bn(archc.build(archc.loads(text, "t.yaml"))).eval()
    fused = archc.fuse(model)
    x = torch.randn(2, 4, 12, 1).contiguous(memory_format=torch.channels_last)
    conv = model.c
    assert type(conv).__name__ == "PaddedConv2d" and isinstance(conv, torch.nn.Conv2d)
    want = torch.tanh(torch.nn.functional.conv2d(x.contiguous(), conv.weight, conv.bias, 2, 1, 2))
    with torch.inference_mode():
        assert relative_error(model(x), torch.tanh(model.b(model.c(x.contiguous())))) < TOLERANCE
        assert relative_error(fused(x), model(x)) < TOLERANCE
        got = archc_kernels.reference.conv_bn_act(x, conv.weight, None, conv.bias, stride=2, padding=1, dilation=2,
                                                 act="none")
    assert relative_error(torch.tanh(got), want) < TOLERANCE


def test_a_join_that_broadcasts_at_another_size_is_computed_as_eager_does():
    """Declared at a 1-pixel map, a residual whose body strides keeps 1 pixel where its shortcut grows: eager
    broadcasts the add (the body's axis is 1 at the spec's input too, so the size is allowed), and the fused forward
    must not write the sum over the 1-pixel input (differential fuzzing, case 1615)."""
    text = ("archc: 1\nname: t\ninput: [4, 1, 1]\ngraph:\n"
            "  - r: {residual: {body: [{conv: {out: 4, k: 3, stride: 2, pad: 1}}, bn], post: relu}}\n")
    model = randomise_bn(archc.build(archc.loads(text, "t.yaml"))).eval()
    fused = archc.fuse(model)
    x = torch.randn(2, 4, 2, 2)
    with torch.inference_mode():
        want = model(x)
        assert want.shape == (2, 4, 2, 2) and relative_error(fused(x), want) < TOLERANCE


def test_named_outputs_come_back_as_the_module_returns_them():
    """A spec with `outputs:` returns {name: tensor} from the eager module, and from the fused one alike."""
    text = ("archc: 1\nname: t\ninput: [3, 16, 16]\noutputs: [mid, out]\ngraph:\n"
            "  - mid: [{conv: {out: 8, k: 3, pad: 1}}, bn, relu]\n  - out: [{conv: {out: 4, k: 3, stride: 2}}, bn]\n")
    model = randomise_bn(archc.build(archc.loads(text, "t.yaml"))).eval()
    fused = archc.fuse(model)
    x = torch.randn(2, 3, 20, 18)
    with torch.inference_mode():
        want, got = model(x), fused(x)
    assert isinstance(got, dict) and list(got) == list(want) == ["mid", "out"]
    assert relative_error(got, want) < TOLERANCE
