"""The few modules torch.nn lacks: n-ary joins, drop-path, zero channel padding, a connection-table conv,
LeNet-5's RBF output, and what the modern zoo needs: channel LayerNorm, a per-pixel Linear, a learned scale,
channel split and shuffle, a centre crop."""

from __future__ import annotations

import torch
import torch.nn.functional as F
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


class Mul(nn.Module):
    """The product of its inputs, broadcasting (squeeze-excitation: gate [N,C,1,1] times x [N,C,H,W])."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out * x
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
    """Stochastic depth on a residual branch: in training, zero the branch with probability p, per sample
    (mode "row") or for the whole batch ("batch"), and scale the survivors by 1/(1-p), so that evaluation
    (identity) sees the same expectation (torchvision's StochasticDepth)."""

    def __init__(self, p: float, mode: str = "row"):
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = 1.0 - self.p
        size = (x.shape[0], *([1] * (x.dim() - 1))) if self.mode == "row" else (1,) * x.dim()
        mask = torch.rand(size, device=x.device) < keep
        return x * mask.to(x.dtype) / keep

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels: per pixel of [N, C, H, W] (torchvision's LayerNorm2d: permute to NHWC, normalise
    the last dimension, permute back), or over the features of [N, F]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return super().forward(x)
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class PixelLinear(nn.Linear):
    """A Linear applied per pixel over the channels of [N, C, H, W] (ConvNeXt's Linear on NHWC); weight [out, C]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.movedim(1, -1), self.weight, self.bias).movedim(-1, 1)


class Scale(nn.Module):
    """x * weight, weight [C, 1, 1] (or [C] on [N, C]) starting at `init`: ConvNeXt's layer scale. The executor
    keys the weight by the op's own path (`layer_scale`), registering it on the enclosing module."""

    def __init__(self, shape: tuple, init: float):
        super().__init__()
        self.weight = nn.Parameter(torch.full((shape[0], *([1] * (len(shape) - 1))), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


class Chunk(nn.Module):
    """The index-th of `chunks` equal parts of the channels (a view)."""

    def __init__(self, chunks: int, index: int):
        super().__init__()
        self.chunks, self.index = chunks, index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.chunk(self.chunks, dim=1)[self.index]

    def extra_repr(self) -> str:
        return f"chunks={self.chunks}, index={self.index}"


class ChannelShuffle(nn.Module):
    """torchvision's `channel_shuffle`: view [N, g, C/g, H, W], transpose, contiguous, view back."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        x = x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).contiguous()
        return x.view(n, c, h, w)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class CenterCrop(nn.Module):
    """x cut to the height and width of `like`, centred (fewer rows and columns cut before when odd); a view."""

    def forward(self, x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        h, w = like.shape[-2:]
        top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
        return x[..., top:top + h, left:left + w]


class ScaledTanh(nn.Module):
    """scale * tanh(slope * x): LeNet-5's squashing function with scale 1.7159 and slope 2/3."""

    def __init__(self, scale: float, slope: float):
        super().__init__()
        self.scale, self.slope = scale, slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * torch.tanh(self.slope * x)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, slope={self.slope}"


class PadChannels(nn.Module):
    def __init__(self, out: int):
        super().__init__()
        self.out = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (0, 0, 0, 0, 0, self.out - x.shape[1]))


class PaddedConv2d(nn.Conv2d):
    """nn.Conv2d whose padding reaches past its window on some axis (outputs that see only padding): the input is
    padded explicitly and convolved without padding, the same values, because PyTorch's oneDNN convolution crashes
    on some such calls over channels_last data (archc_kernels.shapes.pads_past_window). Same parameters and
    state_dict as nn.Conv2d."""

    def forward(self, x):
        ph, pw = self.padding
        return F.conv2d(F.pad(x, (pw, pw, ph, ph)), self.weight, self.bias, self.stride, 0, self.dilation,
                        self.groups)


class TableConv2d(nn.Module):
    """A convolution whose output channel j sees only the input channels table[j] (LeNet-5's C3).
    Holds only the connected kernels: `weight` is [sum(len(row)), kh, kw]."""

    def __init__(self, in_channels, table, kernel_size, stride=1, padding=0, dilation=1, bias=True):
        super().__init__()
        self.in_channels, self.table = in_channels, [list(r) for r in table]
        self.stride, self.padding, self.dilation = stride, padding, dilation
        kh, kw = kernel_size
        fan_in = [len(r) * kh * kw for r in self.table]
        self.weight = nn.Parameter(torch.empty(sum(len(r) for r in self.table), kh, kw))
        self.bias = nn.Parameter(torch.empty(len(self.table))) if bias else None
        rows = torch.tensor([j for j, r in enumerate(self.table) for _ in r])
        cols = torch.tensor([i for r in self.table for i in r])
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        with torch.no_grad():  # the usual fan-in uniform init, per output channel
            bounds = torch.tensor([f ** -0.5 for f in fan_in])[rows]
            self.weight.uniform_(-1, 1).mul_(bounds[:, None, None])
            if self.bias is not None:
                self.bias.uniform_(-1, 1).mul_(torch.tensor([f ** -0.5 for f in fan_in]))

    def dense_weight(self) -> torch.Tensor:
        kh, kw = self.weight.shape[1:]
        w = self.weight.new_zeros(len(self.table), self.in_channels, kh, kw)
        return w.index_put((self.rows, self.cols), self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.dense_weight(), self.bias, self.stride, self.padding, self.dilation)


class RBF(nn.Module):
    """Euclidean RBF units y_i = sum_j (x_j - c_ij)^2 with fixed centres in {-1, +1} (LeNet-5's output;
    LeCun drew them as 7x12 bitmaps of the characters; here they are a seeded random +-1 code)."""

    def __init__(self, in_features: int, out: int):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.register_buffer("centres", torch.randint(0, 2, (out, in_features), generator=g).float() * 2 - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x[:, None, :] - self.centres) ** 2).sum(-1)
