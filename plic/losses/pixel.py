"""Pixel losses: L1, L2 (MSE) and Charbonnier (a smooth L1; PO-ELIC uses epsilon 1e-6)."""

from __future__ import annotations

import torch
from torch import Tensor


def l1(x_hat: Tensor, x: Tensor) -> Tensor:
    return (x_hat - x).abs().mean()


def l2(x_hat: Tensor, x: Tensor) -> Tensor:
    return ((x_hat - x) ** 2).mean()


def charbonnier(x_hat: Tensor, x: Tensor, eps: float = 1e-6) -> Tensor:
    """mean(sqrt((x_hat - x)^2 + eps^2)): L1 away from zero, differentiable at zero."""
    return torch.sqrt((x_hat - x) ** 2 + eps * eps).mean()
