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
        f = codec.encode_planes(img, lmbda, y=codec.analysis(PlanarImage(last.x.cpu(), 3, 8)))
    else:
        f = codec.encode_planes(img, lmbda, latent=last.y, z=last.z)
    data = bitstream.pack(f)
    return Refined(EncodeResult(data, 8 * len(data) / (img.height * img.width), time.perf_counter() - t0), stages)


__all__ = ["Objective", "Settings", "PLANS", "Refined", "refine_encode"]
