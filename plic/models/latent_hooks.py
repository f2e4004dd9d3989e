"""Run a frozen model's latent codec with another quantization surrogate.

compressai's latent codecs quantize in three places: ``EntropyModel.quantize``
(the entropy bottleneck of z and the Gaussian conditional of y, both centred
on their medians/means), the straight-through override of the hyperprior
latent codecs (``quantizer="ste"``), and the checkerboard codec's two-pass
forward, which calls ``compressai.latent_codecs.checkerboard.quantize_ste`` on
``y - means``. :func:`quantized_with` redirects all three to one function of
the centred value, so every plic model (hyperprior, ELIC) is refined through
its own, unchanged entropy model. A latent codec that quantizes elsewhere
(CompressAI's vbr models: :mod:`plic.models.vbr`) declares a
``refine_quantizer`` attribute, None outside the block, and quantizes with it
inside. :func:`fixed_hyper_latent` makes the hyper
analysis return a given z, so z can be refined as a variable of its own (and
coded as refined).
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Optional

import compressai.latent_codecs.checkerboard as checkerboard
from compressai.entropy_models import EntropyModel
from torch import Tensor, nn


@contextlib.contextmanager
def quantized_with(latent_codec: nn.Module, fn: Callable[[Tensor], Tensor]) -> Iterator[None]:
    """Inside the block, every quantization in ``latent_codec`` is ``means + fn(x - means)``."""

    def quantize(inputs: Tensor, mode: str, means: Optional[Tensor] = None) -> Tensor:
        if mode == "symbols":  # the real coder: never replaced
            return EntropyModel.quantize(None, inputs, mode, means)
        if means is None:
            return fn(inputs)
        return means + fn(inputs - means)

    patched, quantizers, own = [], [], []
    for module in latent_codec.modules():
        if isinstance(module, EntropyModel):
            module.quantize = quantize
            patched.append(module)
        if hasattr(module, "refine_quantizer"):
            module.refine_quantizer = fn
            own.append(module)
        if isinstance(getattr(module, "quantizer", None), str):
            quantizers.append((module, module.quantizer))
            module.quantizer = "plic"  # neither "ste" nor "noise": no override of y_hat
    original_ste = checkerboard.quantize_ste
    checkerboard.quantize_ste = fn
    try:
        yield
    finally:
        checkerboard.quantize_ste = original_ste
        for module in patched:
            del module.quantize
        for module in own:
            module.refine_quantizer = None
        for module, value in quantizers:
            module.quantizer = value


class _Given(nn.Module):
    def __init__(self, z: Tensor):
        super().__init__()
        self.z = z

    def forward(self, y: Tensor) -> Tensor:
        return self.z


@contextlib.contextmanager
def fixed_hyper_latent(latent_codec: nn.Module, z: Optional[Tensor]) -> Iterator[None]:
    """Inside the block, the hyper analysis returns ``z`` (no change when ``z`` is None)."""
    if z is None:
        yield
        return
    hyper = latent_codec["hyper"]
    h_a = hyper.h_a
    hyper.h_a = _Given(z)
    try:
        yield
    finally:
        hyper.h_a = h_a


def hyper_analysis(latent_codec: nn.Module, y: Tensor) -> Tensor:
    """The hyper-latent of ``y`` (a latent codec whose hyper path sees another input says so: ``hyper_latent``)."""
    own = getattr(latent_codec, "hyper_latent", None)
    return own(y) if own is not None else latent_codec["hyper"].h_a(y)
