"""ST-LIC's post-filter: a small UNet after the decoder, predicting a residual.

The codec's decoder output is kept as it is (distortion losses train the
codec on it); the post-filter turns it into the perceptual output. Two
down-sampling levels with skip connections; the output is
``x_hat + UNet(x_hat)``, initialised at zero so an untrained post-filter changes
nothing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
                         nn.Conv2d(c_out, c_out, 3, padding=1), nn.LeakyReLU(0.2, inplace=True))


class UNetPostFilter(nn.Module):
    def __init__(self, channels: int = 32, levels: int = 2):
        super().__init__()
        widths = [channels * 2**i for i in range(levels + 1)]
        self.inc = _block(3, widths[0])
        self.down = nn.ModuleList(_block(widths[i], widths[i + 1]) for i in range(levels))
        self.up = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(levels)))
        self.dec = nn.ModuleList(_block(2 * widths[i], widths[i]) for i in reversed(range(levels)))
        self.out = nn.Conv2d(widths[0], 3, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.stride = 2**levels

    def forward(self, x_hat: Tensor) -> Tensor:
        h, w = x_hat.shape[-2:]
        ph, pw = (-h) % self.stride, (-w) % self.stride
        x = F.pad(x_hat, (0, pw, 0, ph), mode="replicate") if (ph or pw) else x_hat
        skips = [self.inc(x)]
        for down in self.down:
            skips.append(down(F.max_pool2d(skips[-1], 2)))
        y = skips.pop()
        for up, dec in zip(self.up, self.dec, strict=True):
            y = dec(torch.cat([up(y), skips.pop()], dim=1))
        return x_hat + self.out(y)[..., :h, :w]
