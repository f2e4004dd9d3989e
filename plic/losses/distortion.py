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


def distortion_fn(name: str, device: str | torch.device = "cpu",
                  keep_reference: bool = False) -> Callable[[Tensor, Tensor], Tensor]:
    """``fn(x_hat, x) -> per-image distortion`` (shape (N,)), differentiable in ``x_hat``.

    ``keep_reference``: LPIPS keeps the features of the last ``x`` and reuses them while the same
    tensor, unchanged, comes back -- an encode-time optimisation compares every step with one
    original (a training step brings a new batch each time and gains nothing).

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
        if keep_reference:
            return _lpips_keeping_the_reference(net)
        return lambda x_hat, x: net(x_hat.clamp(0, 1) * 2 - 1, x * 2 - 1).flatten()
    if name == "dists":
        from plic.metrics.dists import dists_network

        net = dists_network(device)
        return lambda x_hat, x: net(x_hat.clamp(0, 1), x)
    raise PlicError(f"unknown distortion {name!r} (known: {', '.join(DISTORTIONS)})")


def _lpips_keeping_the_reference(net) -> Callable[[Tensor, Tensor], Tensor]:
    """LPIPS with the features of the reference ``x`` kept while the same tensor comes back unchanged.

    A step of an encode-time optimisation runs the network forward on ``x`` and forward and
    backward on ``x_hat``: the reference is a third of its network work, two thirds of the extra
    forward that a target adds (a hard-rounded check per step).
    """
    from plic.metrics.lpips import lpips_features, lpips_from_features

    kept: dict = {}

    def fn(x_hat: Tensor, x: Tensor) -> Tensor:
        if x.requires_grad:  # a gradient for the reference too: nothing to keep
            return lpips_from_features(net, lpips_features(net, x * 2 - 1), lpips_features(net, x_hat.clamp(0, 1) * 2 - 1))
        if kept.get("x") is not x or kept["version"] != x._version:
            kept.clear()
            with torch.no_grad():
                kept.update(x=x, version=x._version, features=lpips_features(net, x * 2 - 1))
        return lpips_from_features(net, kept["features"], lpips_features(net, x_hat.clamp(0, 1) * 2 - 1))

    return fn
