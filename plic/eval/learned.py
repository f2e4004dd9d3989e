"""plic's own models as codecs of the benchmark: ``plic:<name or weights file>``."""

from __future__ import annotations

import functools

import numpy as np
import torch

from plic import zoo
from plic.codec import Codec
from plic.encode import Rate, encode_image
from plic.errors import PlicError
from plic.eval.codecs import ClassicalCodec
from plic.image_io import PlanarImage
from plic.ladder import CodecLadder, shipped_codec


@functools.lru_cache(maxsize=4)
def _load_codec(spec: str, device: str) -> Codec | CodecLadder:
    if spec in zoo.PRETRAINED:  # a shipped name codes as plic compress does, with its low-rate rung if it has one
        return shipped_codec(spec, device)
    return Codec(zoo.load_model(spec, device=device), device=device)


class LearnedCodec(ClassicalCodec):
    """A registry model with its weights; the knob is plic's quality (1..8, fractional allowed)."""

    knob = "quality"
    sweep = [1, 2, 3, 4, 5, 6, 7, 8]
    lo, hi = 1.0, 8.0
    integer = False
    more_bits_when_higher = True

    def __init__(self, spec: str = "hyperprior", device: str = "cpu"):
        self.spec, self.device = spec, device
        self.name = f"plic:{spec}"
        self.label = f"plic {spec}"

    @property
    def codec(self) -> Codec | CodecLadder:
        return _load_codec(self.spec, self.device)

    def unavailable(self) -> str | None:
        try:
            _load_codec(self.spec, self.device)
        except PlicError as exc:
            return str(exc)
        return None

    def encode(self, rgb: np.ndarray, setting: float) -> bytes:
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0
        return encode_image(self.codec, PlanarImage(x, 3, 8), Rate(quality=float(setting))).result.data

    def decode(self, data: bytes) -> np.ndarray:
        im, _ = self.codec.decode(data)
        return np.asarray(im.convert("RGB"))

    def version(self) -> str:
        c = self.codec
        if isinstance(c, CodecLadder):  # new weights on either rung make new points
            return (f"plic {self.spec} (weights {c.low.model.fingerprint.hex()[:16]} up to lambda {c.switch:g}, "
                    f"{c.high.model.fingerprint.hex()[:16]} above)")
        return f"plic {self.spec} (weights {c.model.fingerprint.hex()[:16]})"


def make_codec(spec: str, device: str = "cpu") -> ClassicalCodec:
    """``plic:<model>`` or a classical codec name."""
    from plic.eval.codecs import CLASSICAL_CODECS, classical_codec

    if spec.startswith("plic:"):
        return LearnedCodec(spec[5:] or "hyperprior", device)
    if spec.startswith("compressai:"):
        from plic.eval.compressai_codec import CompressAICodec

        return CompressAICodec(spec[len("compressai:"):])
    if spec == "plic":
        return LearnedCodec("hyperprior", device)
    try:
        return classical_codec(spec)
    except PlicError:
        raise PlicError(f"unknown codec {spec!r}; known: plic:<model name or weights file>, compressai:<zoo architecture>, "
                        f"{', '.join(CLASSICAL_CODECS)}") from None
