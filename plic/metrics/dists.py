"""DISTS (Ding et al. 2020): structure and texture similarity of VGG16 features.

A re-statement of the reference ``DISTS_pytorch`` network that loads its trunk
from plic's cache instead of a model hub (the reference package calls
``vgg16(pretrained=True)``, which downloads). Its max-pools are replaced by
Hanning-window L2 pooling, as in the paper; alpha and beta are the published
ones shipped in ``dists-pytorch``. The test suite checks this module against
the reference package on the same images and weights. Full resolution, no
resizing to 256 (the reference script's optional ``resize``).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from plic.metrics.pixel import LastReference, to_tensor
from plic.metrics.pretrained import ImageNetNormalize, dists_alpha_beta, features_module


class L2Pooling(nn.Module):
    """sqrt of a stride-2 Hanning-weighted average of squares, per channel."""

    def __init__(self, channels: int, filter_size: int = 5):
        super().__init__()
        a = np.hanning(filter_size)[1:-1]
        g = torch.tensor(a[:, None] * a[None, :], dtype=torch.float32)
        self.register_buffer("filter", (g / g.sum())[None, None].repeat(channels, 1, 1, 1))
        self.padding = (filter_size - 2) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x**2, self.filter, stride=2, padding=self.padding, groups=x.shape[1])
        return (out + 1e-12).sqrt()


class DISTS(nn.Module):
    CHANNELS = (3, 64, 128, 256, 512, 512)
    # torchvision vgg16.features index ranges of the five stages; a pooling precedes stages 2-5
    STAGES = ((0, 4), (5, 9), (10, 16), (17, 23), (24, 30))

    def __init__(self):
        super().__init__()
        features = features_module("vgg16")
        stages = []
        for i, (lo, hi) in enumerate(self.STAGES):
            layers = [L2Pooling(self.CHANNELS[i])] if i else []
            stages.append(nn.Sequential(*layers, *features[lo:hi]))
        self.stages = nn.ModuleList(stages)
        self.normalize = ImageNetNormalize()
        w = dists_alpha_beta()
        self.register_buffer("alpha", w["alpha"].view(1, -1, 1, 1))
        self.register_buffer("beta", w["beta"].view(1, -1, 1, 1))

    def features(self, x: torch.Tensor, bf16: bool = False) -> list:
        """What :meth:`compare` compares, of ``x`` in [0, 1]; ``bf16``: the stages in bfloat16
        (autocast), otherwise as the caller's autocast, if any, says. Returned in float32."""
        if bf16:
            with torch.autocast(x.device.type, dtype=torch.bfloat16):
                return self.features(x)
        feats = [x]
        h = self.normalize(x)
        for stage in self.stages:
            h = stage(h)
            feats.append(h)
        return [f.float() for f in feats]

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-image DISTS of x and y in [0, 1], shape (N,)."""
        return self.compare(self.features(x), self.features(y))

    def compare(self, fx, fy) -> torch.Tensor:
        w_sum = self.alpha.sum() + self.beta.sum()
        alphas = torch.split(self.alpha / w_sum, self.CHANNELS, dim=1)
        betas = torch.split(self.beta / w_sum, self.CHANNELS, dim=1)
        c1 = c2 = 1e-6
        structure = texture = 0
        for a, b, alpha, beta in zip(fx, fy, alphas, betas):
            ma, mb = a.mean([2, 3], keepdim=True), b.mean([2, 3], keepdim=True)
            texture = texture + (alpha * (2 * ma * mb + c1) / (ma**2 + mb**2 + c1)).sum(1, keepdim=True)
            va = ((a - ma) ** 2).mean([2, 3], keepdim=True)
            vb = ((b - mb) ** 2).mean([2, 3], keepdim=True)
            cov = (a * b).mean([2, 3], keepdim=True) - ma * mb
            structure = structure + (beta * (2 * cov + c2) / (va + vb + c2)).sum(1, keepdim=True)
        return 1 - (texture + structure).flatten()


def dists_network(device: str | torch.device = "cpu") -> DISTS:
    """The frozen DISTS module, one per device string (``torch.device`` or str)."""
    return _dists_network(str(device))


@functools.lru_cache(maxsize=None)
def _dists_network(device: str) -> DISTS:
    return DISTS().eval().requires_grad_(False).to(device)


_reference = LastReference()


def dists_distance(ref: np.ndarray, dist: np.ndarray, device: str = "cpu") -> float:
    """DISTS between two HxWx3 uint8 images (0 = identical, lower is better).

    The original's features are kept between calls: a benchmark scores many
    decodings of one original.
    """
    net = dists_network(device)
    with torch.no_grad():
        fx = _reference.get(ref, device, lambda: net.features(to_tensor(ref).to(device)))
        return float(net.compare(fx, net.features(to_tensor(dist).to(device)))[0])
