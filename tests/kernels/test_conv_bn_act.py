"""The Triton kernels (conv.py, gemm1x1.py, depthwise.py, grouped.py), launched directly, against the float64
reference. Launched directly so that every shape reaches the kernel under test, including shapes the dispatcher
sends to another kernel. Each launch writes into a NaN-poisoned output.
"""
import pytest
import torch

from archc_kernels import ACTIVATIONS
from archc_kernels.dispatch import triton_importable

if not triton_importable():
    pytest.skip("triton is not importable", allow_module_level=True)

from archc_kernels.triton import common, conv, depthwise, gemm1x1, grouped  # noqa: E402

from .conftest import AWKWARD  # noqa: E402

KERNELS = {"conv": conv, "gemm1x1": gemm1x1, "depthwise": depthwise, "grouped": grouped}

# id: (n, cin, h, w, cout, k, make_inputs options): the shared awkward shapes, and this path's own
CONV_CASES = {
    **AWKWARD,
    "flat_k_cin5_dilation2_nonsquare": (2, 5, 8, 7, 20, (3, 2), dict(padding=(2, 1), dilation=2, residual=True)),
    "flat_k_groups2_cin_g6": (1, 12, 5, 5, 16, 3, dict(padding=1, groups=2)),
    "dilation2": (1, 16, 7, 7, 16, 3, dict(padding=2, dilation=2)),
    "groups32_k1x3": (1, 64, 2, 3, 64, (1, 3), dict(padding=(0, 1), groups=32)),  # 1x3: fewer interpreted steps
    "downsample_1x1_stride2": (3, 16, 5, 7, 33, 1, dict(stride=2)),
}

# id: (n, cin, h, w, cout, make_inputs options); gemm1x1 takes channels_last x
GEMM_CASES = {
    "cin1_cout1": (1, 1, 3, 5, 1, {}),
    "cin3_cout17_batch3": (3, 3, 5, 7, 17, {}),
    "cin33_cout33_residual": (1, 33, 4, 3, 33, dict(residual=True)),
    "spatial_1x1_batch3": (3, 17, 1, 1, 33, {}),
    "cin64_cout16_k_loop_residual": (2, 64, 3, 3, 16, dict(residual=True)),
    "folded_weight_no_scale": (1, 16, 3, 3, 16, dict(scale=False)),
    "downsample_stride2_odd_map_residual": (2, 24, 5, 7, 40, dict(stride=2, residual=True)),
    "stride_2x3": (1, 16, 6, 7, 17, dict(stride=(2, 3))),
}


# id: (n, cin, h, w, multiplier, k, make_inputs options); groups = cin, cout = multiplier * cin
DEPTHWISE_CASES = {
    "c1": (1, 1, 4, 5, 1, 3, dict(padding=1)),
    "c17_batch3_residual": (3, 17, 5, 4, 1, 3, dict(padding=1, residual=True)),
    "c33_stride2_k5_pad2": (1, 33, 9, 7, 1, 5, dict(stride=2, padding=2)),
    "multiplier2": (2, 8, 5, 5, 2, 3, dict(padding=1)),
    "multiplier3_pad0_nonsquare": (1, 5, 6, 4, 3, (3, 2), {}),
    "dilation2_pad3": (1, 16, 6, 6, 1, 3, dict(padding=3, dilation=2)),
    "spatial_1x1": (2, 24, 1, 1, 1, 3, dict(padding=1)),
    "channels_last_no_scale": (1, 40, 5, 5, 1, 3, dict(padding=1, channels_last=True, scale=False)),
}

# id: (n, cin, h, w, cout, k, groups, make_inputs options)
GROUPED_CASES = {
    "resnext_4_per_group": (2, 64, 5, 5, 64, 3, 16, dict(padding=1, channels_last=True)),
    "resnext_8_per_group_stride2": (1, 64, 7, 6, 64, 3, 8, dict(stride=2, padding=1, channels_last=True)),
    "groups_straddle_tiles_3_per_group": (1, 24, 4, 5, 33, 3, 3, dict(padding=1)),  # 8 in, 11 out per group
    "wider_out_than_in": (1, 16, 4, 4, 48, 3, 8, dict(padding=1, residual=True)),
    "wide_groups_k_loop": (1, 160, 3, 4, 32, 1, 2, {}),  # 80 input channels per group: 2 K blocks per tap
    "depthwise_shape": (1, 16, 5, 5, 16, 3, 16, dict(padding=1)),
    "ungrouped": (2, 17, 4, 3, 19, 3, 1, dict(padding=1, residual=True)),
    "dilation2_nonsquare": (1, 32, 7, 6, 32, (3, 1), 8, dict(padding=(2, 0), dilation=2)),
}


@pytest.fixture
def launch(expected, check, poisoned):
    """launch(kernel, inputs, act=..., config=...): run into a poisoned output, check, return the output."""

    def run(kernel, inputs, act="relu", config=None):
        ref = expected(**inputs, act=act)
        out = kernel.conv_bn_act(**inputs, act=act, out=poisoned(ref.shape, inputs["x"].dtype), config=config)
        check(out, ref)
        return out

    return run


@pytest.mark.parametrize("case", CONV_CASES.values(), ids=CONV_CASES.keys())
def test_conv_matches_reference(case, dtype, make_inputs, launch):
    n, cin, h, w, cout, k, options = case
    launch(conv, make_inputs(n, cin, h, w, cout, k, dtype=dtype, **options))


@pytest.mark.parametrize("case", GEMM_CASES.values(), ids=GEMM_CASES.keys())
def test_gemm1x1_matches_reference(case, dtype, make_inputs, launch):
    n, cin, h, w, cout, options = case
    launch(gemm1x1, make_inputs(n, cin, h, w, cout, 1, dtype=dtype, channels_last=True, **options))


@pytest.mark.parametrize("case", DEPTHWISE_CASES.values(), ids=DEPTHWISE_CASES.keys())
def test_depthwise_matches_reference(case, dtype, make_inputs, launch):
    n, c, h, w, multiplier, k, options = case
    launch(depthwise, make_inputs(n, c, h, w, multiplier * c, k, groups=c, dtype=dtype, **options))


@pytest.mark.parametrize("case", GROUPED_CASES.values(), ids=GROUPED_CASES.keys())
def test_grouped_matches_reference(case, dtype, make_inputs, launch):
    n, cin, h, w, cout, k, groups, options = case
    launch(grouped, make_inputs(n, cin, h, w, cout, k, groups=groups, dtype=dtype, **options))


def _typical_inputs(name, make_inputs, dtype=torch.float32, c=16, size=(3, 5), residual=True):
    """Operands each kernel takes: 1x1 for gemm1x1, depthwise 3x3, 4 channels per group, or a plain 3x3."""
    k = 1 if name == "gemm1x1" else 3
    groups = {"depthwise": c, "grouped": c // 4}.get(name, 1)
    return make_inputs(2, c, *size, c, k, groups=groups, dtype=dtype, padding=k // 2, channels_last=True,
                       residual=residual)


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
@pytest.mark.parametrize("name", KERNELS)
def test_activations(name, act, make_inputs, launch):
    inputs = _typical_inputs(name, make_inputs)
    inputs["residual"] *= 8  # reach relu6's upper clamp and the saturating ends of sigmoid and tanh
    launch(KERNELS[name], inputs, act=act)


def test_activation_codes_cover_the_reference():
    """Every activation archc ships has a Triton form (a plugin's may not: the Triton path then declines it)."""
    assert common.ACT_CODES.keys() == ACTIVATIONS.keys()
    assert sorted(common.ACT_CODES.values()) == list(range(len(ACTIVATIONS)))


@pytest.mark.parametrize("view", ["channel_slice", "spatial_stride"])
@pytest.mark.parametrize("name", ["conv", "depthwise", "grouped"])
def test_reads_non_contiguous_input(name, view, dtype, make_inputs, launch):
    inputs = _typical_inputs(name, make_inputs, dtype, c=12, size=(5, 6), residual=False)
    big = torch.randn(2, 20, 11, 13, device=inputs["x"].device).to(dtype)
    inputs["x"] = big[:, 3:15, 2:7, 1:7] if view == "channel_slice" else big[:, 3:15, ::2, ::2][:, :, :5, :6]
    assert not inputs["x"].is_contiguous() and not inputs["x"].is_contiguous(memory_format=torch.channels_last)
    launch(KERNELS[name], inputs)


@pytest.mark.parametrize("name", KERNELS)
def test_allocates_channels_last_output_in_input_dtype(name, dtype, make_inputs):
    out = KERNELS[name].conv_bn_act(**_typical_inputs(name, make_inputs, dtype, residual=False))
    assert out.dtype == dtype and out.is_contiguous(memory_format=torch.channels_last)


def test_launchers_reject_what_they_cannot_compute(make_inputs):
    nchw = make_inputs(1, 16, 3, 3, 16, 1)
    with pytest.raises(ValueError, match="channels_last"):
        gemm1x1.conv_bn_act(**nchw)
    with pytest.raises(ValueError, match="padding 0"):
        gemm1x1.conv_bn_act(**make_inputs(1, 16, 3, 3, 16, 1, channels_last=True, padding=1))
    with pytest.raises(ValueError, match="does not fit"):
        conv.conv_bn_act(**{**nchw, "groups": 3})
    with pytest.raises(ValueError, match="scale"):
        conv.conv_bn_act(**{**nchw, "scale": torch.ones(15, device=nchw["x"].device)})
    with pytest.raises(ValueError, match="groups == Cin"):
        depthwise.conv_bn_act(**make_inputs(1, 16, 3, 3, 16, 3, groups=8))
    with pytest.raises(ValueError, match="does not fit the padded"):
        grouped.conv_bn_act(**make_inputs(1, 16, 2, 2, 16, 3, groups=4))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="autotuning configs compile for a GPU")
@pytest.mark.parametrize("gpu_dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("name", KERNELS)
def test_every_autotune_config_on_gpu(name, gpu_dtype, make_inputs, launch):
    inputs = _typical_inputs(name, make_inputs, gpu_dtype, c=96, size=(11, 9))
    for config in KERNELS[name].CONFIGS:
        launch(KERNELS[name], inputs, config=config)
