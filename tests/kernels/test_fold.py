"""fold_bn / fold_weight against nn.BatchNorm2d in eval mode, in float64."""
import pytest
import torch
import torch.nn.functional as F

from archc_kernels import fold_bn, fold_weight

F64 = torch.float64


def _eval_bn(channels, eps, affine):
    bn = torch.nn.BatchNorm2d(channels, eps=eps, affine=affine).to(F64).eval()
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.05, 3.0)  # small variances make eps matter
    if affine:
        bn.weight.data.normal_()
        bn.bias.data.normal_()
    return bn


@pytest.mark.parametrize("conv_bias", [False, True], ids=["no_conv_bias", "conv_bias"])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "no_affine"])
@pytest.mark.parametrize("eps", [1e-5, 1e-3])
def test_fold_bn_equals_batchnorm_eval(eps, affine, conv_bias):
    bn = _eval_bn(7, eps, affine)
    bias = torch.randn(7, dtype=F64) if conv_bias else None
    conv_out = torch.randn(2, 7, 3, 4, dtype=F64)  # conv(x) before its bias

    scale, shift = fold_bn(bn.running_mean, bn.running_var, bn.weight, bn.bias, eps=eps, conv_bias=bias)

    assert scale.dtype == shift.dtype == torch.float32
    expect = bn(conv_out if bias is None else conv_out + bias.view(-1, 1, 1))
    got = conv_out * scale.to(F64).view(-1, 1, 1) + shift.to(F64).view(-1, 1, 1)
    assert ((got - expect).norm() / expect.norm()).item() < 1e-6  # float32 rounding of scale and shift

    scale, shift = fold_bn(bn.running_mean, bn.running_var, bn.weight, bn.bias, eps=eps, conv_bias=bias, dtype=F64)
    got = conv_out * scale.view(-1, 1, 1) + shift.view(-1, 1, 1)
    assert ((got - expect).norm() / expect.norm()).item() < 1e-14  # folded in float64 without rounding


def test_fold_bn_honours_eps():
    bn = _eval_bn(5, 1e-3, affine=True)
    assert not torch.allclose(fold_bn(bn.running_mean, bn.running_var, eps=1e-3)[0],
                              fold_bn(bn.running_mean, bn.running_var, eps=1e-5)[0], rtol=1e-4, atol=0)


@pytest.mark.parametrize("dtype", [F64, torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_fold_weight_moves_scale_into_conv(dtype):
    weight = torch.randn(6, 3, 3, 3, dtype=dtype)
    scale = torch.rand(6) + 0.5
    folded = fold_weight(weight, scale)

    assert folded.dtype == dtype
    assert torch.equal(folded, (weight.to(F64) * scale.to(F64).view(-1, 1, 1, 1)).to(dtype))  # rounded once
    x = torch.randn(2, 3, 5, 5, dtype=F64)
    wide = folded.to(F64)
    expect = F.conv2d(x, weight.to(F64)) * scale.to(F64).view(-1, 1, 1)
    assert ((F.conv2d(x, wide) - expect).norm() / expect.norm()).item() < 2 * torch.finfo(dtype).eps
