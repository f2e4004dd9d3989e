"""A shipped model and its high-rate partner, coding as one codec.

One small model cannot be good at every rate. The default hyperprior
(stride 16, N=64, M=96) is efficient at low rates but saturates at high ones:
its transforms reach only 33 dB on Kodak even without quantization. A partner
built for high rates (more latent channels, or a finer latent: ``levels`` of
the hyperprior) gains where it stops, but spends more on side information at
low rates. CompressAI's zoo does the same for its models (bmshj2018:
N=128/M=192 for qualities 1-5, N=192/M=320 for 6-8).

This lives outside the library (issue 20): no partner trained on this
machine's CPU moved the crossover with JPEG above about 1.3 bpp
(benchmarks/README.md), so plic ships none and its codec, CLI and benchmark
know nothing of ladders. A ladder is used from Python::

    ladder = CodecLadder(Codec(load_weights(low)), Codec(load_weights(high)), switch)
    data = ladder.encode(read_image("photo.png"), lmbda=0.05).data
    image, _ = ladder.decode(data)   # or plain ``plic decompress`` with --model-path

Both models are trained for the same MSE Lagrangian, so a lambda means the
same trade-off in either: the ladder codes with the low-rate model up to
``switch`` and with the partner above it. ``switch`` is where the partner's
mean ``R + lambda * D`` on training crops falls below the low-rate model's
(``ladder_switch.py`` beside this file). Each file names its model's weights, so any
plic decoder decodes it; nothing in the bitstream is specific to the ladder.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from plic import bitstream
from plic.bitstream import PlicFile
from plic.codec import Codec, EncodeResult, psnr
from plic.errors import PlicError
from plic.image_io import PlanarImage, quantize_rgb
from plic.models.base import check_lambda_range


class CodecLadder:
    """``low`` for lambda <= ``switch``, ``high`` above; quality 1..8 maps as ``low``'s does."""

    def __init__(self, low: Codec, high: Codec, switch: float):
        if not (low.model.variable_rate and high.model.variable_rate):
            raise ValueError("a ladder needs two variable-rate models")
        if not high.model.lambda_min <= switch <= low.model.lambda_max:
            raise ValueError(f"switch {switch:g} must lie where both models' lambda ranges overlap")
        self.low, self.high, self.switch = low, high, float(np.float32(switch))
        # what callers read from a codec: the low-rate model names the ladder
        self.model, self.name, self.device = low.model, low.name, low.device

    @property
    def lambda_range(self) -> tuple[float, float]:
        return self.low.model.lambda_min, self.high.model.lambda_max

    def pick(self, lmbda: float) -> Codec:
        """The model that codes at ``lmbda``."""
        return self.low if lmbda <= self.switch else self.high

    def resolve_lambda(self, quality: Optional[float] = None, lmbda: Optional[float] = None) -> float:
        if lmbda is not None and quality is None:
            try:
                check_lambda_range(lmbda, *self.lambda_range)
            except ValueError as exc:
                raise PlicError(str(exc)) from None
            return float(np.float32(lmbda))
        return self.low.resolve_lambda(quality, lmbda)

    def encode(self, img: PlanarImage, quality: Optional[float] = None,
               lmbda: Optional[float] = None) -> EncodeResult:
        lam = self.resolve_lambda(quality, lmbda)
        return self.pick(lam).encode(img, lmbda=lam)

    def _low_at_switch(self, img: PlanarImage) -> tuple[torch.Tensor, PlicFile]:
        """The low-rate model's analysis of ``img`` and its file at the switch (the analysis is reused)."""
        y = self.low.analysis(img)
        return y, self.low.encode_planes(img, self.switch, y)

    def encode_to_bpp(self, img: PlanarImage, bpp: float, **kw) -> EncodeResult:
        """The low-rate model's search if its file at the switch is at least ``bpp``, else the partner's."""
        y, at_switch = self._low_at_switch(img)
        if bpp <= 8 * len(bitstream.pack(at_switch)) / (img.height * img.width):
            return self.low.encode_to_bpp(img, bpp, y=y, **kw)
        return self.high.encode_to_bpp(img, bpp, **kw)

    def encode_to_psnr(self, img: PlanarImage, target: float, **kw) -> EncodeResult:
        """As :meth:`encode_to_bpp`, on the PSNR of the low-rate model's file at the switch."""
        y, at_switch = self._low_at_switch(img)
        rec = quantize_rgb(self.low.decode_file(at_switch)).cpu()
        if target <= psnr(rec, img.rgb):
            return self.low.encode_to_psnr(img, target, y=y, **kw)
        return self.high.encode_to_psnr(img, target, **kw)

    def _for_file(self, f: PlicFile) -> Codec:
        for codec in (self.low, self.high):
            if f.header.model == codec.name and f.header.fingerprint == codec.model.fingerprint:
                return codec
        return self.low  # whose check_header explains the mismatch

    def decode_file(self, f: PlicFile):
        return self._for_file(f).decode_file(f)

    def decode(self, data: bytes):
        return self._for_file(bitstream.parse(data)).decode(data)

