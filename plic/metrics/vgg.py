"""VGG16 feature maps (ImageNet weights converted offline at set-up) for losses and metrics."""

from __future__ import annotations

import functools
from typing import List, Sequence

from torch import Tensor, nn

#: indices after which torchvision's vgg16.features gives relu1_2, relu2_2, relu3_3, relu4_3
RELU_LAYERS = (3, 8, 15, 22)


class VGGFeatures(nn.Module):
    """Frozen VGG16 up to the deepest requested layer; returns the requested feature maps."""

    def __init__(self, layers: Sequence[int] = RELU_LAYERS):
        super().__init__()
        from plic.metrics.pretrained import ImageNetNormalize, features_module

        self.layers = sorted(layers)
        self.normalize = ImageNetNormalize()
        self.features = features_module("vgg16")[: self.layers[-1] + 1].eval().requires_grad_(False)

    def forward(self, x: Tensor) -> List[Tensor]:
        h = self.normalize(x)
        out = []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self.layers:
                out.append(h)
        return out


@functools.lru_cache(maxsize=None)
def vgg_features(layers: tuple = RELU_LAYERS, device: str = "cpu") -> VGGFeatures:
    return VGGFeatures(layers).to(device)
