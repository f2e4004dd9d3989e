"""What an encode-time optimisation is given: its settings, its objective, the frozen model and image.

Objectives (:class:`Objective`): ``lambda * D + R`` (R in bpp); a target rate
``D + kappa * max(R / R_t - 1, margin)``; a target distortion
``R + kappa * max(D / D_t - 1, margin)``. The targets are written relative to
their value (SNIC writes ``max(R - R_t, tau)``), so one ``kappa`` suits every
rate and metric.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from plic.errors import PlicError
from plic.image_io import PlanarImage
from plic.models.latent_hooks import fixed_hyper_latent, quantized_with
from plic.refine.rounding import METHODS

#: ``Settings.precision`` choices
PRECISIONS = ("fp32", "bf16")


@dataclass
class Settings:
    """How to optimise. Defaults: see docs/refine.md for why."""

    steps: int = 500
    lr: float = 5e-3
    rounding: str = "ssl"
    a: float = 2.3  # SSL shape
    scale: float = 0.98  # three-class r
    power: Optional[float] = None  # three-class n (None: the family's default)
    clip: float = 1e-6  # three-class floor
    tau_rate: Optional[float] = None  # None: 2 / steps, so tau ends at exp(-2) for any step count
    tau_max: float = 1.0
    refine_z: bool = True
    seed: int = 0
    trace_every: int = 0  # record the true (hard-rounded) loss every k steps; 0: only at the ends
    #: the perceptual loss network's arithmetic: "bf16" halves its forward and backward on CPUs that
    #: do bfloat16 natively (AVX512-BF16, AMX; measured on CPU only); the model stays in float32
    precision: str = "fp32"

    def check(self) -> None:
        if self.steps < 0:
            raise PlicError(f"--steps must be 0 or more, not {self.steps}")
        if not self.lr > 0:
            raise PlicError(f"the learning rate must be positive, not {self.lr}")
        if self.rounding not in METHODS:
            raise PlicError(f"unknown rounding {self.rounding!r} (known: {', '.join(METHODS)})")
        check_precision(self.precision)
        if not (self.tau_max > 0 and (self.tau_rate or 0) >= 0 and self.scale > 0
                and (self.power or 1) > 0 and self.a > 0):
            raise PlicError("rounding parameters must be positive")


def check_precision(precision: str, distortion: Optional[str] = None) -> None:
    """Refuse an unknown precision, and bf16 for a distortion no network measures (nothing to run in it)."""
    from plic.losses.distortion import NETWORK_DISTORTIONS

    if precision not in PRECISIONS:
        raise PlicError(f"unknown precision {precision!r} (known: {', '.join(PRECISIONS)})")
    if precision != "fp32" and distortion is not None and distortion not in NETWORK_DISTORTIONS:
        raise PlicError(f"precision {precision} is the arithmetic of a perceptual loss network "
                        f"({', '.join(NETWORK_DISTORTIONS)}); {distortion} has none")


@dataclass
class Objective:
    """What is minimised; ``distortion`` names a :func:`distortion_fn`."""

    lmbda: float
    distortion: str = "mse"
    target_bpp: Optional[float] = None
    target_distortion: Optional[float] = None  # in the distortion's units (MSE on the [0, 1] scale)
    kappa: float = 20.0
    margin: float = 0.0
    #: weight bringing a non-MSE distortion to the scale of 255^2 * MSE at the start
    balance: float = 1.0

    def __post_init__(self):
        if self.target_bpp is not None and self.target_distortion is not None:
            raise PlicError("give a target rate or a target quality, not both")

    @property
    def targeted(self) -> bool:
        return self.target_bpp is not None or self.target_distortion is not None

    def __call__(self, d: Tensor, bpp: Tensor) -> Tensor:
        if self.target_bpp is not None:
            return d / self.start_d + self.kappa * torch.clamp(bpp / self.target_bpp - 1, min=self.margin)
        if self.target_distortion is not None:
            return bpp / self.start_bpp + self.kappa * torch.clamp(d / self.target_distortion - 1, min=self.margin)
        scale = 255.0**2 if self.distortion == "mse" else self.balance
        return self.lmbda * scale * d + bpp

    start_d: float = field(default=1.0, repr=False)
    start_bpp: float = field(default=1.0, repr=False)


@dataclass
class Result:
    y: Tensor  # what the entropy coder codes (analysis output / QVRF step), padded size
    z: Optional[Tensor]  # refined hyper-latent, or None (derived from y)
    x: Optional[Tensor]  # substitute image (padded), or None
    trace: List[Dict[str, float]]
    seconds: float
    seconds_per_step: float


def check_refinable(model) -> None:
    """Refuse models whose coded symbols the optimisation cannot see.

    compressai's raster-scan context model (mbt2018, cheng2020) rounds y
    without its means in its differentiable forward, while the file codes
    ``round(y - mean) + mean``: an optimisation would aim at a reconstruction
    the decoder never shows (up to 0.045 apart on a test model).
    """
    from compressai.latent_codecs import RasterScanLatentCodec

    reason = getattr(model, "not_refinable", None)
    if not reason and any(isinstance(m, RasterScanLatentCodec) for m in model.latent_codec.modules()):
        reason = "its autoregressive context is coded around means its training-time forward does not use"
    if reason:
        raise PlicError(f"encode-time refinement (--refine, or a target on a single fixed-rate model) is not "
                        f"available for {model.registry_name}: {reason}")


class FrozenProblem:
    """One image and the frozen model, with the pieces an optimisation calls."""

    def __init__(self, codec, img: PlanarImage, lmbda: float):
        check_refinable(codec.model)
        self.model = codec.model
        self.device = codec.device
        self.lc = self.model.latent_codec
        self.h, self.w = img.height, img.width
        x = img.rgb.to(self.device, torch.float32)
        stride = self.model.stride
        ph, pw = (-self.h) % stride, (-self.w) % stride
        self.x0 = x  # the original: every distortion is measured against it
        self.x0_padded = F.pad(x, (0, pw, 0, ph), mode="replicate") if (ph or pw) else x
        # a constant of the problem (a vbr model's step comes from its gain parameters: no graph to keep)
        self.a = self.model.quant_step(torch.tensor([lmbda])).detach().to(self.device, torch.float32)
        bind = getattr(self.lc, "bind", None)
        if bind is not None:  # entropy models that depend on the rate (CompressAI's vbr) code at lmbda
            bind(float(lmbda))
        self.pixels = self.h * self.w

    def analysis(self, x: Tensor) -> Tensor:
        return self.model.g_a(x) / self.a

    def rate(self, y: Tensor, z: Optional[Tensor], fn: Callable[[Tensor], Tensor]) -> Tensor:
        """The rate in bpp alone: the entropy model, without the synthesis."""
        return self._latents(y, z, fn)[0]

    def _latents(self, y: Tensor, z: Optional[Tensor], fn: Callable[[Tensor], Tensor]):
        with quantized_with(self.lc, fn), fixed_hyper_latent(self.lc, z):
            out = self.lc(y)
        bits = sum(-torch.log2(lik).sum() for lik in out["likelihoods"].values())
        return bits / self.pixels, out

    def rate_and_image(self, y: Tensor, z: Optional[Tensor], fn: Callable[[Tensor], Tensor]):
        bpp, out = self._latents(y, z, fn)
        x_hat = self.model.synthesize(out["y_hat"] * self.a, self.a)[..., : self.h, : self.w]
        post_filter = getattr(self.model, "post_filter", None)
        if post_filter is not None:  # what the decoder shows is the post-filtered image: optimise that
            x_hat = post_filter(x_hat.clamp(0, 1))
        return bpp, x_hat
