"""HiFiC's conditional discriminator (Mentzer et al. 2020), with or without spectral norm.

The quantized latent is the condition: a 1x1 convolution to 12 channels and
a LeakyReLU, nearest-neighbour upsampled by the codec's stride (16) to the
image size and concatenated with the image; then four 4x4 convolutions of
stride 2 (64, 128, 256, 512 channels, LeakyReLU 0.2) and a 1x1 convolution
to one logit per position. PO-ELIC uses spectral normalisation on every
convolution (``spectral_norm=True``); ST-LIC's BCE discriminator has none.

Two input scalings, without which this discriminator did not learn here
(benchmarks/perceptual/discriminator_inputs.txt): the image enters in
[-1, 1], and the latent is divided by its per-image RMS. A variable-rate
codec's latent scales with the rate (QVRF's step spans ~30x, single values
reach 100), so the raw condition swamped the image channels: the logits of
originals and reconstructions moved together and their gap stayed near 0
for 2,000 steps, with or without spectral norm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ConditionalDiscriminator(nn.Module):
    def __init__(self, latent_channels: int, channels=(64, 128, 256, 512), condition_channels: int = 12,
                 spectral_norm: bool = True, latent_stride: int = 16):
        super().__init__()
        sn = nn.utils.spectral_norm if spectral_norm else (lambda m: m)
        self.latent_stride = latent_stride
        self.condition = sn(nn.Conv2d(latent_channels, condition_channels, 1))
        layers, c_in = [], 3 + condition_channels
        for c in channels:
            layers += [sn(nn.Conv2d(c_in, c, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, inplace=True)]
            c_in = c
        layers.append(sn(nn.Conv2d(c_in, 1, 1)))
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor, y_hat: Tensor) -> Tensor:
        """Logits (N x 1 x H/16 x W/16) for images ``x`` given their quantized latents ``y_hat``."""
        y = y_hat.detach()
        y = y * torch.rsqrt(y.pow(2).mean(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12))
        c = F.leaky_relu(self.condition(y), 0.2)
        c = F.interpolate(c, size=x.shape[-2:], mode="nearest")
        return self.body(torch.cat([x * 2 - 1, c], dim=1))


class FeatureDiscriminator(nn.Module):
    """A conditional discriminator on frozen VGG16 features (plic's, after Projected GANs, Sauer et al. 2021).

    HiFiC's discriminator starts from random weights and, on this project's
    CPU, takes longer to tell reconstructions apart than a finetune lasts
    (benchmarks/perceptual/README.md). The VGG16 maps that LPIPS-VGG and the
    style loss already compute for the reconstruction and the original are a
    pretrained feature space where blur and lost texture are plain, so small
    heads on them learn in a few hundred steps, and need no extra VGG pass:
    the codec's gradient reaches it through the same graph as LPIPS'.

    One head per stage (relu2_2, relu3_3, relu4_3 by default): the stage's
    maps, divided by the original's per-image RMS at that stage (the same
    scale for both inputs, so a loss of contrast still shows), concatenated
    with the latent condition (RMS-normalised as in
    :class:`ConditionalDiscriminator`, 1x1 convolution, nearest upsampling),
    then 1x1 -> 3x3 -> 1x1 convolutions with spectral norm to one logit per
    position. The finer heads' logits are average-pooled to the coarsest
    head's grid, so each stage weighs the same: ``forward`` returns
    N x stages x h x w logits, and the losses of :mod:`plic.losses.adversarial`
    apply as they are.
    """

    def __init__(self, latent_channels: int, feature_channels=(128, 256, 512), width: int = 64,
                 condition_channels: int = 12, spectral_norm: bool = True):
        super().__init__()
        sn = nn.utils.spectral_norm if spectral_norm else (lambda m: m)
        self.condition = sn(nn.Conv2d(latent_channels, condition_channels, 1))
        self.heads = nn.ModuleList(
            nn.Sequential(sn(nn.Conv2d(c + condition_channels, width, 1)), nn.LeakyReLU(0.2, inplace=True),
                          sn(nn.Conv2d(width, width, 3, padding=1)), nn.LeakyReLU(0.2, inplace=True),
                          sn(nn.Conv2d(width, 1, 1)))
            for c in feature_channels)

    @staticmethod
    def scales(reference) -> list:
        """Per-image RMS of each stage of the original's features (detached): the common scale of both inputs."""
        return [f.detach().pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-6) for f in reference]

    def forward(self, features, y_hat: Tensor, scales) -> Tensor:
        y = y_hat.detach()
        y = y * torch.rsqrt(y.pow(2).mean(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12))
        c = F.leaky_relu(self.condition(y), 0.2)
        grid = features[-1].shape[-2:]
        out = []
        for head, f, s in zip(self.heads, features, scales, strict=True):
            cond = F.interpolate(c, size=f.shape[-2:], mode="nearest")
            out.append(F.adaptive_avg_pool2d(head(torch.cat([f / s, cond], dim=1)), grid))
        return torch.cat(out, dim=1)
