"""One entry for encoding an image: how its rate is chosen, and what is optimised before it is coded.

``plic compress``, ``plic eval`` and the benchmarks all go through
:func:`encode_image`, so that the policy lives in one place:

- the rate is a quality, a lambda, a target bpp or a target PSNR
  (:class:`Rate`); a variable-rate model searches its lambda for a target,
  per image, on real file sizes or real decodes;
- a fixed-rate model imported from CompressAI (``plic import``) meets a
  target by picking among the qualities of the same source imported on this
  machine (real files, like the lambda search); any other fixed-rate model
  reaches a target only through a SNIC substitute, so a target with no
  refinement on such a model becomes ``snic``;
- a refinement (:class:`Refinement`: SGA+ latents, SNIC substitute image or
  latent) starts from the ordinary encoding at the chosen lambda, with the
  model that coded it (one rung of a ladder), and a SNIC refinement takes the
  target as its own objective.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from plic import bitstream
from plic.codec import EncodeResult, psnr
from plic.errors import OutOfReach, PlicError
from plic.image_io import PlanarImage
from plic.units import mse_from_psnr, psnr_from_mse

PSNR_SLACK = 0.1  # dB a refined file may fall short of --target-psnr: twice the lambda search's own tolerance


@dataclass(frozen=True)
class Rate:
    """How the coding lambda is chosen: at most one of these (none: the model's default quality)."""

    quality: Optional[float] = None
    lmbda: Optional[float] = None
    bpp: Optional[float] = None
    psnr: Optional[float] = None

    def __post_init__(self):
        if sum(v is not None for v in (self.quality, self.lmbda, self.bpp, self.psnr)) > 1:
            raise PlicError("give one of --quality, --lambda, --bpp or --target-psnr")
        if self.bpp is not None and not 0 < self.bpp < 64:
            raise PlicError(f"--bpp must be between 0 and 64, not {self.bpp:g}")
        if self.psnr is not None and not 10 <= self.psnr <= 100:
            raise PlicError(f"--target-psnr must be between 10 and 100 dB, not {self.psnr:g}")

    @property
    def targeted(self) -> bool:
        return self.bpp is not None or self.psnr is not None


@dataclass(frozen=True)
class Refinement:
    """Encode-time optimisation: ``plan`` is a key of :data:`plic.refine.PLANS` or "none"."""

    plan: str = "none"
    steps: int = 500
    rounding: Optional[str] = None  # default: per stage, plic.refine.DEFAULT_ROUNDING
    lr: Optional[float] = None  # default: per stage, plic.refine.DEFAULT_LR
    metric: str = "mse"  # the distortion optimised
    lmbda: Optional[float] = None  # the objective's lambda (default: the coding lambda)
    seed: int = 0
    precision: str = "fp32"  # the perceptual loss network's: plic.refine.problem.PRECISIONS

    @property
    def aims_at_targets(self) -> bool:
        """Whether the optimisation, given a target rate or quality, aims at it (a SNIC stage does;
        SGA+ alone keeps the lambda the target's search picked)."""
        return self.plan not in ("none", "sga+")


@dataclass
class Encoded:
    """The file, the unrefined encoding it started from (None without a refinement), and the
    codec that wrote it (another quality's when a target picked one, a ladder's rung)."""

    result: EncodeResult
    before: Optional[EncodeResult] = None
    codec: Any = None
    decoded: Any = None  # the file's decoded image (1x3xHxW, [0, 1]) where encoding already decoded it


class Encoder:
    """``encode(image)`` for one codec and one setting; the settings are checked once, here.

    ``codec`` is a :class:`plic.codec.Codec` or a :class:`plic.ladder.CodecLadder`.
    """

    def __init__(self, codec, rate: Rate = Rate(), refine: Refinement = Refinement()):
        self.choices = _imported_qualities(codec) if rate.targeted and not codec.variable_rate else []
        one_lambda_for_a_target = rate.targeted and not codec.variable_rate and not self.choices
        if refine.plan == "none" and one_lambda_for_a_target:
            refine = Refinement(**{**refine.__dict__, "plan": "snic"})  # the only way a fixed-rate model meets a target
        if refine.plan == "sga+" and one_lambda_for_a_target:  # sga+ keeps that lambda: the target would be ignored
            raise PlicError(f"this fixed-rate model meets --bpp or --target-psnr only through a SNIC stage; "
                            f"{refine.plan} keeps its lambda (try --refine snic+sga+)")
        if refine.plan != "none":
            from plic.losses.distortion import distortion_fn
            from plic.refine import PLANS
            from plic.refine.problem import check_precision, check_refinable

            # a ladder: at a fixed rate the rung that codes it is the one refined, else each may be
            refined = codec.rungs if rate.targeted else [codec.pick(codec.resolve_lambda(rate.quality, rate.lmbda))]
            for rung in refined:
                check_refinable(rung.model)
            if refine.plan not in PLANS:
                raise PlicError(f"unknown refinement {refine.plan!r} (known: {', '.join(PLANS)})")
            distortion_fn(refine.metric, codec.device)  # missing weights: fail before any work
            check_precision(refine.precision, refine.metric)
            if refine.aims_at_targets and refine.metric != "mse" and rate.psnr is not None:
                raise PlicError("--target-psnr is a PSNR (MSE) target; drop --optimize-for")
        elif refine.metric != "mse" or refine.lmbda is not None or refine.precision != "fp32":
            raise PlicError("--optimize-for, --refine-lambda and --precision need --refine "
                            "(sga+, snic, snic-latent or snic+sga+)")
        self.codec, self.rate, self.refine = codec, rate, refine
        self.fixed_lambda = None
        if not rate.targeted:
            self.fixed_lambda = codec.resolve_lambda(rate.quality, rate.lmbda)
        elif not codec.variable_rate:
            self.fixed_lambda = codec.resolve_lambda()

    def encode(self, img: PlanarImage, progress: Optional[Callable] = None) -> Encoded:
        """Code ``img``; ``progress(stage, step, stats)`` is called during a refinement."""
        codec, rate, refine = self.codec, self.rate, self.refine
        if self.choices:
            codec, enc = _choose(self.choices, img, rate)
        elif self.fixed_lambda is not None:
            enc = codec.encode(img, lmbda=self.fixed_lambda)
        elif rate.bpp is not None:
            enc = codec.encode_to_bpp(img, rate.bpp)
        else:
            enc = codec.encode_to_psnr(img, rate.psnr)
        f = bitstream.parse(enc.data)
        codec = codec.for_file(f)  # a ladder's rung: the one refined for, and the one that decodes it
        if refine.plan == "none":
            return Encoded(enc, codec=codec)
        from plic.refine import Objective, Settings, refine_encode

        lam = f.header.lmbda
        aimed = refine.aims_at_targets and rate.targeted
        objective = Objective(refine.lmbda or lam, distortion=refine.metric,
                              target_bpp=rate.bpp if aimed else None,
                              target_distortion=mse_from_psnr(rate.psnr) if aimed and rate.psnr is not None else None)
        refined = refine_encode(codec, img, lam, refine.plan, objective,
                                Settings(steps=refine.steps, seed=refine.seed, precision=refine.precision),
                                rounding=refine.rounding, lr=refine.lr, progress=progress).encoded
        if aimed and rate.bpp is not None and refined.bpp > rate.bpp * 1.05:
            raise OutOfReach(f"{rate.bpp:g} bpp is out of reach of this model for this image "
                            f"(nearest reachable: {refined.bpp:.4f} bpp); nothing written")
        decoded = None
        if aimed and rate.psnr is not None:
            decoded = _decoded(codec, refined.data)
            reached = psnr(decoded, img.rgb)
            if reached < rate.psnr - PSNR_SLACK:
                searched = codec.model.variable_rate or self.choices  # else the plain file has the one lambda
                hint = " (the plain encoding meets it)" if searched else ""
                raise OutOfReach(f"the {refine.plan} refinement reached {reached:.2f} dB, short of "
                                 f"--target-psnr {rate.psnr:g}; nothing written{hint}")
        return Encoded(refined, before=enc, codec=codec, decoded=decoded)


def _decoded(codec, data: bytes):
    from plic.image_io import quantize_rgb

    return quantize_rgb(codec.decode_file(bitstream.parse(data))).cpu()


def _imported_qualities(codec) -> list:
    """Codecs for every quality imported from the same CompressAI source as ``codec``'s weights (or none)."""
    from plic import zoo
    from plic.codec import Codec

    path = getattr(codec.model, "weights_path", None)
    siblings = zoo.imported_siblings(path) if path else []
    if len(siblings) < 2:
        return []
    return [codec if zoo.stored_fingerprint(p) == codec.model.fingerprint  # the one at hand: not loaded twice
            else Codec(zoo.load_weights(p, str(codec.device)), device=str(codec.device), exact=codec.exact)
            for p in siblings]


def _choose(codecs: list, img: PlanarImage, rate: Rate):
    """The codec (and its file) meeting ``rate``'s target best: the file closest to a target bpp, or the
    smallest file reaching a target PSNR.

    ``codecs`` come in lambda order (:func:`plic.zoo.imported_siblings`), and a zoo's file size and PSNR
    grow with lambda, so a bisection finds the first quality at or above the target: about log2(n) + 2
    encodes (and, for PSNR, decodes) instead of n -- it matters most for the serial context-model decoders.
    """
    files, scores = {}, {}

    def file(i: int):
        if i not in files:
            files[i] = codecs[i].encode(img)
        return files[i]

    def decoded_psnr(i: int) -> float:
        if i not in scores:
            scores[i] = psnr(_decoded(codecs[i], file(i).data), img.rgb)
        return scores[i]

    measure, target = ((lambda i: file(i).bpp), rate.bpp) if rate.bpp is not None else (decoded_psnr, rate.psnr - 0.05)
    lo, hi = 0, len(codecs)  # qualities below lo fall short of the target; those from hi on reach it
    while lo < hi:
        mid = (lo + hi) // 2
        if measure(mid) >= target:
            hi = mid
        else:
            lo = mid + 1
    last = len(codecs) - 1
    if rate.bpp is not None:
        i = min((j for j in (lo - 1, lo) if 0 <= j <= last), key=lambda j: abs(file(j).bpp - rate.bpp))
        low, high = file(0).bpp, file(last).bpp
        if abs(file(i).bpp / rate.bpp - 1) > 0.05 and not low <= rate.bpp <= high:
            raise OutOfReach(f"{rate.bpp:g} bpp is out of reach of the imported qualities for this image "
                             f"({low:.4f} .. {high:.4f} bpp)")
        return codecs[i], file(i)
    if lo > last:  # none at the top reaches it: look at every quality before giving up (a zoo out of order)
        reaching = [i for i in range(len(codecs)) if decoded_psnr(i) >= target]
        if not reaching:
            raise OutOfReach(f"{rate.psnr:g} dB PSNR is out of reach of the imported qualities for this image "
                             f"(best: {max(decoded_psnr(i) for i in range(len(codecs))):.2f} dB)")
        lo = min(reaching, key=lambda i: file(i).bpp)
    return codecs[lo], file(lo)


def encode_image(codec, img: PlanarImage, rate: Rate = Rate(), refine: Refinement = Refinement(),
                 progress: Optional[Callable] = None) -> Encoded:
    """Code ``img`` with ``codec`` at ``rate``, optimised first as ``refine`` says."""
    return Encoder(codec, rate, refine).encode(img, progress)


def quality_line(value: float, metric: str) -> str:
    """A distortion value as people read it: PSNR in dB for MSE, the value otherwise."""
    return f"{psnr_from_mse(max(value, 1e-12)):.2f} dB PSNR" if metric == "mse" else f"{metric} {value:.4f}"


__all__ = ["OutOfReach", "Rate", "Refinement", "Encoded", "Encoder", "encode_image"]
