"""An exponential moving average of a model's weights, for evaluating and shipping (Polyak averaging).

Short runs end with weights still moving with the last batches' noise; the
average over the last ``1 / (1 - decay)`` steps or so is usually a better
model than the last iterate, for the price of one copy of the parameters.
The trainer updates it after each step, keeps it in the checkpoint (an exact
resume), evaluates with it and writes it as ``model.safetensors``; the
checkpoint keeps the live weights, which training continues from.
"""

from __future__ import annotations

import contextlib
from typing import Dict, Iterator

import torch
from torch import Tensor, nn


class WeightAverage:
    def __init__(self, model: nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError("the average's decay must be in (0, 1)")
        self.decay = float(decay)
        self.updates = 0
        self.shadow = {n: p.detach().clone() for n, p in model.named_parameters()}

    def current_decay(self) -> float:
        """The decay of the next update: ramped up from 0.1 as ``(1 + t) / (10 + t)``, so that the
        starting weights (random, from scratch) do not linger in a short run's average."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = self.current_decay()
        for n, p in model.named_parameters():
            self.shadow[n].lerp_(p.detach(), 1 - decay)
        self.updates += 1

    def state(self) -> Dict[str, Tensor]:
        return {**{f"ema.{n}": t for n, t in self.shadow.items()}, "ema_updates": torch.tensor(self.updates)}

    def load_state(self, tensors: Dict[str, Tensor]) -> None:
        for n in self.shadow:
            self.shadow[n].copy_(tensors[f"ema.{n}"])
        self.updates = int(tensors["ema_updates"])

    @contextlib.contextmanager
    def swapped_in(self, model: nn.Module) -> Iterator[None]:
        """Inside the block the model holds the averaged weights; the live ones come back after."""
        live = {n: p.detach().clone() for n, p in model.named_parameters()}
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(self.shadow[n])
        try:
            yield
        finally:
            with torch.no_grad():
                for n, p in model.named_parameters():
                    p.copy_(live[n])
