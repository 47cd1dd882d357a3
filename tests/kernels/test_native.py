"""The native CPU kernels (archc_kernels/native.py) against PyTorch's ops: max pooling bit for bit (padding,
ceil mode, NaN), BN's affine map and activation within float32 rounding, on awkward shapes, strided inputs
and outputs written into poisoned slices of a larger tensor; and the generated forward without them."""
import pytest
import torch
import torch.nn.functional as F

from archc_kernels import native

if not native.available():
    pytest.skip("no C compiler: the native kernels are off", allow_module_level=True)


def channels_last(*shape):
    return torch.randn(*shape).contiguous(memory_format=torch.channels_last)


# id: (n, c, h, w, k, stride, pad, ceil)
POOLS = {
    "resnet_stem_3x3s2p1": (1, 64, 17, 17, (3, 3), (2, 2), (1, 1), False),
    "googlenet_3x3s1p1_ceil": (2, 17, 7, 7, (3, 3), (1, 1), (1, 1), True),
    "googlenet_3x3s2_ceil": (1, 33, 14, 14, (3, 3), (2, 2), (0, 0), True),
    "c1_odd_map": (3, 1, 5, 7, (2, 2), (2, 2), (0, 0), False),
    "c3_nonsquare_window_stride": (1, 3, 9, 8, (3, 2), (2, 3), (1, 1), True),
    "window_is_the_map": (1, 5, 3, 3, (3, 3), (1, 1), (0, 0), False),
}


@pytest.mark.parametrize("case", POOLS.values(), ids=POOLS.keys())
def test_maxpool_is_pytorchs_bit_for_bit(case):
    n, c, h, w, k, s, p, ceil = case
    x = channels_last(n, c, h, w)
    assert torch.equal(native.maxpool(x, k, s, p, ceil=ceil), F.max_pool2d(x, k, s, p, ceil_mode=ceil))


def test_maxpool_reads_and_writes_slices_and_propagates_nan():
    big = channels_last(2, 40, 9, 9)
    x = big[:, 8:24]  # a strided slice, as a concatenation's member
    x[0, 3, 4, 4] = float("nan")
    want = F.max_pool2d(x, 3, 2, 1)
    out_buf = torch.full((2, 50, 5, 5), float("nan")).contiguous(memory_format=torch.channels_last)
    out = out_buf[:, 10:26]
    got = native.maxpool(x, (3, 3), (2, 2), (1, 1), out=out)
    assert got.data_ptr() == out.data_ptr()
    assert torch.equal(got.isnan(), want.isnan()) and torch.equal(got.nan_to_num(), want.nan_to_num())
    assert out_buf[:, :10].isnan().all() and out_buf[:, 26:].isnan().all()  # nothing outside the slice written
    assert got[0, 3].isnan().any()


@pytest.mark.parametrize("act", sorted(native.ACTS))
@pytest.mark.parametrize("shape", [(1, 1, 3, 3), (3, 17, 5, 7), (2, 64, 4, 4)], ids=str)
def test_affine_act_matches_pytorch(shape, act):
    n, c, h, w = shape
    big = channels_last(n, c + 9, h, w)
    x = big[:, 5:5 + c]  # a concatenation's prefix: strided
    scale, shift = torch.randn(c), torch.randn(c)
    want = torch.addcmul(shift.view(1, -1, 1, 1), x.double(), scale.double().view(1, -1, 1, 1))
    want = {"none": want, "relu": want.relu(), "relu6": want.clamp(0, 6)}[act]
    got = native.affine_act(x, scale, shift, act)
    assert got.is_contiguous(memory_format=torch.channels_last)
    assert ((got.double() - want).norm() / want.norm()).item() < 1e-6


def test_generated_forward_without_native_kernels(monkeypatch):
    import archc
    from test_fuse import randomise_bn

    monkeypatch.setenv(native.ENV, "0")
    assert not native.available()
    model = randomise_bn(archc.build("densenet_bc100")).eval()
    fused = archc.fuse(model)
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        got, want = fused(x), model(x)
        source = fused.generated(x).source
    assert "affine" not in source and "maxpool" not in source
    assert ((got - want).norm() / want.norm()).item() < 1e-5
