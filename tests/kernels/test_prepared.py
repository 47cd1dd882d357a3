"""ConvBNAct: routed and prepared once per kind of input, prepared again when the input or its tensors change."""
import pytest
import torch

from archc_kernels import ConvBNAct
from archc_kernels.dispatch import triton_importable

needs_triton = pytest.mark.skipif(not triton_importable(), reason="triton is not importable")


@pytest.fixture
def counted(monkeypatch):
    """counted(op) -> list that grows by one per preparation op makes."""

    def watch(op):
        prepared = []
        original = op._prepare

        def prepare(x, residual):
            result = original(x, residual)
            prepared.append(result[0])
            return result

        monkeypatch.setattr(op, "_prepare", prepare)
        return prepared

    return watch


def _op(device, cin=16, cout=16, k=3, groups=1, act="relu6", **conv):
    weight = (torch.randn(cout, cin // groups, k, k, device=device) / (cin // groups * k * k) ** 0.5)
    scale, shift = torch.rand(cout, device=device) + 0.5, torch.randn(cout, device=device)
    return ConvBNAct(weight.contiguous(memory_format=torch.channels_last), scale, shift, groups=groups, act=act,
                     padding=k // 2, **conv)


def _x(device, n=2, c=16, h=5, w=4):
    return torch.randn(n, c, h, w, device=device).contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("backend", ["reference", pytest.param("triton", marks=needs_triton)])
@pytest.mark.parametrize("groups", [1, 4, 16], ids=["dense", "grouped", "depthwise"])
def test_same_function_as_the_reference(backend, groups, monkeypatch, device, expected, check):
    monkeypatch.setenv("ARCHC_KERNELS", backend)
    op = _op(device, groups=groups)
    for _ in range(2):  # the second call runs the kept plan
        x = _x(device)
        residual = torch.randn(2, 16, 5, 4, device=device)
        check(op(x, residual), expected(x, op.weight, op.scale, op.shift, residual=residual, act="relu6",
                                        padding=1, groups=groups))


@needs_triton
def test_prepares_once_per_kind_of_input(monkeypatch, device, counted):
    monkeypatch.setenv("ARCHC_KERNELS", "triton")
    op = _op(device)
    prepared = counted(op)
    x = _x(device)
    op(x), op(_x(device)), op(x)
    assert prepared == ["triton.conv"]
    assert op.describe().startswith("triton.conv BLOCK_M=")
    op(_x(device, n=3))  # a new shape
    op(x.contiguous())  # new strides
    op(x, residual=torch.randn(2, 16, 5, 4, device=device))  # a residual
    assert len(prepared) == 4
    monkeypatch.setenv("ARCHC_KERNELS", "reference")
    op(x)
    assert prepared[-1] == "reference"


@needs_triton
def test_in_place_weight_changes_are_seen(monkeypatch, device, expected, check):
    monkeypatch.setenv("ARCHC_KERNELS", "triton")
    op = _op(device)
    x = _x(device)
    op(x)
    with torch.no_grad():
        op.weight.mul_(-2.0)
        op.shift.add_(1.0)
    check(op(x), expected(x, op.weight, op.scale, op.shift, act="relu6", padding=1))


@needs_triton
def test_autograd_goes_to_the_reference(monkeypatch, device, counted):
    monkeypatch.setenv("ARCHC_KERNELS", "triton")
    op = _op(device)
    prepared = counted(op)
    x = _x(device).requires_grad_(True)
    op(x).sum().backward()
    assert x.grad is not None and prepared == ["reference"]
    with torch.no_grad():
        op(x)
    assert prepared == ["reference", "triton.conv"]


def test_cache_is_bounded(monkeypatch, device):
    monkeypatch.setenv("ARCHC_KERNELS", "reference")
    op = _op(device)
    for n in range(1, ConvBNAct.MAX_PLANS + 3):
        op(_x(device, n=n, h=1, w=1))
    assert len(op._plans) <= ConvBNAct.MAX_PLANS


def test_new_data_and_copies_prepare_afresh(monkeypatch, device, expected, check):
    """module.to(...) gives parameters new data; a deep copy holds its own tensors and no launches."""
    import copy

    monkeypatch.setenv("ARCHC_KERNELS", "reference")
    weight = torch.nn.Parameter(torch.randn(16, 16, 3, 3, device=device) / 12, requires_grad=False)
    op = ConvBNAct(weight, None, None, padding=1, act="none")
    x = _x(device)
    op(x)
    weight.data = weight.data.double()
    check(op(x.double()), expected(x.double(), weight, act="none", padding=1), torch.float64)
    twin = copy.deepcopy(op)
    assert twin._plans == {} and twin.weight is not weight
    check(twin(x.double()), expected(x.double(), weight, act="none", padding=1), torch.float64)
