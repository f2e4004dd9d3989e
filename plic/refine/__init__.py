"""Encode-time optimisation: SGA+ latent refinement and SNIC substitutes (same decoder, same format)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import List, Optional

from plic import bitstream
from plic.codec import Codec, EncodeResult
from plic.errors import PlicError
from plic.image_io import PlanarImage
from plic.refine.optimize import Objective, Result, Settings, optimise
from plic.units import psnr_from_mse

#: ``--refine`` choices: what is optimised, in order
PLANS = {
    "sga+": ("latent",),  # SGA+ (or SGA / STE / noise with --rounding)
    "snic": ("image",),  # substitutional image
    "snic-latent": ("latent",),  # substitutional latent: the SNIC objective on the latent
    "snic+sga+": ("image", "latent"),  # substitute first, then refine its latents
}
#: the quantization surrogate each stage uses unless --rounding says otherwise. Images
#: use additive noise: measured on Kodak, straight-through rounding makes the true
#: loss of a substitute image worse, noise makes it better.
DEFAULT_ROUNDING = {"image": "noise", "latent": "ssl"}
DEFAULT_LR = {"image": 3e-3, "latent": 5e-3}


@dataclass
class Refined:
    encoded: EncodeResult
    stages: List[Result]


def refine_encode(codec: Codec, img: PlanarImage, lmbda: float, plan: str, objective: Objective,
                  settings: Settings, rounding: Optional[str] = None, lr: Optional[float] = None,
                  progress=None) -> Refined:
    """Optimise ``img``'s encoding with ``plan`` (a key of :data:`PLANS`) and code it for real."""
    if plan not in PLANS:
        raise PlicError(f"unknown refinement {plan!r} (known: {', '.join(PLANS)})")
    t0 = time.perf_counter()
    stages: List[Result] = []
    substitute = None
    for space in PLANS[plan]:
        s = Settings(**{**settings.__dict__,
                        "rounding": rounding or DEFAULT_ROUNDING[space],
                        "lr": lr or DEFAULT_LR[space]})
        res = optimise(codec, img, lmbda, objective, s, space=space, start=substitute,
                       progress=None if progress is None else (lambda i, st, sp=space: progress(sp, i, st)))
        stages.append(res)
        if space == "image":
            substitute = res.x
    last = stages[-1]
    if last.x is not None:  # a substitute image: the ordinary encoder codes it
        y = codec.analysis(PlanarImage(last.x.cpu(), 3, 8))
        landed = _land_on_target(codec, img, objective, y)
        if landed is not None:
            return Refined(EncodeResult(landed.data, landed.bpp, time.perf_counter() - t0), stages)
        f = codec.encode_planes(img, lmbda, y=y)
    else:
        f = codec.encode_planes(img, lmbda, latent=last.y, z=last.z)
    data = bitstream.pack(f)
    return Refined(EncodeResult(data, 8 * len(data) / (img.height * img.width), time.perf_counter() - t0), stages)


def _land_on_target(codec: Codec, img: PlanarImage, objective: Objective, y) -> Optional[EncodeResult]:
    """Code a substitute's latent ``y`` at the lambda that meets the objective's target in real files.

    The optimisation's rate is the surrogate's (noise or soft rounding), not
    the entropy coder's: coding the substitute at the starting lambda landed
    8-16 % under a target bpp on Kodak after 30 steps. A variable-rate model
    can re-pick the coding lambda for the substitute, as ``--bpp`` does for
    the original. None: nothing to re-pick (no target, fixed rate, a target
    quality in a metric other than MSE, or a target out of the substitute's
    reach), and the substitute is coded at the optimisation's lambda.
    """
    if not codec.model.variable_rate:
        return None
    try:
        if objective.target_bpp is not None:
            return codec.encode_to_bpp(img, objective.target_bpp, y=y)
        if objective.target_distortion is not None and objective.distortion == "mse":
            return codec.encode_to_psnr(img, psnr_from_mse(objective.target_distortion), y=y)
    except PlicError:
        return None
    return None


__all__ = ["Objective", "Settings", "PLANS", "Refined", "refine_encode"]
