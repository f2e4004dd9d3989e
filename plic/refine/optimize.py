"""Encode-time optimisation with a frozen model: SGA+ latent refinement and SNIC substitutes.

Both minimise a rate-distortion objective for one image through the model's
own entropy model, then hand the result to the ordinary encoder, so the
bitstream and the decoder are unchanged:

* **latent refinement** (SGA, Yang et al. 2020; SGA+, Perugachi-Diaz et al.):
  the variables are the latent the entropy coder codes (``y / a``) and the
  hyper-latent ``z``; quantization is replaced by a soft rounding
  (:mod:`plic.refine.rounding`) whose temperature is annealed;
* **substitutional image** (SNIC, Wang et al.): the variable is the input
  image itself, clipped to [0, 1] after every step; the distortion is always
  measured against the *original* image. The substitutional latent variant
  is the latent refinement above with the SNIC objective.

Objectives (:class:`Objective`): ``lambda * D + R`` (R in bpp); a target rate
``D + kappa * max(R / R_t - 1, margin)``; a target distortion
``R + kappa * max(D / D_t - 1, margin)``. The targets are written relative to
their value (SNIC writes ``max(R - R_t, tau)``), so one ``kappa`` suits every
rate and metric.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from plic.errors import PlicError
from plic.image_io import PlanarImage
from plic.losses.distortion import distortion_fn
from plic.models.frozen import frozen
from plic.models.latent_hooks import fixed_hyper_latent, hyper_analysis, quantized_with
from plic.refine.rounding import METHODS, rounding_fn, temperature


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

    def check(self) -> None:
        if self.steps < 0:
            raise PlicError(f"--steps must be 0 or more, not {self.steps}")
        if not self.lr > 0:
            raise PlicError(f"the learning rate must be positive, not {self.lr}")
        if self.rounding not in METHODS:
            raise PlicError(f"unknown rounding {self.rounding!r} (known: {', '.join(METHODS)})")
        if not (self.tau_max > 0 and (self.tau_rate or 0) >= 0 and self.scale > 0
                and (self.power or 1) > 0 and self.a > 0):
            raise PlicError("rounding parameters must be positive")


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


class _Frozen:
    """The model, frozen, with the pieces the optimisation calls."""

    def __init__(self, codec, img: PlanarImage, lmbda: float):
        self.model = codec.model
        self.device = codec.device
        self.lc = self.model.latent_codec
        self.h, self.w = img.height, img.width
        x = img.rgb.to(self.device, torch.float32)
        stride = self.model.stride
        ph, pw = (-self.h) % stride, (-self.w) % stride
        self.x0 = x  # the original: every distortion is measured against it
        self.x0_padded = F.pad(x, (0, pw, 0, ph), mode="replicate") if (ph or pw) else x
        self.a = self.model.quant_step(torch.tensor([lmbda])).to(self.device, torch.float32)
        self.pixels = self.h * self.w

    def analysis(self, x: Tensor) -> Tensor:
        return self.model.g_a(x) / self.a

    def rate_and_image(self, y: Tensor, z: Optional[Tensor], fn: Callable[[Tensor], Tensor]):
        with quantized_with(self.lc, fn), fixed_hyper_latent(self.lc, z):
            out = self.lc(y)
        bits = sum(-torch.log2(lik).sum() for lik in out["likelihoods"].values())
        x_hat = self.model.g_s(out["y_hat"] * self.a)[..., : self.h, : self.w]
        refiner = getattr(self.model, "refiner", None)
        if refiner is not None:  # what the decoder shows is the refined image: optimise that
            x_hat = refiner(x_hat.clamp(0, 1))
        return bits / self.pixels, x_hat


def optimise(codec, img: PlanarImage, lmbda: float, objective: Objective, settings: Settings,
             space: str = "latent", start: Optional[Tensor] = None, progress=None) -> Result:
    """Optimise ``space`` ("latent" or "image") for one image; see the module doc.

    ``start`` is a substitute image (padded) to begin a latent refinement from
    (SNIC then SGA+). ``progress(step, stats)`` is called after every step.
    """
    settings.check()
    if space not in ("latent", "image"):
        raise ValueError(space)
    t0 = time.perf_counter()
    problem = _Frozen(codec, img, lmbda)
    dist = distortion_fn(objective.distortion, problem.device)
    gen = torch.Generator().manual_seed(settings.seed)
    shape_params = {"a": settings.a, "scale": settings.scale, "power": settings.power, "clip": settings.clip}
    soft = rounding_fn(settings.rounding, **shape_params)
    with frozen(codec.model):
        with torch.no_grad():
            x_start = problem.x0_padded if start is None else start.to(problem.x0_padded)
            y0 = problem.analysis(x_start)
            z0 = hyper_analysis(problem.lc, y0) if settings.refine_z and space == "latent" else None
            # scale the objective from the starting point (hard rounding)
            bpp0, x_hat0 = problem.rate_and_image(y0, z0, torch.round)
            d0 = dist(x_hat0, problem.x0)
            objective.start_d, objective.start_bpp = float(d0.mean()), float(bpp0)
            if objective.distortion != "mse":
                mse0 = float(((x_hat0 - problem.x0) ** 2).mean())
                objective.balance = 255.0**2 * mse0 / max(float(d0.mean()), 1e-12)
        if space == "latent":
            variables = [y0.clone().requires_grad_(True)]
            if z0 is not None:
                variables.append(z0.clone().requires_grad_(True))
        else:
            variables = [x_start.clone().requires_grad_(True)]
        opt = torch.optim.Adam(variables, lr=settings.lr)

        def evaluate(fn, grad: bool):
            if space == "latent":
                y, z = variables[0], (variables[1] if len(variables) > 1 else None)
            else:
                y, z = problem.analysis(variables[0]), None
            with torch.set_grad_enabled(grad):
                bpp, x_hat = problem.rate_and_image(y, z, fn)
                d = dist(x_hat, problem.x0).mean()
                if grad and objective.targeted:
                    # A target is met by the file, not by the surrogate: the
                    # constraint sees the hard-rounded rate and distortion, with
                    # the surrogate's gradient (noise alone overstates the rate
                    # of near-zero latents several-fold at low rates).
                    with torch.no_grad():
                        bpp_hard, x_hard = problem.rate_and_image(y, z, torch.round)
                        d_hard = dist(x_hard, problem.x0).mean()
                    bpp = bpp + (bpp_hard - bpp).detach()
                    d = d + (d_hard - d).detach()
                loss = objective(d, bpp)
            return loss, bpp, d

        trace: List[Dict[str, float]] = []

        def record(step: int) -> None:
            with torch.no_grad():
                loss, bpp, d = evaluate(torch.round, grad=False)
            trace.append({"step": step, "true_loss": float(loss), "bpp": float(bpp), "distortion": float(d)})

        tau_rate = settings.tau_rate if settings.tau_rate is not None else 2.0 / max(settings.steps, 1)
        record(0)
        t_steps = time.perf_counter()
        for step in range(1, settings.steps + 1):
            tau = temperature(step, tau_rate, settings.tau_max)
            # one Gumbel/noise draw per step, reused by every quantizer call of the
            # step (the checkerboard codec quantizes y twice: context and rate)
            step_seed = int(torch.randint(2**62, (1,), generator=gen))

            def fn(v: Tensor, tau=tau, step_seed=step_seed) -> Tensor:
                return soft(v, tau, generator=torch.Generator().manual_seed(step_seed))

            loss, bpp, d = evaluate(fn, grad=True)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if space == "image":
                with torch.no_grad():
                    variables[0].clamp_(0, 1)
            if not math.isfinite(float(loss.detach())):
                raise PlicError(f"the optimisation diverged at step {step}; lower the learning rate")
            if settings.trace_every and step % settings.trace_every == 0 and step != settings.steps:
                record(step)
            if progress:
                progress(step, {"loss": float(loss), "bpp": float(bpp), "tau": tau})
        per_step = (time.perf_counter() - t_steps) / max(settings.steps, 1)
        if settings.steps:
            record(settings.steps)
    out = [v.detach() for v in variables]
    if space == "latent":
        return Result(out[0], out[1] if len(out) > 1 else None, None, trace, time.perf_counter() - t0, per_step)
    with torch.no_grad():
        y = problem.analysis(out[0])
    return Result(y, None, out[0], trace, time.perf_counter() - t0, per_step)
