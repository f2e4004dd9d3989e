"""Differentiable distortions for encode-time optimisation, on float images in [0, 1]."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from plic.errors import PlicError

#: name -> how it is reported; every one is "lower is better" as a loss
DISTORTIONS = ("mse", "ms-ssim", "lpips", "lpips-alex", "dists")
#: those measured by a network, whose trunk ``bf16`` runs in bfloat16
NETWORK_DISTORTIONS = ("lpips", "lpips-alex", "dists")

#: MS-SSIM with 5 scales and an 11-pixel window needs images larger than this
MS_SSIM_MIN_SIDE = 161


def distortion_fn(name: str, device: str | torch.device = "cpu", keep_reference: bool = False,
                  bf16: bool = False) -> Callable[[Tensor, Tensor], Tensor]:
    """``fn(x_hat, x) -> per-image distortion`` (shape (N,)), differentiable in ``x_hat``.

    ``keep_reference``: a perceptual network keeps the features of the last ``x`` and reuses them
    while the same tensor, unchanged, comes back -- an encode-time optimisation compares every
    step with one original (a training step brings a new batch each time and gains nothing).
    ``bf16``: a perceptual network's trunk runs in bfloat16, its comparison in float32 -- about
    twice as fast on CPUs that do bfloat16 natively (AVX512-BF16, AMX), much slower elsewhere.

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
        from plic.metrics.lpips import lpips_features, lpips_from_features, lpips_network

        net = lpips_network("vgg16" if name == "lpips" else "alexnet", device)
        return _feature_distance(lambda x: lpips_features(net, x * 2 - 1, bf16=bf16),
                                 lambda fa, fb: lpips_from_features(net, fa, fb), keep_reference)
    if name == "dists":
        from plic.metrics.dists import dists_network

        net = dists_network(device)
        return _feature_distance(lambda x: net.features(x, bf16=bf16), net.compare, keep_reference)
    raise PlicError(f"unknown distortion {name!r} (known: {', '.join(DISTORTIONS)})")


def _feature_distance(features: Callable[[Tensor], list], compare: Callable[[list, list], Tensor],
                      keep_reference: bool) -> Callable[[Tensor, Tensor], Tensor]:
    """``compare(features(x), features(x_hat))``, with the features of the reference ``x`` kept
    while the same tensor comes back unchanged when ``keep_reference``.

    A step of an encode-time optimisation runs the network forward on ``x`` and forward and
    backward on ``x_hat``: the reference is a third of its network work.
    """
    kept: dict = {}

    def fn(x_hat: Tensor, x: Tensor) -> Tensor:
        if not keep_reference or x.requires_grad:  # a gradient for the reference too: nothing to keep
            return compare(features(x), features(x_hat.clamp(0, 1)))
        if kept.get("x") is not x or kept["version"] != x._version:
            kept.clear()
            with torch.no_grad():
                kept.update(x=x, version=x._version, features=features(x))
        return compare(kept["features"], features(x_hat.clamp(0, 1)))

    return fn
