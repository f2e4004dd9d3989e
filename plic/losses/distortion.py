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

        return _lpips_keeping_the_reference(lpips_network("vgg16" if name == "lpips" else "alexnet", device))
    if name == "dists":
        from plic.metrics.dists import dists_network

        net = dists_network(device)
        return lambda x_hat, x: net(x_hat.clamp(0, 1), x)
    raise PlicError(f"unknown distortion {name!r} (known: {', '.join(DISTORTIONS)})")


def _lpips_keeping_the_reference(net) -> Callable[[Tensor, Tensor], Tensor]:
    """LPIPS (the ``lpips`` package's forward) with the features of the reference ``x`` kept between calls.

    An encode-time optimisation compares every step's image with the same original: its features
    cost a third of a step's network work (a forward for it, a forward and a backward for ``x_hat``),
    and twice that where a target adds a hard-rounded forward per step.
    """
    import lpips

    from plic.metrics.lpips import _normalized_features

    kept: dict = {}

    def fn(x_hat: Tensor, x: Tensor) -> Tensor:
        key = (x.data_ptr(), x._version, tuple(x.shape), x.device)  # the same tensor, not changed in place
        if kept.get("key") != key:
            with torch.no_grad():
                kept["key"], kept["features"] = key, _normalized_features(net, x * 2 - 1)
            kept["x"] = x  # held, so that its memory is not reused by another tensor with the same pointer
        fb = _normalized_features(net, x_hat.clamp(0, 1) * 2 - 1)
        return sum(lpips.spatial_average(lin((a - b) ** 2), keepdim=True)
                   for lin, a, b in zip(net.lins, kept["features"], fb)).flatten()

    return fn
