"""The one loop of encode-time optimisation with a frozen model, over either space.

Both spaces minimise a rate-distortion objective for one image through the
model's own entropy model, then hand the result to the ordinary encoder, so
the bitstream and the decoder are unchanged: the latent space
(:mod:`plic.refine.sga`: SGA+ and SNIC's substitutional latent) and the image
space (:mod:`plic.refine.snic`: SNIC's substitutional image). The loop is
Adam on the space's variables with an annealed soft rounding; the space says
what the variables are, how they become latents and what keeps them valid.
"""

from __future__ import annotations

import math
import time
from typing import Dict, List, Optional

import torch
from torch import Tensor

from plic.errors import PlicError
from plic.image_io import PlanarImage
from plic.losses.distortion import distortion_fn
from plic.models.frozen import frozen
from plic.refine.problem import FrozenProblem, Objective, Result, Settings, check_precision
from plic.refine.rounding import rounding_fn, temperature
from plic.refine.sga import LatentSpace
from plic.refine.snic import ImageSpace

#: the spaces by name (``refine.PLANS`` lists them per --refine choice)
SPACES = {"latent": LatentSpace, "image": ImageSpace}


def optimise(codec, img: PlanarImage, lmbda: float, objective: Objective, settings: Settings,
             space: str = "latent", start: Optional[Tensor] = None, progress=None) -> Result:
    """Optimise ``space`` ("latent" or "image") for one image; see the module doc.

    ``start`` is a substitute image (padded) to begin a latent refinement from
    (SNIC then SGA+). ``progress(step, stats)`` is called after every step.
    """
    settings.check()
    check_precision(settings.precision, objective.distortion)
    if space not in SPACES:
        raise ValueError(space)
    room = LatentSpace(settings.refine_z) if space == "latent" else ImageSpace()
    t0 = time.perf_counter()
    problem = FrozenProblem(codec, img, lmbda)
    dist = distortion_fn(objective.distortion, problem.device, keep_reference=True,  # problem.x0 every step
                         bf16=settings.precision == "bf16")
    gen = torch.Generator().manual_seed(settings.seed)
    shape_params = {"a": settings.a, "scale": settings.scale, "power": settings.power, "clip": settings.clip}
    soft = rounding_fn(settings.rounding, **shape_params)
    with frozen(codec.model):
        with torch.no_grad():
            x_start = problem.x0_padded if start is None else start.to(problem.x0_padded)
            variables = [v.clone().requires_grad_(True) for v in room.start(problem, x_start)]
            # scale the objective from the starting point (hard rounding)
            bpp0, x_hat0 = problem.rate_and_image(*room.latents(problem, variables), torch.round)
            d0 = dist(x_hat0, problem.x0)
            objective.start_d, objective.start_bpp = float(d0.mean()), float(bpp0)
            if objective.distortion != "mse":
                mse0 = float(((x_hat0 - problem.x0) ** 2).mean())
                objective.balance = 255.0**2 * mse0 / max(float(d0.mean()), 1e-12)
        opt = torch.optim.Adam(variables, lr=settings.lr)

        def evaluate(fn, grad: bool):
            with torch.set_grad_enabled(grad):
                y, z = room.latents(problem, variables)
                bpp, x_hat = problem.rate_and_image(y, z, fn)
                d = dist(x_hat, problem.x0).mean()
                if grad and objective.targeted:
                    # A target is met by the file, not by the surrogate: the
                    # constraint sees the hard-rounded value of its own measure,
                    # with the surrogate's gradient (noise alone overstates the
                    # rate of near-zero latents several-fold at low rates). The
                    # other term enters the objective linearly, so its value
                    # moves no gradient and stays the surrogate's: a rate target
                    # needs no hard-rounded image (a synthesis and a loss-network
                    # pass saved per step). The loss returned (progress, the
                    # divergence check) is therefore not the true loss: record's is.
                    # (the hard value under no_grad only: the sum keeps the surrogate's graph)
                    if objective.target_bpp is not None:
                        with torch.no_grad():
                            hard = problem.rate(y, z, torch.round)
                        bpp = bpp + (hard - bpp).detach()
                    else:
                        with torch.no_grad():
                            hard = dist(problem.rate_and_image(y, z, torch.round)[1], problem.x0).mean()
                        d = d + (hard - d).detach()
                loss = objective(d, bpp)
            return loss, bpp, d

        trace: List[Dict[str, float]] = []

        def record(step: int, measured=None) -> None:
            """The true (hard-rounded) loss at ``step``; ``measured``: its ``(bpp, d)``, already at hand."""
            with torch.no_grad():
                bpp, d = measured or evaluate(torch.round, grad=False)[1:]
                loss = objective(d, bpp)
            trace.append({"step": step, "true_loss": float(loss), "bpp": float(bpp), "distortion": float(d)})

        tau_rate = settings.tau_rate if settings.tau_rate is not None else 2.0 / max(settings.steps, 1)
        record(0, (bpp0, d0.mean()))  # the starting point, measured above: no second synthesis and loss-network pass
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
            room.project(variables)
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
        with torch.no_grad():
            y, z = room.latents(problem, out)
    return Result(y, z, room.substitute(out), trace, time.perf_counter() - t0, per_step)


__all__ = ["Objective", "Result", "Settings", "SPACES", "optimise"]
