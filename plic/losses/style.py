"""Patched style loss (PO-ELIC eq. 10): Gram matrices of VGG features on 16x16 patches.

A global Gram matrix (Gatys et al.) matches texture statistics of the whole
image, which lets texture move across it; PO-ELIC computes Gram matrices per
16x16 patch of each feature map, so the texture of every region is matched
where it is. Feature maps smaller than a patch are used whole.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from plic.metrics.vgg import RELU_LAYERS, VGGFeatures


def patch_gram(f: Tensor, patch: int) -> Tensor:
    """Gram matrices of non-overlapping ``patch`` x ``patch`` windows: N x L x C x C."""
    n, c, h, w = f.shape
    p_h, p_w = min(patch, h), min(patch, w)
    f = f[:, :, : h // p_h * p_h, : w // p_w * p_w]
    f = f.unfold(2, p_h, p_h).unfold(3, p_w, p_w)  # N C Lh Lw p_h p_w
    f = f.permute(0, 2, 3, 1, 4, 5).reshape(n, -1, c, p_h * p_w)
    return f @ f.transpose(-1, -2) / (c * p_h * p_w)


class PatchedStyleLoss(nn.Module):
    def __init__(self, layers: Sequence[int] = RELU_LAYERS, patch: int = 16):
        super().__init__()
        self.vgg = VGGFeatures(layers)
        self.patch = patch

    def forward(self, x_hat: Tensor, x: Tensor) -> Tensor:
        loss = 0
        for fa, fb in zip(self.vgg(x_hat), self.vgg(x.detach()), strict=True):
            loss = loss + (patch_gram(fa, self.patch) - patch_gram(fb, self.patch)).abs().mean()
        return loss / len(self.vgg.layers)
