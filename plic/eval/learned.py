"""plic's own models as codecs of the benchmark: ``plic:<name or weights file>``, and the same with an
encode-time refinement, ``plic:<name or weights file>+<plan>[:<metric>[:<steps>[:<precision>]]]``."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from plic import zoo
from plic.codec import Codec
from plic.encode import Rate, Refinement, encode_image
from plic.errors import PlicError
from plic.eval.codecs import ClassicalCodec
from plic.image_io import PlanarImage
from plic.ladder import CodecLadder, shipped_codec


@functools.lru_cache(maxsize=4)
def _load_codec(spec: str, device: str) -> Codec | CodecLadder:
    if spec in zoo.PRETRAINED:  # a shipped name codes as plic compress does, with its rungs below if it has some
        return shipped_codec(spec, device)
    return Codec(zoo.load_model(spec, device=device), device=device)


class LearnedCodec(ClassicalCodec):
    """A registry model with its weights; the knob is plic's quality (1..8, fractional allowed)."""

    knob = "quality"
    sweep = [1, 2, 3, 4, 5, 6, 7, 8]
    lo, hi = 1.0, 8.0
    integer = False
    more_bits_when_higher = True

    def __init__(self, spec: str = zoo.DEFAULT_MODEL, device: str = "cpu"):
        self.spec, self.device = spec, device
        self.name = f"plic:{spec}"
        self.label = f"plic {spec}"

    @property
    def codec(self) -> Codec | CodecLadder:
        return _load_codec(self.spec, self.device)

    def unavailable(self) -> str | None:
        try:
            # a ladder's every rung built (eval codes every rate): one that fails to load fails here, not mid-run
            _load_codec(self.spec, self.device).rungs  # noqa: B018
        except PlicError as exc:
            return str(exc)
        return None

    @staticmethod
    def _image(rgb: np.ndarray) -> PlanarImage:
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0
        return PlanarImage(x, 3, 8)

    def encode(self, rgb: np.ndarray, setting: float) -> bytes:
        return encode_image(self.codec, self._image(rgb), Rate(quality=float(setting))).result.data

    def decode(self, data: bytes) -> np.ndarray:
        im, _ = self.codec.decode(data)
        return np.asarray(im.convert("RGB"))

    def version(self) -> str:
        c = self.codec
        if isinstance(c, CodecLadder):  # new weights on any rung, or a new switch, make new points
            steps = [f"{r.fingerprint.hex()[:16]} up to lambda {s:g}" for r, s in zip(c.steps, c.switches)]
            return f"plic {self.spec} (weights {', '.join(steps)}, {c.steps[-1].fingerprint.hex()[:16]} above)"
        return f"plic {self.spec} (weights {c.model.fingerprint.hex()[:16]})"


class RefinedLearnedCodec(LearnedCodec):
    """``plic:<model>+<plan>[:<metric>[:<steps>[:<precision>]]]``: the model with an encode-time refinement
    (``plic compress --refine <plan> --optimize-for <metric> --steps <steps> --precision <precision>``).

    Where the plan aims at a target (a SNIC stage, on a variable-rate model), a target bpp is met as
    ``plic compress --bpp`` meets it: one lambda search on the plain model, then one optimisation
    held at the target (:meth:`encode_to_bpp`) -- the knob bisection would run a whole optimisation
    per probe. SGA+ keeps the lambda, not the rate, so it is bisected like any other knob.
    """

    def __init__(self, spec: str, plan: str, *, metric: str = "mse", steps: int = 60, precision: str = "fp32",
                 device: str = "cpu"):
        super().__init__(spec, device)
        self.refinement = Refinement(plan, steps, metric=metric, precision=precision)
        bf16 = ":bf16" if precision == "bf16" else ""
        self.name = f"plic:{spec}+{plan}:{metric}:{steps}{bf16}"
        self.label = f"plic {spec} + {plan} ({metric}, {steps} steps{', bf16' if bf16 else ''})"

    def unavailable(self) -> str | None:
        reason = super().unavailable()
        if reason is None:
            from plic.refine.problem import check_refinable

            try:
                for rung in self.codec.rungs:
                    check_refinable(rung.model)
            except PlicError as exc:
                return str(exc)
        return reason

    def encode(self, rgb: np.ndarray, setting: float) -> bytes:
        return encode_image(self.codec, self._image(rgb), Rate(quality=float(setting)), self.refinement).result.data

    @property
    def encode_to_bpp(self):
        """``(rgb, target) -> (quality, file)`` where the refinement itself meets a target; else None."""
        if not (self.codec.variable_rate and self.refinement.aims_at_targets):
            return None
        return self._encode_to_bpp

    def _encode_to_bpp(self, rgb: np.ndarray, target_bpp: float) -> tuple[float, bytes]:
        from plic import bitstream

        img = self._image(rgb)
        try:
            data = encode_image(self.codec, img, Rate(bpp=float(target_bpp)), self.refinement).result.data
        except PlicError:  # beyond the range: its nearest end, as the knob bisection returns
            low, high = (self.codec.encode(img, lmbda=self.codec.resolve_lambda(quality=q)).bpp for q in (1.0, 8.0))
            if low < target_bpp < high:  # within reach of the plain codec: the refinement failed, say so
                raise
            end = 1.0 if target_bpp <= low else 8.0
            return end, self.encode(rgb, end)
        return self._quality_of(bitstream.parse(data).header.lmbda), data

    def _quality_of(self, lmbda: float) -> float:
        """The quality (1..8) whose lambda is ``lmbda``: the inverse of the codec's own mapping, by bisection."""
        lo, hi = 1.0, 8.0
        for _ in range(40):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if self.codec.resolve_lambda(quality=mid) < lmbda else (lo, mid)
        return (lo + hi) / 2

    def version(self) -> str:
        from plic.refine import DEFAULT_LR, DEFAULT_ROUNDING, PLANS

        r = self.refinement
        stages = ", ".join(f"{s}: {r.rounding or DEFAULT_ROUNDING[s]} rounding, lr {r.lr or DEFAULT_LR[s]:g}"
                           for s in PLANS[r.plan])
        # fp32 is left unnamed: the versions of results coded before the precision existed still hold
        precision = f"; {r.precision} loss network" if r.precision != "fp32" else ""
        return (f"{super().version()} + {r.plan} ({r.metric}, {r.steps} steps, seed {r.seed}; {stages}{precision}; "
                f"{self.device})")


def refined_codec(spec: str, device: str = "cpu") -> RefinedLearnedCodec | None:
    """The codec ``spec`` names when it ends in ``+<plan>[:<metric>[:<steps>[:<precision>]]]``, or None."""
    from plic.refine import PLANS

    # the first "+" that starts a plan's name: plans hold "+" too (sga+, snic+sga+), and so may a weights path
    splits = [i for i, c in enumerate(spec) if c == "+" and spec[i + 1:].split(":")[0] in PLANS]
    if not splits:
        model = spec.rpartition("+")[0]
        if model and (model in zoo.PRETRAINED or Path(model).is_file()):  # a known model, an unknown plan
            raise PlicError(f"unknown refinement in {spec!r} (known: {', '.join(PLANS)})")
        return None
    # a "+<plan>" inside a weights path ("runs/a+snic:x/m.safetensors+sga+"): the split after a model that exists
    known = [i for i in splits if not spec[:i] or spec[:i] in zoo.PRETRAINED or Path(spec[:i]).is_file()]
    cut = (known or splits)[0]
    model, tail = spec[:cut] or zoo.DEFAULT_MODEL, spec[cut + 1:]  # plic:+<plan>: as plic: alone
    parts = tail.split(":")
    if len(parts) > 4:
        raise PlicError(f"bad refinement {tail!r}: expected <plan>[:<metric>[:<steps>[:<precision>]]]")
    metric = parts[1] if len(parts) > 1 and parts[1] else "mse"
    try:
        steps = int(parts[2]) if len(parts) > 2 else 60
    except ValueError:
        raise PlicError(f"bad refinement {tail!r}: the step count must be an integer") from None
    if steps < 1:
        raise PlicError(f"bad refinement {tail!r}: the step count must be 1 or more")
    from plic.losses.distortion import distortion_fn
    from plic.refine.problem import check_precision

    distortion_fn(metric, device)  # an unknown metric or missing weights: fail before any work
    precision = parts[3] if len(parts) > 3 else "fp32"
    try:
        check_precision(precision, metric)
    except PlicError as exc:
        raise PlicError(f"bad refinement {tail!r}: {exc}") from None
    return RefinedLearnedCodec(model, parts[0], metric=metric, steps=steps, precision=precision, device=device)


def make_codec(spec: str, device: str = "cpu") -> ClassicalCodec:
    """``plic:<model>``, ``plic:<model>+<plan>[:<metric>[:<steps>[:<precision>]]]`` or a classical codec name."""
    from plic.eval.codecs import CLASSICAL_CODECS, classical_codec

    if spec.startswith("plic:"):
        return refined_codec(spec[5:], device) or LearnedCodec(spec[5:] or zoo.DEFAULT_MODEL, device)
    if spec.startswith("compressai:"):
        from plic.eval.compressai_codec import CompressAICodec

        return CompressAICodec(spec[len("compressai:"):])
    if spec == "plic":
        return LearnedCodec(zoo.DEFAULT_MODEL, device)
    try:
        return classical_codec(spec)
    except PlicError:
        raise PlicError(f"unknown codec {spec!r}; known: plic:<model name or weights file>[+<refinement>], compressai:<zoo architecture>, "
                        f"{', '.join(CLASSICAL_CODECS)}") from None
