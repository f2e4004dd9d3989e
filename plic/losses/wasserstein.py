"""Wasserstein distortion (Qiu et al. 2024; Balle et al. 2025, "Good, cheap, and fast").

At every position, the feature statistics of the two images (local mean and
standard deviation of each channel, pooled over a window whose size is set
per pixel by ``log2_sigma``) are compared with the 2-Wasserstein distance of
1-D Gaussians, ``(mu_a - mu_b)^2 + (s_a - s_b)^2``. Where sigma is 0 this is
the squared feature difference (fidelity); where it is large, only texture
statistics must match (realism) -- one distortion spans both. The image
itself is the first "feature" map, followed by VGG16 layers.

Pooling uses a pyramid of box filters of width ``2^k + 1`` (k = 0..levels-1);
a per-pixel ``log2_sigma`` blends the two nearest levels.
"""

from __future__ import annotations

from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from plic.metrics.vgg import RELU_LAYERS, VGGFeatures


def _local_stats(f: Tensor, k: int):
    if k == 0:
        return f, torch.zeros_like(f)
    size = 2**k + 1
    pad = size // 2
    fp = F.pad(f, (pad, pad, pad, pad), mode="replicate")
    mu = F.avg_pool2d(fp, size, stride=1)
    var = F.avg_pool2d(fp * fp, size, stride=1) - mu * mu
    return mu, torch.sqrt(var.clamp_min(0) + 1e-12)


def wasserstein_map(fa: Tensor, fb: Tensor, log2_sigma: Tensor, levels: int) -> Tensor:
    """Per-pixel distortion (N x 1 x H x W) of one feature map pair for a log2 pooling size map."""
    s = log2_sigma.clamp(0, levels - 1)
    s = F.interpolate(s, size=fa.shape[-2:], mode="bilinear", align_corners=False) if s.shape[-2:] != fa.shape[-2:] else s
    out = torch.zeros_like(s)
    for k in range(levels):
        weight = (1 - (s - k).abs()).clamp_min(0)  # linear blend between neighbouring levels
        if not bool(weight.gt(0).any()):
            continue
        ma, sa = _local_stats(fa, k)
        mb, sb = _local_stats(fb, k)
        d = ((ma - mb) ** 2 + (sa - sb) ** 2).mean(1, keepdim=True)
        out = out + weight * d
    return out


class WassersteinDistortion(nn.Module):
    def __init__(self, layers: Sequence[int] = RELU_LAYERS, levels: int = 5):
        super().__init__()
        self.vgg = VGGFeatures(layers)
        self.levels = levels

    def forward(self, x_hat: Tensor, x: Tensor, log2_sigma: Tensor | float = 0.0) -> Tensor:
        """Mean Wasserstein distortion; ``log2_sigma`` is a float or an N x 1 x H x W map."""
        if not torch.is_tensor(log2_sigma):
            log2_sigma = x.new_full((x.shape[0], 1, *x.shape[-2:]), float(log2_sigma))
        feats_a: List[Tensor] = [x_hat] + self.vgg(x_hat)
        feats_b: List[Tensor] = [x.detach()] + self.vgg(x.detach())
        total = 0
        for fa, fb in zip(feats_a, feats_b, strict=True):
            total = total + wasserstein_map(fa, fb, log2_sigma, self.levels).mean()
        return total / len(feats_a)
