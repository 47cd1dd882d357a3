"""The few modules torch.nn lacks: n-ary joins and drop-path."""

from __future__ import annotations

import torch
from torch import nn


class Concat(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return xs[0] if len(xs) == 1 else torch.cat(xs, 1)


class Add(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Mean(nn.Module):
    """Elementwise mean. In training with drop_path > 0, each input is dropped independently per sample
    with probability drop_path, at least one input survives, and the mean is over the survivors
    (FractalNet's local drop-path)."""

    def __init__(self, drop_path: float = 0.0):
        super().__init__()
        self.drop_path = drop_path

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.drop_path > 0 and len(xs) > 1):
            return torch.stack(xs).mean(0)
        n, batch = len(xs), xs[0].shape[0]
        keep = torch.rand(n, batch, device=xs[0].device) >= self.drop_path
        rescue = torch.randint(n, (batch,), device=xs[0].device)
        keep[rescue, torch.arange(batch, device=xs[0].device)] |= ~keep.any(0)
        keep = keep.to(xs[0].dtype).view(n, batch, *([1] * (xs[0].dim() - 1)))
        return (torch.stack(xs) * keep).sum(0) / keep.sum(0)

    def extra_repr(self) -> str:
        return f"drop_path={self.drop_path}"


class DropPath(nn.Module):
    """Stochastic depth on a residual branch: in training, zero the branch per sample with probability p
    and scale the survivors by 1/(1-p), so that evaluation (identity) sees the same expectation."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = 1.0 - self.p
        mask = torch.rand(x.shape[0], *([1] * (x.dim() - 1)), device=x.device) < keep
        return x * mask.to(x.dtype) / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"
