"""Variable-rate models, each coding the rates it was trained for, as one codec.

One small model cannot be best at every rate. A GAN-finetuned codec shows
this most: finetuned on the whole range, its adversary and its perceptual
losses settle on a compromise, and finetuned on the low rates alone (lambda
1e-4..0.003, up to about 0.25 bpp on Kodak) it gains about 6 % LPIPS-Alex and
DISTS at 0.075 bpp (benchmarks/perceptual/README.md). The MSE default shows it
too: finetuned on the bottom or the middle of its range alone, it gains there
(projects/ladder). CompressAI's zoo likewise changes weights, and even
architecture, along its qualities (bmshj2018: N=128/M=192 for qualities 1-5,
N=192/M=320 for 6-8).

A ladder's rungs, lowest rate first, each code lambda up to their switch and
the top rung the rest. All rungs are trained for the same Lagrangian, so a
lambda means the same trade-off in each, and ``--quality`` 1..8 maps
log-linearly onto the ladder's whole range. Each file names its rung's weights
(model and fingerprint), so any plic decoder decodes it with the shipped
weights it holds; nothing in the bitstream is specific to the ladder.
``plic.zoo.LADDERS`` names the shipped ladders; ``projects/ladder`` measures a
switch on training crops for rungs trained for MSE.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from plic import bitstream
from plic.bitstream import PlicFile
from plic.codec import Codec, EncodeResult, psnr
from plic.errors import OutOfReach, PlicError
from plic.image_io import PlanarImage, quantize_rgb
from plic.models.base import check_lambda_range, quality_to_lambda


class Rung:
    """A ladder's rung: what the ladder checks and picks by (the model's registry name, its weights'
    fingerprint, its lambda range), known before its codec is built, and the codec, built on first use.

    A shipped ladder reads those three from each weight file's safetensors metadata, so a process that
    codes at one rate builds one model, not every rung's. The price: a rung whose weights do not load
    fails when it first codes, not when the ladder is made (``plic eval`` builds every rung up front).
    """

    def __init__(self, name: str, fingerprint: bytes, lambda_min: float, lambda_max: float, device: str | torch.device,
                 build: Callable[[], Codec]):
        self.name, self.fingerprint, self.device = name, fingerprint, torch.device(device)
        self.lambda_min, self.lambda_max = float(lambda_min), float(lambda_max)
        self._build, self._codec = build, None

    @classmethod
    def of(cls, codec: Codec) -> "Rung":
        """A rung of a codec already built."""
        m = codec.model
        rung = cls(codec.name, m.fingerprint, m.lambda_min, m.lambda_max, codec.device, lambda: codec)
        rung._codec = codec
        return rung

    @property
    def codec(self) -> Codec:
        if self._codec is None:
            codec = self._build()
            m = codec.model
            if (codec.name, m.fingerprint, m.lambda_min, m.lambda_max) != (
                    self.name, self.fingerprint, self.lambda_min, self.lambda_max):
                raise PlicError(f"the {self.name!r} rung's weights are not the ones their metadata describes")
            self._codec = codec
        return self._codec


class CodecLadder:
    """Rungs, lowest rate first, each coding lambda up to its switch (the last one, the rest);
    quality 1..8 spans the whole ladder's range. Rungs are codecs, or :class:`Rung` s built when they code."""

    def __init__(self, rungs: Sequence[Codec | Rung], switches: Sequence[float]):
        steps = tuple(r if isinstance(r, Rung) else Rung.of(r) for r in rungs)
        switches = tuple(float(s) for s in switches)
        if len(steps) < 2 or len(switches) != len(steps) - 1:
            raise ValueError(f"a ladder needs two rungs or more and one switch fewer "
                             f"(got {len(steps)} rungs, {len(switches)} switches)")
        if not all(r.lambda_min < r.lambda_max for r in steps):
            raise ValueError("a ladder's rungs must be variable-rate models")
        lo, hi = steps[0].lambda_min, steps[-1].lambda_max
        if not (lo < switches[0] and all(a < b for a, b in zip(switches, switches[1:])) and switches[-1] < hi):
            raise ValueError(f"the switches ({', '.join(f'{s:g}' for s in switches)}) must rise strictly "
                             f"inside the ladder's range ({lo:g} .. {hi:g})")
        # the ladder spans the first rung's bottom to the last rung's top: no rung may reach outside it, and
        # rungs in order of their tops (a middle rung may start higher: it trained on its own part only)
        if any(r.lambda_min < lo for r in steps) or any(
                a.lambda_max > b.lambda_max for a, b in zip(steps, steps[1:])):
            raise ValueError("each rung's lambda range must end at or below the next rung's, and none start "
                             "below the first rung's")
        for lower, upper, switch in zip(steps, steps[1:], switches):
            if not upper.lambda_min <= switch <= lower.lambda_max:
                raise ValueError(f"switch {switch:g} must lie where both its rungs' lambda ranges overlap")
        self.steps = steps
        self.switches = tuple(float(np.float32(s)) for s in switches)  # as a header stores lambda
        # what callers read from a codec they read from the lowest rung (its name, device); what differs
        # between rungs (refinability, weights) they ask of each one (``rungs``, which builds them all)
        self.name, self.device = steps[0].name, steps[0].device
        self.label: Optional[str] = None  # the shipped name, when loaded by name

    #: every rung is a variable-rate model (checked above)
    variable_rate = True

    @property
    def rungs(self) -> tuple:
        """Every rung's codec, lowest rate first (builds those not built yet)."""
        return tuple(r.codec for r in self.steps)

    @property
    def model(self):
        """The lowest rung's model (built on first use)."""
        return self.steps[0].codec.model

    @property
    def lambda_range(self) -> tuple[float, float]:
        return self.steps[0].lambda_min, self.steps[-1].lambda_max

    def position(self, lmbda: float) -> int:
        """Which rung codes at ``lmbda`` (0 the lowest), compared as a header stores it: in float32."""
        lmbda = float(np.float32(lmbda))
        return next((i for i, switch in enumerate(self.switches) if lmbda <= switch), len(self.switches))

    def pick(self, lmbda: float) -> Codec:
        """The rung that codes at ``lmbda`` (compared as a header stores it, in float32, as ``encode`` does)."""
        return self.steps[self.position(lmbda)].codec

    def for_file(self, f: PlicFile) -> Codec:
        """The rung whose weights wrote ``f`` (the lowest, whose check_header explains a mismatch, if none)."""
        for rung in self.steps:
            if f.header.model == rung.name and f.header.fingerprint == rung.fingerprint:
                return rung.codec
        return self.steps[0].codec

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

    def _search(self, img: PlanarImage, reached: Callable[[Codec, PlicFile], bool],
                search: Callable[[Codec, Optional[torch.Tensor]], EncodeResult]) -> EncodeResult:
        """``search`` on the lowest rung whose file at its switch ``reached`` the target, else on the top rung.

        Each rung's analysis of ``img`` is computed once and reused by its search. A target between a
        rung's file at its switch and the next rung's lowest rate (rungs that code the same lambda at
        different rates leave such a gap) is out of the upper rung's reach: the rung below meets it
        above its switch, where its range goes on.
        """
        t0 = time.perf_counter()
        below = None  # the rung under the one searched, with its analysis
        for step, switch in zip(self.steps, self.switches):
            rung = step.codec
            y = rung.analysis(img)
            if reached(rung, rung.encode_planes(img, switch, y)):
                break
            below = (rung, y)
        else:
            rung, y = self.steps[-1].codec, None
        try:
            result = search(rung, y)
        except OutOfReach as exc:
            if below is None or not exc.below:  # above the upper rung's reach: no lower rung reaches it
                raise
            try:
                result = search(*below)
            except PlicError:
                raise exc from None  # out of both rungs' reach: report the upper rung's
        return dataclasses.replace(result, seconds=time.perf_counter() - t0)  # the probes are part of the encode

    def encode_to_bpp(self, img: PlanarImage, bpp: float, **kw) -> EncodeResult:
        """The search of the lowest rung whose file at its switch is at least ``bpp``; else the top rung's.

        A rung searches its whole range, so a target just above the lower rung's file at their switch
        may be coded by the upper rung below the switch: its file still names its weights.
        """
        pixels = img.height * img.width
        return self._search(img, lambda r, f: bpp <= 8 * len(bitstream.pack(f)) / pixels,
                            lambda r, y: r.encode_to_bpp(img, bpp, y=y, **kw))

    def encode_to_psnr(self, img: PlanarImage, target: float, **kw) -> EncodeResult:
        """As :meth:`encode_to_bpp`, on the PSNR of each rung's file at its switch."""
        return self._search(img, lambda r, f: target <= psnr(quantize_rgb(r.decode_file(f)).cpu(), img.rgb),
                            lambda r, y: r.encode_to_psnr(img, target, y=y, **kw))

    def decode_file(self, f: PlicFile):
        return self.for_file(f).decode_file(f)

    def decode(self, data: bytes):
        return self.for_file(bitstream.parse(data)).decode(data)


def shipped_codec(name: str, device: str = "cpu", exact: bool = True, ladder: bool = True) -> Codec | CodecLadder:
    """A shipped model by name (``plic.zoo.PRETRAINED``) as a codec labelled with that name: a ladder
    where ``plic.zoo.LADDERS`` gives it rungs below, unless ``ladder`` is False (a decoder that
    knows which rung wrote its file needs only that one)."""
    from plic import zoo

    def built(shipped: str) -> Codec:
        codec = Codec(zoo.load_model(shipped, device), device=device, exact=exact)
        codec.label = shipped
        return codec

    if name not in zoo.LADDERS or not ladder:
        return built(name)

    def rung(shipped: str) -> Rung:
        path = zoo.shipped_path(shipped)
        if path is None or not path.is_file():
            return Rung.of(built(shipped))  # load_model explains what is missing
        meta = zoo.read_metadata(path)
        recorded = zoo.stored_fingerprint(path, meta)
        config = zoo.model_config(meta)
        if recorded is None or not {"lambda_min", "lambda_max"} <= config.keys():
            return Rung.of(built(shipped))  # a header that does not tell: build it to know
        return Rung(meta.get("plic_model", ""), recorded, config["lambda_min"], config["lambda_max"], device,
                    lambda: built(shipped))

    below = zoo.LADDERS[name]
    codec = CodecLadder([*(rung(n) for n, _ in below), rung(name)], [switch for _, switch in below])
    codec.label = name
    return codec
