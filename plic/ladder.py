"""Two variable-rate models, each coding the rates it was trained for, as one codec.

One small model cannot be best at every rate. A GAN-finetuned codec shows
this most: finetuned on the whole range, its adversary and its perceptual
losses settle on a compromise, and finetuned on the low rates alone (lambda
1e-4..0.003, up to about 0.25 bpp on Kodak) it gains about 6 % LPIPS-Alex and
DISTS at 0.075 bpp (benchmarks/perceptual/README.md). CompressAI's zoo likewise changes
weights, and even architecture, along its qualities (bmshj2018: N=128/M=192
for qualities 1-5, N=192/M=320 for 6-8).

A ladder codes with ``low`` up to lambda ``switch`` and with ``high`` above
it. Both rungs are trained for the same Lagrangian, so a lambda means the same
trade-off in either, and ``--quality`` 1..8 maps log-linearly onto the
ladder's whole range. Each file names its rung's weights (model and
fingerprint), so any plic decoder decodes it with the shipped weights it
holds; nothing in the bitstream is specific to the ladder. ``plic.zoo.LOW_RATE``
names the shipped ladders; ``projects/ladder`` measures a switch on training
crops for a pair trained for MSE.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Optional

import numpy as np
import torch

from plic import bitstream
from plic.bitstream import PlicFile
from plic.codec import Codec, EncodeResult, psnr
from plic.errors import PlicError
from plic.image_io import PlanarImage, quantize_rgb
from plic.models.base import check_lambda_range, quality_to_lambda


class CodecLadder:
    """``low`` for lambda <= ``switch``, ``high`` above; quality 1..8 spans both ranges."""

    def __init__(self, low: Codec, high: Codec, switch: float):
        if not (low.model.variable_rate and high.model.variable_rate):
            raise ValueError("a ladder needs two variable-rate models")
        if not high.model.lambda_min <= switch <= low.model.lambda_max:
            raise ValueError(f"switch {switch:g} must lie where both models' lambda ranges overlap")
        if low.model.lambda_min > high.model.lambda_min or low.model.lambda_max > high.model.lambda_max:
            raise ValueError("the low rung's lambda range must start and end at or below the high rung's")
        self.low, self.high, self.switch = low, high, float(np.float32(switch))
        self.rungs = (low, high)
        # what callers read from a codec (whether it is variable-rate, its device) they read from the
        # low rung; what differs between rungs (refinability, weights) they ask of each one (``rungs``)
        self.model, self.name, self.device = low.model, low.name, low.device
        self.label: Optional[str] = None  # the shipped name, when loaded by name

    @property
    def lambda_range(self) -> tuple[float, float]:
        return self.low.model.lambda_min, self.high.model.lambda_max

    def pick(self, lmbda: float) -> Codec:
        """The rung that codes at ``lmbda``."""
        return self.low if lmbda <= self.switch else self.high

    def for_file(self, f: PlicFile) -> Codec:
        """The rung whose weights wrote ``f`` (the low one, whose check_header explains a mismatch, if neither)."""
        for codec in self.rungs:
            if f.header.model == codec.name and f.header.fingerprint == codec.model.fingerprint:
                return codec
        return self.low

    def resolve_lambda(self, quality: Optional[float] = None, lmbda: Optional[float] = None) -> float:
        if quality is not None and lmbda is not None:
            raise PlicError("give --quality or --lambda, not both")
        try:
            if lmbda is not None:
                check_lambda_range(lmbda, *self.lambda_range)
                value = lmbda
            else:
                value = quality_to_lambda(4.0 if quality is None else float(quality), *self.lambda_range)
        except ValueError as exc:
            raise PlicError(str(exc)) from None
        return float(np.float32(value))  # the header stores float32

    def encode(self, img: PlanarImage, quality: Optional[float] = None,
               lmbda: Optional[float] = None) -> EncodeResult:
        lam = self.resolve_lambda(quality, lmbda)
        return self.pick(lam).encode(img, lmbda=lam)

    def _low_at_switch(self, img: PlanarImage) -> tuple[torch.Tensor, PlicFile]:
        """The low rung's analysis of ``img`` and its file at the switch (the analysis is reused)."""
        y = self.low.analysis(img)
        return y, self.low.encode_planes(img, self.switch, y)

    def encode_to_bpp(self, img: PlanarImage, bpp: float, **kw) -> EncodeResult:
        """The low rung's search if its file at the switch is at least ``bpp``, else the high rung's.

        The high rung searches its whole range, so a target just above the low rung's file at the
        switch may be coded by the high rung below the switch: its file still names its weights.
        """
        t0 = time.perf_counter()
        y, at_switch = self._low_at_switch(img)
        if bpp <= 8 * len(bitstream.pack(at_switch)) / (img.height * img.width):
            return _with_probe(self.low.encode_to_bpp(img, bpp, y=y, **kw), t0)
        return _with_probe(self.high.encode_to_bpp(img, bpp, **kw), t0)

    def encode_to_psnr(self, img: PlanarImage, target: float, **kw) -> EncodeResult:
        """As :meth:`encode_to_bpp`, on the PSNR of the low rung's file at the switch."""
        t0 = time.perf_counter()
        y, at_switch = self._low_at_switch(img)
        rec = quantize_rgb(self.low.decode_file(at_switch)).cpu()
        if target <= psnr(rec, img.rgb):
            return _with_probe(self.low.encode_to_psnr(img, target, y=y, **kw), t0)
        return _with_probe(self.high.encode_to_psnr(img, target, **kw), t0)

    def decode_file(self, f: PlicFile):
        return self.for_file(f).decode_file(f)

    def decode(self, data: bytes):
        return self.for_file(bitstream.parse(data)).decode(data)


def _with_probe(result: EncodeResult, t0: float) -> EncodeResult:
    """``result`` timed from ``t0``: the probe at the switch is part of the encode."""
    return dataclasses.replace(result, seconds=time.perf_counter() - t0)


def shipped_codec(name: str, device: str = "cpu", exact: bool = True, ladder: bool = True) -> Codec | CodecLadder:
    """A shipped model by name (``plic.zoo.PRETRAINED``) as a codec labelled with that name: a ladder
    where ``plic.zoo.LOW_RATE`` gives it a low-rate rung, unless ``ladder`` is False (a decoder that
    knows which rung wrote its file needs only that one)."""
    from plic import zoo

    def rung(shipped: str) -> Codec:
        codec = Codec(zoo.load_model(shipped, device), device=device, exact=exact)
        codec.label = shipped
        return codec

    high = rung(name)
    if name not in zoo.LOW_RATE or not ladder:
        return high
    low_name, switch = zoo.LOW_RATE[name]
    ladder = CodecLadder(rung(low_name), high, switch)
    ladder.label = name
    return ladder
