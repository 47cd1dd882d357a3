"""CudaGraph: a module's forward replayed from captured CUDA graphs (GPU only, but for the refusal)."""
import pytest
import torch
from torch import nn

from archc_kernels import ConvBNAct, CudaGraph

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")


class Fused(nn.Module):
    """Two prepared convs, the second adding the first's input: what archc.fuse's modules run."""

    def __init__(self, c=16):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(c, c, 3, 3) / 12, requires_grad=False)
        self.w2 = nn.Parameter(torch.randn(c, c, 1, 1) / 4, requires_grad=False)
        self.b = nn.Parameter(torch.randn(c), requires_grad=False)
        self.op1 = ConvBNAct(self.w1, None, self.b, padding=1, act="relu")
        self.op2 = ConvBNAct(self.w2, None, None, act="relu6")

    def forward(self, x):
        return self.op2(self.op1(x), x)


def test_refuses_cpu_tensors():
    with pytest.raises(ValueError, match="CUDA"):
        CudaGraph(Fused())(torch.randn(1, 16, 4, 4))


@needs_cuda
@pytest.mark.parametrize("clone", [True, False])
def test_replays_the_module(clone, monkeypatch):
    monkeypatch.setenv("ARCHC_KERNELS_TUNE", "0")
    module = Fused().cuda()
    graphed = CudaGraph(module, clone=clone)
    outs = []
    for n in (2, 2, 3):  # a second call replays; a new batch size captures anew
        x = torch.randn(n, 16, 5, 6, device="cuda").contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            expect = module(x)
        out = graphed(x)
        assert torch.allclose(out, expect, rtol=1e-5, atol=1e-5)
        outs.append(out)
    assert len(graphed._graphs) == 2
    if not clone:  # the static output is overwritten by the next replay of the same graph
        assert outs[0].data_ptr() == outs[1].data_ptr()
    else:
        assert outs[0].data_ptr() != outs[1].data_ptr()
