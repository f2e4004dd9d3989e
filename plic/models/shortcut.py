"""Linear wavelet shortcuts beside the nonlinear transforms (AuxT; Li et al., ICLR 2025).

AuxT ("On disentangled training for nonlinear transform in learned image
compression") adds to the analysis a purely linear path: at each stride-2
stage a Haar wavelet split, a learned per-subband scale and a near-orthogonal
1x1 linear map, whose output is added to the nonlinear stage's output; the
synthesis mirrors it. The linear path compacts the energy at once, so the
nonlinear layers only have to learn what it misses: the paper reports 2-3x
faster convergence. That is the point for plic, whose models train on a CPU.

The path stays in the model at inference (as in the paper's code): the
nonlinear layers are trained around it, so it cannot be dropped afterwards.
It is cheap (a 2x2 transform and a 1x1 convolution per stage) and local: each
latent depends on its own 16x16 block only, so tiled coding is unaffected.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from plic.models.layers import LayersWithExtras

#: weight of the orthogonality penalty in the training loss (the paper's ``--ortho 0.1``)
ORTHO_WEIGHT = 0.1


def _haar_kernels(channels: int, like: Tensor) -> Tensor:
    """Orthonormal 2x2 Haar filters (LL, LH, HL, HH) for each channel, channel-major as a grouped convolution wants."""
    k = torch.tensor([[[1, 1], [1, 1]], [[1, 1], [-1, -1]], [[1, -1], [1, -1]], [[1, -1], [-1, 1]]],
                     dtype=like.dtype, device=like.device) / 2
    return k[:, None].repeat(channels, 1, 1, 1)  # (4C, 1, 2, 2)


def haar_split(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, 4C, H/2, W/2): the four subbands of every channel, subband-major."""
    c = x.shape[1]
    out = F.conv2d(x, _haar_kernels(c, x), stride=2, groups=c)
    b, _, h, w = out.shape
    return out.view(b, c, 4, h, w).transpose(1, 2).reshape(b, 4 * c, h, w)


def haar_merge(x: Tensor) -> Tensor:
    """The inverse of :func:`haar_split` (the filters are orthonormal: the transpose inverts)."""
    b, c4, h, w = x.shape
    c = c4 // 4
    channel_major = x.view(b, 4, c, h, w).transpose(1, 2).reshape(b, c4, h, w)
    return F.conv_transpose2d(channel_major, _haar_kernels(c, x), stride=2, groups=c)


def _subband_scales(channels: int) -> nn.Parameter:
    # log-scales, as AuxT initialises them: the three subbands that hold most of
    # a natural image's energy start amplified (e^0.5), the diagonal one at 1
    return nn.Parameter(torch.cat([torch.full((3 * channels,), 0.5), torch.zeros(channels)]).view(1, -1, 1, 1))


class WaveletShortcut(nn.Module):
    """One analysis stage of the linear path: Haar split, subband scales, 1x1 linear map."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.log_scale = _subband_scales(in_channels)
        self.linear = nn.Conv2d(4 * in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(haar_split(x) * self.log_scale.exp())


class InverseWaveletShortcut(nn.Module):
    """One synthesis stage of the linear path: 1x1 linear map, subband scales undone, Haar merge."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.log_scale = _subband_scales(out_channels)
        self.linear = nn.Conv2d(in_channels, 4 * out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return haar_merge(self.linear(x) / self.log_scale.exp())


def orthogonality_penalty(module: nn.Module) -> Tensor:
    """Sum over the shortcuts' linear maps of MSE(W W^T, I) on the smaller side: keeps them near-orthogonal."""
    total = None
    for m in module.modules():
        if isinstance(m, (WaveletShortcut, InverseWaveletShortcut)):
            w = m.linear.weight.flatten(1)  # (out, in)
            gram = w @ w.t() if w.shape[0] <= w.shape[1] else w.t() @ w
            term = F.mse_loss(gram, torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device))
            total = term if total is None else total + term
    if total is None:
        raise ValueError("no wavelet shortcuts in this module")
    return total


class WithShortcuts(LayersWithExtras):
    """A transform (its layers, indexed as before) plus a linear path added after the layers ``taps``.

    The path runs on its own (each shortcut takes the previous shortcut's
    output, starting from the transform's input); at each tap its output joins
    the transform's.
    """

    EXTRAS = ("_shortcuts",)

    def __init__(self, layers: Sequence[nn.Module], shortcuts: Sequence[nn.Module], taps: Sequence[int]):
        super().__init__(*layers)
        if len(shortcuts) != len(taps):
            raise ValueError("one shortcut per tap")
        self.taps = tuple(int(t) for t in taps)
        self._shortcuts = nn.ModuleList(shortcuts)

    def forward(self, x: Tensor) -> Tensor:
        side, k = x, 0
        for i, layer in enumerate(self):
            x = layer(x)
            if k < len(self.taps) and i == self.taps[k]:
                side = self._shortcuts[k](side)
                x = x + side
                k += 1
        return x
