"""Backend choice, kernel routing, and the fallback's answers through the public conv_bn_act."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import archc_kernels
from archc_kernels import backend_for, conv_bn_act, cpu, route
from archc_kernels.dispatch import triton_importable

REPO = Path(__file__).resolve().parents[2]
needs_triton = pytest.mark.skipif(not triton_importable(), reason="triton is not importable")


def test_importing_the_package_does_not_import_triton():
    probe = "import sys, archc_kernels; sys.exit('triton' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    assert subprocess.run([sys.executable, "-c", probe], env=env, cwd=REPO).returncode == 0


def test_backend_env_var(monkeypatch, device):
    x = torch.zeros(1, device=device)
    auto = "triton" if x.is_cuda and triton_importable() else "cpu" if cpu.available() and not x.is_cuda else \
        "reference"
    assert backend_for(x) == auto
    monkeypatch.setenv("ARCHC_KERNELS", "auto")
    assert backend_for(x) == auto
    monkeypatch.setenv("ARCHC_KERNELS", "reference")
    assert backend_for(x) == "reference"
    monkeypatch.setenv("ARCHC_KERNELS", "cudnn")
    with pytest.raises(ValueError, match="ARCHC_KERNELS"):
        backend_for(x)


def test_cpu_tensors_never_pick_triton_unless_forced(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert backend_for(torch.zeros(1)) == ("cpu" if cpu.available() else "reference")


@pytest.mark.skipif(not cpu.available(), reason="this PyTorch lacks oneDNN's fused convolution ops")
def test_forcing_cpu(monkeypatch):
    monkeypatch.setenv("ARCHC_KERNELS", "cpu")
    assert backend_for(torch.zeros(1)) == "cpu"
    monkeypatch.setattr(cpu, "available", lambda: False)
    with pytest.raises(RuntimeError, match="ARCHC_KERNELS=cpu"):
        backend_for(torch.zeros(1))


@needs_triton
def test_forcing_triton(monkeypatch, device):
    monkeypatch.setenv("ARCHC_KERNELS", "triton")
    if device == "cpu":
        assert backend_for(torch.zeros(1)) == "triton"  # conftest turned the interpreter on
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="CPU tensors under TRITON_INTERPRET=1"):
        backend_for(torch.zeros(1))


def _conv_args(device, n=2, cin=16, h=5, w=5, cout=32, k=3, dtype=torch.float32, channels_last=True, groups=1):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(n, cin, h, w, device=device).to(dtype).contiguous(memory_format=fmt)
    weight = torch.randn(cout, cin // groups, k, k, device=device).to(dtype) / (cin // groups * k * k) ** 0.5
    return x, weight


# id: (x/weight options, conv options, expected route, reason fragment or None)
ROUTES = {
    "1x1_channels_last": (dict(k=1), {}, "triton.gemm1x1", None),
    "1x1_nchw": (dict(k=1, channels_last=False), {}, "triton.conv", None),
    "1x1_stride2": (dict(k=1), dict(stride=2), "triton.gemm1x1", None),
    "1x1_padded": (dict(k=1), dict(padding=1), "triton.conv", None),
    "1x1_grouped": (dict(k=1, cin=32, groups=2), dict(groups=2), "triton.grouped", None),
    "3x3": (dict(), dict(padding=1), "triton.conv", None),
    "groups2_width16": (dict(cin=32, groups=2), dict(groups=2, padding=1), "triton.grouped", "per group"),
    "groups2_width64": (dict(cin=128, cout=128, groups=2), dict(groups=2, padding=1), "triton.conv", None),
    "depthwise": (dict(groups=16, cout=16), dict(groups=16, padding=1), "triton.depthwise", "depthwise"),
    "depthwise_multiplier2_stride2": (dict(groups=16, cout=32), dict(groups=16, stride=2), "triton.depthwise", None),
    "resnext_32x4d": (dict(cin=128, cout=128, groups=32), dict(groups=32, padding=1), "triton.grouped", "groups"),
    "resnext_32x8d_1x1": (dict(cin=256, cout=256, groups=32, k=1), dict(groups=32), "triton.grouped", None),
    "float64": (dict(dtype=torch.float64), {}, "reference", "dtype"),
    "string_padding": (dict(), dict(padding="same"), "reference", "arguments"),
    "wrong_groups": (dict(), dict(groups=3), "reference", "arguments"),
}


@needs_triton
@pytest.mark.parametrize("case", ROUTES.values(), ids=ROUTES.keys())
def test_route(case, monkeypatch, device):
    tensor_options, conv_options, kernel, reason = case
    monkeypatch.setenv("ARCHC_KERNELS", "triton")
    x, weight = _conv_args(device, **tensor_options)
    chosen, why = route(x, weight, **conv_options)
    assert chosen == kernel
    if reason:
        assert reason in why


@needs_triton
def test_route_declines_mixed_dtypes_and_bad_vectors(monkeypatch, device):
    monkeypatch.setenv("ARCHC_KERNELS", "triton")
    x, weight = _conv_args(device)
    assert route(x, weight.half())[0] == "reference"
    assert route(x, weight, torch.ones(31, device=device))[0] == "reference"
    assert route(x, weight, residual=torch.ones(2, 32, 2, 2, device=device))[0] == "reference"


@needs_triton
def test_tensors_that_need_gradients_go_to_the_reference(monkeypatch, device):
    monkeypatch.setenv("ARCHC_KERNELS", "triton")
    x, weight = _conv_args(device)
    weight.requires_grad_(True)
    assert route(x, weight)[1] == "autograd: the kernels have no backward"
    conv_bn_act(x, weight).sum().backward()
    assert weight.grad is not None
    with torch.no_grad():
        assert route(x, weight)[0] == "triton.conv"


@needs_triton
@pytest.mark.skipif(torch.cuda.is_available(), reason="the interpreter's bf16 limit")
def test_interpreter_declines_bfloat16(monkeypatch):
    monkeypatch.setenv("ARCHC_KERNELS", "triton")
    assert route(*_conv_args("cpu", dtype=torch.bfloat16))[1].startswith("the Triton interpreter")


@needs_triton
@pytest.mark.parametrize("case", ["depthwise", "depthwise_multiplier2_stride2", "resnext_32x4d", "1x1_channels_last",
                                  "groups2_width16", "float64"])
def test_public_api_answers_on_every_route(case, monkeypatch, device, expected, check):
    tensor_options, conv_options, _, _ = ROUTES[case]
    monkeypatch.setenv("ARCHC_KERNELS", "triton")
    x, weight = _conv_args(device, **tensor_options)
    cout = weight.shape[0]
    scale, shift = torch.rand(cout, device=device) + 0.5, torch.randn(cout, device=device)
    out = conv_bn_act(x, weight, scale, shift, act="relu6", **conv_options)
    check(out, expected(x, weight, scale, shift, act="relu6", **conv_options))


def test_invalid_calls_raise_on_either_backend(monkeypatch, device):
    x, weight = _conv_args(device)
    for backend in ["reference"] + (["triton"] if triton_importable() else []) + (["cpu"] if cpu.available() and
                                                                                  device == "cpu" else []):
        monkeypatch.setenv("ARCHC_KERNELS", backend)
        with pytest.raises(RuntimeError):
            conv_bn_act(x, weight, groups=3)  # the reference raises PyTorch's own error
        with pytest.raises(ValueError, match="unknown activation"):
            conv_bn_act(x, weight, act="swish")


def test_public_exports():
    assert {"conv_bn_act", "bottleneck", "fold_bn", "backend_for"} <= set(archc_kernels.__all__)
