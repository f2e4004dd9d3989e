"""LPIPS-VGG and the patched style loss from one VGG16 pass.

PO-ELIC's two feature losses both run VGG16 on the reconstruction and the
original. Computed apart they cost four VGG passes a step, which on this
project's 2-core CPU is about 80 % of a ``po-elic`` step (profile in
benchmarks/perceptual/README.md). LPIPS' scaling layer on ``2x - 1`` is exactly
the ImageNet normalisation on ``x``, so the LPIPS trunk's relu1_2 .. relu4_3
maps are the ones the style loss reads: one pass on each image serves both,
and the original's pass needs no graph.
"""

from __future__ import annotations

from typing import Dict

import torch
from torch import Tensor, nn

from plic.losses.style import patch_gram


class LPIPSAndStyle(nn.Module):
    """``forward(x_hat, x) -> {"lpips": (N,), "style": scalar}`` on images in [0, 1].

    ``lpips`` equals the ``lpips`` package's LPIPS-VGG v0.1 per image;
    ``style`` equals :class:`plic.losses.style.PatchedStyleLoss` (relu1_2,
    relu2_2, relu3_3, relu4_3; ``patch`` x ``patch`` windows). The test suite
    checks both against the separate modules.
    """

    STYLE_STAGES = 4  # relu1_2 .. relu4_3 of LPIPS' five VGG stages

    def __init__(self, device: str | torch.device = "cpu", patch: int = 16):
        super().__init__()
        from plic.metrics.lpips import lpips_network

        self.lpips = lpips_network("vgg16", str(device))
        self.patch = patch

    def _features(self, x: Tensor):
        return self.lpips.net(self.lpips.scaling_layer(x * 2 - 1))

    def forward(self, x_hat: Tensor, x: Tensor, maps: bool = False) -> Dict[str, Tensor]:
        """With ``maps``, also ``"maps": (reconstruction's, original's)`` VGG16 stage outputs
        (the reconstruction's with their graph): what a feature discriminator reads."""
        import lpips

        fa = self._features(x_hat.clamp(0, 1))
        with torch.no_grad():
            fb = self._features(x)
        dist = 0
        for lin, a, b in zip(self.lpips.lins, fa, fb, strict=True):
            diff = (lpips.normalize_tensor(a) - lpips.normalize_tensor(b)) ** 2
            dist = dist + lpips.spatial_average(lin(diff), keepdim=True)
        style = 0
        for a, b in zip(fa[: self.STYLE_STAGES], fb[: self.STYLE_STAGES], strict=True):
            style = style + (patch_gram(a, self.patch) - patch_gram(b, self.patch)).abs().mean()
        out = {"lpips": dist.flatten(), "style": style / self.STYLE_STAGES}
        if maps:
            out["maps"] = (fa, fb)
        return out
