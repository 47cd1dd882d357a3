"""The reference conv_bn_act (the specification) against plain nn modules, in float64."""
import pytest
import torch
import torch.nn.functional as F

from archc_kernels import ACTIVATIONS, fold_bn, fold_weight, reference

F64 = torch.float64


def op_module(act: str) -> torch.nn.Module:
    """What a spec's op of that name computes: its lowering, at its default arguments."""
    from archc.backends.torch.lower import LOWERINGS
    from archc.ir.ops import OPS
    from archc.spec.kinds import REQUIRED

    if act == "none":
        return torch.nn.Identity()
    attrs = {k: a.default for k, a in OPS[act].args.items() if a.default is not REQUIRED}
    assert OPS[act].act(attrs) == act
    return LOWERINGS[act](attrs, [(4, 5, 5)])


def test_the_kernels_activations_are_the_ops_a_fused_conv_absorbs():
    """One table on each side: archc_kernels.ACTIVATIONS, and the op table's FUSABLE ops (which the fuser and
    conv_bn_act's `act` argument take theirs from)."""
    from archc.ir.ops import fusable_activations

    assert set(ACTIVATIONS) - {"none"} == fusable_activations()


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_every_form_of_an_activation_is_its_ops_function(act):
    """The reference's in-place form (what the CPU paths run when they do not fuse) equals the op's module, over
    a range that reaches every clamp and saturation."""
    x = torch.linspace(-12, 12, 2001, dtype=F64).view(1, 1, 1, -1)
    want = op_module(act).to(F64)(x)
    inplace = ACTIVATIONS[act].inplace
    got = x.clone() if inplace is None else inplace(x.clone())
    assert torch.allclose(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("folded", [False, True], ids=["scale_shift", "folded_weight"])
@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_matches_conv_bn_act_modules(act, folded):
    conv = torch.nn.Conv2d(6, 10, 3, stride=2, padding=1, groups=2, bias=True).to(F64)
    bn = torch.nn.BatchNorm2d(10, eps=1e-3).to(F64).eval()
    for stat, fill in ((bn.running_mean, torch.Tensor.normal_), (bn.running_var, torch.Tensor.exponential_),
                       (bn.weight.data, torch.Tensor.normal_), (bn.bias.data, torch.Tensor.normal_)):
        fill(stat)
    x = torch.randn(3, 6, 7, 5, dtype=F64)
    residual = torch.randn(3, 10, 4, 3, dtype=F64)
    scale, shift = fold_bn(bn.running_mean, bn.running_var, bn.weight, bn.bias, eps=bn.eps, conv_bias=conv.bias)

    weight, scale = (fold_weight(conv.weight, scale), None) if folded else (conv.weight, scale)
    with torch.no_grad():
        got = reference.conv_bn_act(x, weight, scale, shift, stride=2, padding=1, groups=2, act=act,
                                    residual=residual)
        expect = op_module(act).to(F64)(bn(conv(x)) + residual)
    assert ((got - expect).norm() / expect.norm()).item() < 1e-6  # float32 scale / shift


def test_folded_path_is_one_conv_with_bias():
    x, w, b = torch.randn(2, 4, 6, 6), torch.randn(8, 4, 3, 3), torch.randn(8)
    assert torch.equal(reference.conv_bn_act(x, w, None, b, padding=1), F.relu(F.conv2d(x, w, b, padding=1)))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_low_precision_keeps_dtype_with_float32_scale_and_shift(dtype):
    x, w = torch.randn(1, 4, 5, 5, dtype=dtype), torch.randn(8, 4, 1, 1, dtype=dtype)
    scale, shift = torch.rand(8) + 0.5, torch.randn(8)
    assert reference.conv_bn_act(x, w, scale, shift).dtype == dtype
    assert reference.conv_bn_act(x, w, None, shift).dtype == dtype


def test_none_means_no_activation_and_unknown_names_fail():
    x, w = torch.randn(1, 2, 4, 4), torch.randn(3, 2, 1, 1)
    assert torch.equal(reference.conv_bn_act(x, w, act=None), F.conv2d(x, w))
    with pytest.raises(ValueError, match="unknown activation"):
        reference.conv_bn_act(x, w, act="mish")
