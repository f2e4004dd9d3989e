"""Pixel losses: L1, L2 (MSE), Charbonnier (a smooth L1; PO-ELIC uses epsilon 1e-6), a low-pass MSE and a periodic one."""

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


def periodic_mse(x_hat: Tensor, x: Tensor, period: int = 16) -> Tensor:
    """Mean square of the part of the error that repeats every ``period`` pixels, its mean removed.

    The synthesis transform upsamples 16x in four 2x steps, so what it prints
    everywhere (the faint dot grid of the GAN-finetuned models on flat areas)
    has the period 16 and the same phase in every crop. Averaging the error
    over all ``period`` x ``period`` cells of the crop keeps that pattern and
    shrinks everything else by the number of cells (texture errors do not
    repeat); a colour cast is the pattern's mean, removed here
    (:func:`lowpass_mse` holds it). Only whole cells count.
    """
    n, c, h, w = x.shape
    h, w = h - h % period, w - w % period
    if not h or not w:
        raise ValueError(f"periodic_mse needs images of at least {period}x{period} pixels")
    cells = (x_hat - x)[..., :h, :w].reshape(n, c, h // period, period, w // period, period)
    pattern = cells.mean(dim=(2, 4))
    return ((pattern - pattern.mean(dim=(2, 3), keepdim=True)) ** 2).mean()
