"""Equal weight for every rate of a variable-rate model: each item's loss over its rate's running mean.

An item's ``R + lambda * D`` grows with lambda: for the MSE default on 256x256 training crops, from
0.17 at lambda 1e-4 (0.12 bpp) through 0.97 at 0.0067 to 16.5 at 0.45 (1.6 bpp). The batch mean, and so
the gradient the shared transforms follow, is then mostly the top of the range's; the bottom, where perceptual and
low-rate users live, trains on what is left (the perceptual finetunes, whose range stops at 0.03, gained
0.6-0.8 dB PSNR at 0.075 bpp over the MSE model they started from). BD-rate weighs every part of the
curve alike, in log-rate: so each item here is divided by the running mean of the loss at its lambda
(log-spaced bins, detached), which makes its gradient a relative improvement, and the sum is scaled
back by the bins' mean so that gradient clipping and the learning rate keep their meaning.

A power between 0 (the plain mean) and 1 (every rate alike) weighs each item by its bin's mean to the
minus that power: at 1 the top of the range lost 0.02-0.09 dB while the bottom gained 0.2-0.45 dB, and a
power of 0.5 is the geometric middle between the two objectives.
"""

from __future__ import annotations

import math
from typing import Dict

import torch
from torch import Tensor


class RateBalance:
    """Running mean loss per log-lambda bin, and the batch loss weighted by it.

    Bins of lambda, not one mean per item: an item's own loss would also weigh a flat crop above a
    textured one at the same rate, which is not what is being balanced.
    """

    def __init__(self, lambda_min: float, lambda_max: float, bins: int = 8, decay: float = 0.98,
                 power: float = 1.0):
        if not 0 <= power <= 1:
            raise ValueError(f"power must lie in [0, 1], not {power!r}")
        self.lo, self.hi = math.log(lambda_min), math.log(lambda_max)
        self.bins, self.decay, self.power = int(bins), float(decay), float(power)
        self.mean = torch.zeros(self.bins, dtype=torch.float64)  # running mean loss per bin; 0: not seen yet

    def bin_of(self, lmbda: Tensor) -> Tensor:
        span = max(self.hi - self.lo, 1e-12)
        u = (torch.log(lmbda.detach().double().cpu()) - self.lo) / span
        return (u * self.bins).floor().clamp(0, self.bins - 1).long()

    def update(self, lmbda: Tensor, items: Tensor) -> None:
        """Fold one batch's per-item losses into the running means of their bins."""
        self._fold(self.bin_of(lmbda), items)

    @torch.no_grad()
    def _fold(self, idx: Tensor, items: Tensor) -> None:
        values = items.detach().double().cpu()
        for b in idx.unique().tolist():
            v = float(values[idx == b].mean())
            old = float(self.mean[b])  # a loss is positive (bits), so 0 marks a bin not seen yet
            self.mean[b] = v if old == 0 else self.decay * old + (1 - self.decay) * v

    def loss(self, lmbda: Tensor, items: Tensor) -> Tensor:
        """The batch's loss: mean of item / its bin's running mean ** power, times a factor.

        The batch is folded into the means first, so a bin's first items are weighed by their own mean
        and not by zero. The factor, mean(m) / mean(m ** (1 - power)) over the seen bins' means m, makes
        the weighted means average to the plain ones (at power 1: the bins' arithmetic mean, which is
        about the plain batch mean under log-uniform lambdas), so the loss keeps its usual units and
        gradient clipping and the learning rate mean what they meant without the balance."""
        idx = self.bin_of(lmbda)
        self._fold(idx, items)
        seen = self.mean[self.mean > 0]
        factor = float(seen.mean() / seen.pow(1 - self.power).mean())
        scale = self.mean[idx].clamp_min(1e-12).pow(self.power)
        weights = (factor / scale).to(items)
        return (weights * items).mean()

    def state(self) -> Dict[str, Tensor]:
        return {"rate_balance_mean": self.mean.clone()}

    def load_state(self, tensors: Dict[str, Tensor]) -> None:
        if "rate_balance_mean" in tensors:
            self.mean = tensors["rate_balance_mean"].double().clone()
