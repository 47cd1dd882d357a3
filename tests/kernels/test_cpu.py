"""The oneDNN CPU path (archc_kernels/cpu.py) against the float64 reference: fresh random data, awkward shapes,
every activation with and without a residual, the packed call reused on fresh data, the in-place residual form
writing over a poisoned-free residual it must read, and the calls it declines."""
import pytest
import torch

from archc_kernels import ACTIVATIONS, ConvBNAct, cpu, route

if not cpu.available():
    pytest.skip("this PyTorch lacks oneDNN's fused convolution ops", allow_module_level=True)

from .conftest import AWKWARD, TOLERANCE  # noqa: E402

# id: (n, cin, h, w, cout, k, make_inputs options): the shared awkward shapes, and this path's own
CASES = {
    **AWKWARD,
    "cin5_dilation2_nonsquare_residual": (2, 5, 8, 7, 20, (3, 2), dict(padding=(2, 1), dilation=2, residual=True)),
    "stride_2x3_1x1": (1, 16, 6, 7, 17, 1, dict(stride=(2, 3))),
    "downsample_1x1_stride2_residual": (3, 16, 5, 7, 33, 1, dict(stride=2, residual=True)),
    "groups3_straddling": (1, 24, 4, 5, 33, 3, dict(padding=1, groups=3)),
    "groups32_resnext": (2, 128, 5, 5, 128, 3, dict(padding=1, groups=32, channels_last=True)),
    "groups8_residual": (1, 16, 4, 4, 48, 3, dict(padding=1, groups=8, residual=True)),
    "depthwise_multiplier3": (1, 5, 6, 4, 15, (3, 2), dict(groups=5)),
}
DTYPES = [d for d in (torch.float32, torch.bfloat16, torch.float16) if d in cpu.dtypes()]


def _on_cpu(inputs):
    return {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}


def _check(out, ref, dtype):
    assert out.shape == ref.shape and out.dtype == dtype
    assert torch.isfinite(out).all()
    err = ((out.double() - ref).norm() / ref.norm()).item()
    assert err <= TOLERANCE[dtype], f"relative error {err:.2e} > {TOLERANCE[dtype]:.0e} ({dtype})"


# Every activation in float32; one (relu6: a clamp after the add) in the lower precisions.
DTYPE_ACTS = [(torch.float32, act) for act in sorted(ACTIVATIONS)] + [(d, "relu6") for d in DTYPES[1:]]


@pytest.mark.parametrize("dtype, act", DTYPE_ACTS, ids=[f"{str(d).removeprefix('torch.')}-{a}" for d, a in DTYPE_ACTS])
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_matches_reference(case, act, dtype, make_inputs, expected):
    n, cin, h, w, cout, k, options = case
    inputs = _on_cpu(make_inputs(n, cin, h, w, cout, k, dtype=dtype, **options))
    assert route(**inputs)[0] == "cpu"
    ref = expected(**inputs, act=act)
    out = cpu.conv_bn_act(**inputs, act=act)
    _check(out, ref, dtype)
    assert out.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
@pytest.mark.parametrize("case", ["cin17_cout33_batch3_residual", "downsample_1x1_stride2_residual",
                                  "channels_last_residual", "groups8_residual"])
def test_in_place_residual_form(case, act, make_inputs, expected):
    """packed.into(residual, x) writes act(conv(x) + shift + residual) over the residual's own storage."""
    n, cin, h, w, cout, k, options = CASES[case]
    inputs = _on_cpu(make_inputs(n, cin, h, w, cout, k, **options))
    ref = expected(**inputs, act=act)
    residual = inputs.pop("residual").contiguous(memory_format=torch.channels_last)
    conv = {key: inputs.pop(key) for key in ("stride", "padding", "dilation", "groups")}
    packed = cpu.plan(inputs["x"], inputs["weight"], inputs["scale"], inputs["shift"], act=act, **conv)
    storage = residual.data_ptr()
    out = packed.into(residual, inputs["x"])
    assert out.data_ptr() == storage
    _check(out, ref, torch.float32)


def test_packed_call_reused_on_fresh_data(make_inputs, expected):
    inputs = _on_cpu(make_inputs(2, 16, 6, 5, 24, 3, padding=1, residual=True))
    conv = dict(stride=1, padding=1, dilation=1, groups=1)
    packed = cpu.plan(inputs["x"], inputs["weight"], inputs["scale"], inputs["shift"], act="relu6", **conv)
    for _ in range(3):
        x, residual = torch.randn_like(inputs["x"]), torch.randn_like(inputs["residual"])
        ref = expected(x, inputs["weight"], inputs["scale"], inputs["shift"], residual=residual, act="relu6", **conv)
        _check(packed(x, residual), ref, torch.float32)
        _check(packed(x.contiguous(memory_format=torch.channels_last)[:, :, :, :], residual), ref, torch.float32)


def test_non_contiguous_input_and_other_batch_than_packed(make_inputs, expected):
    inputs = _on_cpu(make_inputs(2, 8, 9, 7, 16, 3, padding=1))
    conv = dict(stride=1, padding=1, dilation=1, groups=1)
    packed = cpu.plan(inputs["x"], inputs["weight"], inputs["scale"], inputs["shift"], act="relu", **conv)
    wide = torch.randn(3, 16, 9, 7)[:, ::2]  # a channel-strided view, batch 3 where the weight was packed for 2
    _check(packed(wide), expected(wide, inputs["weight"], inputs["scale"], inputs["shift"], act="relu", **conv),
           torch.float32)


def test_prepared_op_on_cpu_runs_the_packed_call(make_inputs, expected):
    inputs = _on_cpu(make_inputs(1, 16, 5, 5, 16, 3, padding=1, channels_last=True))
    op = ConvBNAct(inputs["weight"], inputs["scale"], inputs["shift"], padding=1, act="relu")
    for _ in range(2):
        x = torch.randn_like(inputs["x"])
        _check(op(x), expected(x, inputs["weight"], inputs["scale"], inputs["shift"], padding=1, act="relu"),
               torch.float32)
    assert op.describe() == "cpu"
    with torch.no_grad():
        op.weight.mul_(2)  # a changed weight is packed again
    x = torch.randn_like(inputs["x"])
    _check(op(x), expected(x, inputs["weight"], inputs["scale"], inputs["shift"], padding=1, act="relu"),
           torch.float32)


DECLINED = {
    "float64": (dict(dtype=torch.float64), {}, "dtype"),
    "string_padding": ({}, dict(padding="same"), "arguments"),
    "wrong_groups": ({}, dict(groups=3), "arguments"),
    "short_scale": ({}, dict(scale=torch.ones(3)), "arguments"),
    "residual_shape": ({}, dict(residual=torch.ones(1, 8, 2, 2)), "arguments"),
}


@pytest.mark.parametrize("case", DECLINED.values(), ids=DECLINED.keys())
def test_declined_calls_go_to_the_reference(case):
    tensor_options, call_options, reason = case
    x = torch.randn(1, 4, 5, 5, dtype=tensor_options.get("dtype", torch.float32))
    weight = torch.randn(8, 4, 3, 3, dtype=x.dtype)
    chosen, why = route(x, weight, **call_options)
    assert chosen == "reference" and reason in why


def test_gradients_go_to_the_reference():
    x, weight = torch.randn(1, 4, 5, 5), torch.randn(8, 4, 3, 3, requires_grad=True)
    assert route(x, weight)[1].startswith("autograd")
    with torch.no_grad():
        assert route(x, weight)[0] == "cpu"
