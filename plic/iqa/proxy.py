"""Proxy networks that predict a quality score from a (reference, distorted) patch pair.

:class:`ProxIQANet` is the network of Chen et al., "ProxIQA: A Proxy Approach
to Perceptual Optimization of Learned Image Compression" (IEEE TIP 2021): the
two patches stacked as 6 channels, three stages of 5x5 convolution, ReLU and
2x2 max-pooling with 16, 32 and 64 channels, and one fully connected output.
The pooled feature map is averaged over space before the output layer, so the
network takes any patch size (the paper trains on fixed 128x128 patches,
where this is a fixed-size average before its dense layer).

``proxiqa-diff`` is the same network fed ``(reference, distorted - reference)``
instead of ``(reference, distorted)``. The first layer is a convolution, so
the two describe the same functions (weights for one map exactly onto weights
for the other), but they do not train alike: a codec's errors are a few
percent of the pixel values, and the stacked form must first learn to
subtract one patch from the other before it sees them. Trained alone on the
default codec's reconstructions, the stacked proxy reached a Pearson
correlation of 0.24 with true SSIM on held-out Kodak tiles after 1,500
steps; fed the difference, 0.89 after 250
(``benchmarks/proxiqa/proxy_learnability_codec.md``). It is the recipe's default.

Other architectures register with :func:`register_proxy` and are picked by
name (``--proxy``).
"""

from __future__ import annotations

from typing import Callable, Dict, Type

import torch
from torch import Tensor, nn

from plic.errors import PlicError

PROXIES: Dict[str, Type[nn.Module]] = {}


def register_proxy(name: str) -> Callable[[Type[nn.Module]], Type[nn.Module]]:
    def decorator(cls: Type[nn.Module]) -> Type[nn.Module]:
        PROXIES[name] = cls
        cls.proxy_name = name
        return cls

    return decorator


def build_proxy(name: str, **kwargs) -> nn.Module:
    if name not in PROXIES:
        raise PlicError(f"unknown proxy {name!r} (known: {', '.join(sorted(PROXIES))})")
    return PROXIES[name](**kwargs)


@register_proxy("proxiqa")
class ProxIQANet(nn.Module):
    """Score of ``distorted`` against ``reference`` (both N x 3 x H x W in [0, 1]), shape (N,).

    ``scale`` maps the output onto the metric's range (100 for VMAF, 1 for
    SSIM): the network learns ``score / scale``, which keeps its targets near 1.
    """

    #: feed the distorted patch as its difference from the reference (see the module docstring)
    difference = False

    def __init__(self, channels=(16, 32, 64), scale: float = 1.0):
        super().__init__()
        layers, c_in = [], 6
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, 1)
        self.scale = float(scale)

    def forward(self, reference: Tensor, distorted: Tensor) -> Tensor:
        second = distorted - reference if self.difference else distorted
        f = self.features(torch.cat([reference, second], dim=1))
        return self.head(f.mean(dim=(2, 3))).squeeze(1) * self.scale


@register_proxy("proxiqa-diff")
class ProxIQADiffNet(ProxIQANet):
    """:class:`ProxIQANet` on ``(reference, distorted - reference)``: same functions, far faster to train."""

    difference = True
