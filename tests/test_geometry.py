"""One output-size rule per side — the torch-free compiler's (archc.ir.ops.window_out, which the op table's shape
rules use) and the kernels' (archc_kernels.shapes.conv_output_hw) — both equal to PyTorch's own over a grid of
kernel, stride, padding, dilation and ceil mode."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from archc.ir.ops import window_out
from archc_kernels.shapes import conv_output_hw

GRID = list(itertools.product((1, 2, 3, 5), (1, 2, 3), (0, 1, 2), (1, 2)))


@pytest.mark.parametrize("ceil", [False, True], ids=["floor", "ceil"])
@pytest.mark.parametrize("k,s,p,d", GRID, ids=lambda v: str(v))
def test_output_size_rules_agree_with_pytorch(k, s, p, d, ceil):
    pooling = 2 * p <= k  # PyTorch's pooling takes padding up to half the window
    for size in range(1, 13):
        got = (window_out(size, k, s, p, d, ceil), window_out(size + 1, k, s, p, d, ceil))
        assert conv_output_hw((size, size + 1), (k, k), (s, s), (p, p), (d, d), ceil) == got
        if pooling:
            try:
                want = tuple(F.max_pool2d(torch.zeros(1, 1, size, size + 1), k, s, p, d, ceil_mode=ceil).shape[2:])
            except RuntimeError:  # PyTorch refuses an empty output
                want = None
            assert got == want if want is not None else min(got) < 1, (size, got, want)
        if not ceil and min(got) >= 1:
            conv = F.conv2d(torch.zeros(1, 1, size, size + 1), torch.zeros(1, 1, k, k), None, s, p, d)
            assert tuple(conv.shape[2:]) == got
