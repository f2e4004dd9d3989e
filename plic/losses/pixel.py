"""Pixel losses: L1, L2 (MSE), Charbonnier (a smooth L1; PO-ELIC uses epsilon 1e-6) and a low-pass MSE."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def l1(x_hat: Tensor, x: Tensor) -> Tensor:
    return (x_hat - x).abs().mean()


def l2(x_hat: Tensor, x: Tensor) -> Tensor:
    return ((x_hat - x) ** 2).mean()


def charbonnier(x_hat: Tensor, x: Tensor, eps: float = 1e-6) -> Tensor:
    """mean(sqrt((x_hat - x)^2 + eps^2)): L1 away from zero, differentiable at zero."""
    return torch.sqrt((x_hat - x) ** 2 + eps * eps).mean()


def lowpass_mse(x_hat: Tensor, x: Tensor, block: int = 16) -> Tensor:
    """MSE between the ``block`` x ``block`` means of both images: colour and brightness, not texture.

    A GAN-finetuned codec can drift in colour (a few levels over a whole sky):
    LPIPS and a discriminator on RMS-normalised VGG maps barely see it, and
    Charbonnier, an L1 over pixels whose errors are mostly texture, pulls on a
    mean offset only weakly. Block means leave texture free and pin the rest.
    """
    return F.mse_loss(F.avg_pool2d(x_hat, block, ceil_mode=True), F.avg_pool2d(x, block, ceil_mode=True))
