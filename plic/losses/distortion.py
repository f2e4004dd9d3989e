"""Differentiable distortions for encode-time optimisation, on float images in [0, 1]."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from plic.errors import PlicError

#: name -> how it is reported; every one is "lower is better" as a loss
DISTORTIONS = ("mse", "ms-ssim", "lpips", "lpips-alex", "dists")

#: MS-SSIM with 5 scales and an 11-pixel window needs images larger than this
MS_SSIM_MIN_SIDE = 161


def distortion_fn(name: str, device: str | torch.device = "cpu") -> Callable[[Tensor, Tensor], Tensor]:
    """``fn(x_hat, x) -> per-image distortion`` (shape (N,)), differentiable in ``x_hat``.

    ``mse`` is on the [0, 1] scale; ``ms-ssim`` is ``1 - MS-SSIM``; ``lpips`` is
    LPIPS-VGG (``lpips-alex`` the AlexNet variant); ``dists`` is DISTS. The
    perceptual networks use the same offline weights as ``plic eval``; missing
    weights are reported as a PlicError before any work starts.
    """
    device = str(device)
    if name == "mse":
        return lambda x_hat, x: ((x_hat - x) ** 2).flatten(1).mean(1)
    if name == "ms-ssim":
        from pytorch_msssim import ms_ssim

        def fn(x_hat: Tensor, x: Tensor) -> Tensor:
            if min(x.shape[-2:]) < MS_SSIM_MIN_SIDE:
                raise PlicError(f"MS-SSIM needs images of at least {MS_SSIM_MIN_SIDE}x{MS_SSIM_MIN_SIDE} pixels")
            return 1 - ms_ssim(x_hat.clamp(0, 1), x, data_range=1.0, size_average=False)

        return fn
    if name in ("lpips", "lpips-alex"):
        from plic.metrics.lpips import lpips_network

        net = lpips_network("vgg16" if name == "lpips" else "alexnet", device)
        return lambda x_hat, x: net(x_hat.clamp(0, 1) * 2 - 1, x * 2 - 1).flatten()
    if name == "dists":
        from plic.metrics.dists import dists_network

        net = dists_network(device)
        return lambda x_hat, x: net(x_hat.clamp(0, 1), x)
    raise PlicError(f"unknown distortion {name!r} (known: {', '.join(DISTORTIONS)})")
