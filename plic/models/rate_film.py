"""A synthesis transform told the rate: per-channel scale and shift (FiLM) from the QVRF step.

A variable-rate model's synthesis sees only the dequantized latent, so one
set of weights must decode every rate. A perceptual finetune then trades the
rates against each other: an adversary strong enough to synthesise texture at
0.075 bpp costs fidelity at 0.30 bpp through the same layers
(benchmarks/perceptual/README.md, "The rate-dependent adversary"). Here each
GDN output of the synthesis is scaled and shifted per channel by a small
network of ``log(a)``, the QVRF quantization step the decoder already knows
from the file's lambda (as SFT and FiLM layers condition variable-rate
decoders, Song et al. ICCV 2021; Agustsson et al. CVPR 2023 condition theirs
on a realism weight the same way).

The networks' last layers start at zero: a model given them decodes exactly
as before, so they can be added to a trained model (``plic train --init ...
--rate-film``) and learned in a finetune.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from plic.models.layers import LayersWithExtras


def synthesize(g_s: nn.Module, y_hat: Tensor, a: Tensor) -> Tensor:
    """Run a synthesis transform on the dequantized latent; one told the rate (``takes_step``) gets ``a`` too."""
    return g_s(y_hat, a) if getattr(g_s, "takes_step", False) else g_s(y_hat)


class StepFiLM(nn.Module):
    """``x * (1 + gamma) + beta``, per channel, with ``(gamma, beta)`` a small MLP of ``log(a)``."""

    def __init__(self, channels: int, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 2 * channels))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: Tensor, log_a: Tensor) -> Tensor:
        # the small network in its own precision (float32 in training, float64 in an exact decode), out of any
        # autocast: bfloat16 would see log(a) in steps of 1/64 and round gamma to 3 digits
        with torch.autocast(x.device.type, enabled=False):
            out = self.net(log_a.to(self.net[0].weight.dtype))
        gamma, beta = out.to(x.dtype).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return x + x * gamma + beta


class RateConditionedSynthesis(LayersWithExtras):
    """A synthesis (its layers, indexed and named as before) with a :class:`StepFiLM` after the layers ``taps``.

    ``forward(y_hat, a)``: ``a`` is the QVRF step, one value or one per batch item.
    """

    #: plic.models.base.VariableRateCodec.synthesize passes the step to transforms that say so
    takes_step = True

    EXTRAS = ("_film",)

    def __init__(self, layers: Sequence[nn.Module], channels: Sequence[int], taps: Sequence[int]):
        super().__init__(*layers)
        if len(channels) != len(taps):
            raise ValueError("one channel count per tap")
        self.taps = tuple(int(t) for t in taps)
        self._film = nn.ModuleList(StepFiLM(c) for c in channels)

    def forward(self, x: Tensor, a: Tensor | float) -> Tensor:
        log_a = torch.as_tensor(a, dtype=torch.float64).reshape(-1, 1).log().to(x.device)
        k = 0
        for i, layer in enumerate(self):
            x = layer(x)
            if k < len(self.taps) and i == self.taps[k]:
                x = self._film[k](x, log_a)
                k += 1
        return x
