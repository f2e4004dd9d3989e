"""Rate-distortion loss with one Lagrange multiplier per batch item.

``loss_i = lambda_i * D_i + R_i`` with R in bits per pixel and D either
``255^2 * MSE`` (CompressAI's convention, so its lambdas carry over) or
``1 - MS-SSIM``. Per-item lambdas let a variable-rate (QVRF) model see many
rates in every batch.
"""

from __future__ import annotations

import math
from typing import Dict

import torch
from pytorch_msssim import ms_ssim
from torch import Tensor


def bpp_per_item(likelihoods: Dict[str, Tensor], num_pixels: int) -> Tensor:
    total = 0
    for lik in likelihoods.values():
        total = total + torch.log(lik).flatten(1).sum(1)
    return total / (-math.log(2) * num_pixels)


class RateDistortionLoss(torch.nn.Module):
    def __init__(self, metric: str = "mse"):
        super().__init__()
        if metric not in ("mse", "ms-ssim"):
            raise ValueError("metric must be 'mse' or 'ms-ssim'")
        self.metric = metric

    def forward(self, out: Dict[str, Tensor], target: Tensor, lmbda: Tensor) -> Dict[str, Tensor]:
        """The batch's mean loss and statistics, and ``items``: each item's loss (a vector, for a
        recipe that weighs them, :mod:`plic.train.rate_balance`)."""
        n, _, h, w = target.shape
        bpp = bpp_per_item(out["likelihoods"], h * w)
        x_hat = out["x_hat"]
        mse = ((x_hat - target) ** 2).flatten(1).mean(1)
        if self.metric == "mse":
            distortion = 255**2 * mse
        else:
            distortion = 1 - ms_ssim(x_hat.clamp(0, 1), target, data_range=1.0, size_average=False)
        lmbda = lmbda.to(target).reshape(-1)
        items = lmbda * distortion + bpp
        return {"loss": items.mean(), "items": items, "bpp": bpp.mean(), "mse": mse.mean(),
                "distortion": distortion.mean()}
