"""Real compression: image -> ``.plic`` bytes -> image.

Determinism. A learned codec decodes correctly only if the decoder computes
exactly the entropy-model parameters (CDF indexes, means) the encoder used; a
last-bit float difference between machines picks another CDF and the rest of
the stream decodes to garbage (CompressAI issues #279, #309, #320). plic runs
the whole entropy-parameter path -- hyper-decoder, context models, parameter
aggregation, rANS -- on the CPU in float64, with CDF tables frozen inside the
weight file. Float64 leaves cross-machine differences around 1e-16 relative,
far below the spacing of the scale table, so the indexes agree.

The transforms need the same care for the *pixels*: float32 convolutions give
results that differ in the last bits between thread counts, instruction sets
and devices, and a value next to a rounding boundary then lands one level
off. In the default ``exact`` mode the transforms also run in float64 (on the
CPU or the GPU), which makes such flips vanishingly rare (a value would have to
fall within ~1e-13 of a boundary). ``exact=False`` runs them in float32:
about three times faster on a CPU, with decoded pixels that may differ by one
level between machines.

Memory. Transforms run over overlapping tiles (the margin covers their
receptive field), so a 24-megapixel photo is coded as one bitstream without
seams while activations stay bounded.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from plic import bitstream
from plic._compressai import padded_for_rans
from plic.bitstream import Header, PlicFile
from plic.errors import BitstreamError, OutOfReach, PlicError
from plic.image_io import PlanarImage, decode_alpha, encode_alpha, to_pil
from plic.models.base import VariableRateCodec
from plic.models.latent_hooks import fixed_hyper_latent
from plic.models.rate_film import synthesize
from plic.search import bisect
from plic.units import psnr_from_mse

#: tile edge (pixels) of the transforms; images up to this size are not tiled
TILE = 1024
#: overlap on each side of a tile (pixels; a multiple of 64), > receptive field radius
MARGIN = 128


@dataclass
class EncodeResult:
    data: bytes
    bpp: float
    seconds: float


def _tiled(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, scale: float,
           tile: int, margin: int) -> torch.Tensor:
    """Apply a fully convolutional ``fn`` over overlapping tiles of ``x``.

    ``scale`` is output size / input size (1/16 for a stride-16 analysis, 16
    for its synthesis); ``tile`` and ``margin`` are in input units and multiples of
    1/scale when scale < 1.
    """
    _, _, h, w = x.shape
    if h <= tile and w <= tile:
        return fn(x)
    out = None
    for r0 in range(0, h, tile):
        for c0 in range(0, w, tile):
            r1, c1 = min(r0 + tile, h), min(c0 + tile, w)
            a0, b0 = max(r0 - margin, 0), max(c0 - margin, 0)
            a1, b1 = min(r1 + margin, h), min(c1 + margin, w)
            y = fn(x[:, :, a0:a1, b0:b1])
            if out is None:
                out = y.new_empty(y.shape[0], y.shape[1], round(h * scale), round(w * scale))
            ir0, ic0 = round((r0 - a0) * scale), round((c0 - b0) * scale)
            ir1, ic1 = ir0 + round((r1 - r0) * scale), ic0 + round((c1 - c0) * scale)
            out[:, :, round(r0 * scale):round(r1 * scale), round(c0 * scale):round(c1 * scale)] = y[:, :, ir0:ir1, ic0:ic1]
    return out


@contextlib.contextmanager
def _float64_default():
    # some compressai latent codecs allocate with torch.zeros() and the default
    # dtype; the entropy path must stay float64 throughout
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


class Codec:
    """A loaded model ready to code real files.

    Args:
        model: a trained :class:`VariableRateCodec` (CDF tables present).
        device: where the analysis/synthesis transforms run.
        exact: float64 transforms, for the same pixels on every machine.
    """

    def __init__(self, model: VariableRateCodec, device: str = "cpu", exact: bool = True):
        if not hasattr(model, "fingerprint"):
            raise ValueError("load the model with plic.zoo so that its fingerprint is known")
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.exact = exact
        self.dtype = torch.float64 if exact else torch.float32
        # float32 runs channels-last: oneDNN's convolutions are about 30 % faster that
        # way on a CPU (benchmarks/speed); float64 keeps the layout its golden pixels were made with
        self.memory_format = torch.contiguous_format if exact else torch.channels_last

        def working(module):  # a copy in the working precision and layout (the model stays as it is)
            if module is None:
                return None
            work = copy.deepcopy(module).to(device, self.dtype).eval()
            return work if exact else work.to(memory_format=torch.channels_last)

        self.g_a, self.g_s = working(model.g_a), working(model.g_s)
        self.post_filter = working(getattr(model, "post_filter", None))
        # The entropy-parameter path, float64 on the CPU (see module doc).
        self.entropy = copy.deepcopy(model.latent_codec).cpu().double().eval()
        self.name = model.registry_name
        self.stride = model.stride
        self.y_stride = model.y_stride
        self.label: Optional[str] = None  # the shipped name, when loaded by name
        self._shape_template = None

    # ------------------------------------------------------------------ rate
    @property
    def variable_rate(self) -> bool:
        return self.model.variable_rate

    @property
    def rungs(self) -> tuple:
        """The codecs that may code a file: this one (a :class:`plic.ladder.CodecLadder` has several)."""
        return (self,)

    def pick(self, lmbda: float) -> "Codec":
        """The codec that codes at ``lmbda``: this one (a :class:`plic.ladder.CodecLadder` picks a rung)."""
        return self

    def resolve_lambda(self, quality: Optional[float] = None, lmbda: Optional[float] = None) -> float:
        m = self.model
        if quality is not None and lmbda is not None:
            raise PlicError("give --quality or --lambda, not both")
        if lmbda is not None:
            try:
                m.check_lambda(lmbda)
            except ValueError as exc:
                raise PlicError(str(exc)) from None
            value = lmbda
        elif not m.variable_rate:
            if quality is not None:
                raise PlicError(f"this {self.name} model is fixed-rate (lambda {m.lambda_max:g}); --quality does not apply")
            value = m.lambda_max
        else:
            try:
                value = m.quality_to_lambda(4.0 if quality is None else float(quality))
            except ValueError as exc:
                raise PlicError(str(exc)) from None
        # the header stores float32: code with exactly the value the decoder will read
        return float(np.float32(value))

    def _bind(self, lmbda: float) -> None:
        """Tell a latent codec whose entropy models depend on the rate (CompressAI's vbr) which lambda it codes."""
        bind = getattr(self.entropy, "bind", None)
        if bind is not None:
            bind(lmbda)

    def _step(self, lmbda: float) -> torch.Tensor:
        return self.model.quant_step(torch.tensor([lmbda], dtype=torch.float64)).double()

    # ---------------------------------------------------------------- encode
    @torch.no_grad()
    def analysis(self, img: PlanarImage) -> torch.Tensor:
        """The analysis transform's output (float64, CPU), before the QVRF step."""
        x = img.rgb.to(self.device, self.dtype)
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.stride, (-w) % self.stride
        # replicate padding costs fewer bits than zeros and is cropped away
        x = F.pad(x, (0, pw, 0, ph), mode="replicate") if (ph or pw) else x
        x = x.contiguous(memory_format=self.memory_format)
        return _tiled(self.g_a, x, 1 / self.y_stride, TILE, MARGIN).cpu().double().contiguous()

    def latents(self, img: PlanarImage, lmbda: float, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """What the entropy coder codes: the analysis output divided by the QVRF step.

        ``y`` is :meth:`analysis`'s output when the caller already has it.
        """
        return (self.analysis(img) if y is None else y) / self._step(lmbda)

    @torch.no_grad()
    def encode_planes(self, img: PlanarImage, lmbda: float, y: Optional[torch.Tensor] = None,
                      latent: Optional[torch.Tensor] = None, z: Optional[torch.Tensor] = None) -> PlicFile:
        """Code ``img`` at ``lmbda``.

        ``y``: the analysis output, when already computed. ``latent`` and ``z``:
        what the entropy coder codes (the latent divided by the QVRF step, and
        the hyper-latent), when an encode-time optimisation chose them.
        """
        h, w = img.height, img.width
        y = self.latents(img, lmbda, y) if latent is None else latent.detach().cpu().double()
        self._bind(lmbda)
        with _float64_default(), fixed_hyper_latent(self.entropy, None if z is None else z.detach().cpu().double()):
            out = self.entropy.compress(y)
        payloads = [list(s) for s in out["strings"]]
        flags = bitstream.FLAG_VARIABLE_RATE if self.model.variable_rate else 0
        if self.post_filter is not None:
            flags |= bitstream.FLAG_POST_FILTER
        extensions = {}
        if img.alpha is not None:
            flags |= bitstream.FLAG_ALPHA
            extensions[bitstream.TAG_ALPHA] = encode_alpha(img.alpha)
        header = Header(
            model=self.name, fingerprint=self.model.fingerprint, height=h, width=w,
            channels=img.channels, bit_depth=img.bit_depth, lmbda=lmbda,
            shapes=out["shape"], flags=flags,
        )
        return PlicFile(header, payloads, extensions)

    def encode(self, img: PlanarImage, quality: Optional[float] = None,
               lmbda: Optional[float] = None) -> EncodeResult:
        t0 = time.perf_counter()
        lam = self.resolve_lambda(quality, lmbda)
        data = bitstream.pack(self.encode_planes(img, lam))
        return EncodeResult(data, 8 * len(data) / (img.height * img.width), time.perf_counter() - t0)

    @torch.no_grad()
    def encode_to_bpp(self, img: PlanarImage, bpp: float, rel_tol: float = 0.01,
                      max_iter: int = 24, y: Optional[torch.Tensor] = None) -> EncodeResult:
        """Encode at the lambda whose real file size comes closest to ``bpp``.

        Bisection on log(lambda) over the model's range. The analysis
        transform runs once; each step only re-quantizes and entropy-codes, so
        a search costs about ten entropy-coder passes. Stops when the file is
        within ``rel_tol`` of the target. A target the model cannot reach is
        refused with the reachable range. ``y``: the analysis output to code
        in place of ``img``'s (a SNIC substitute's), ``img`` still describing
        the picture.
        """
        if not bpp > 0 or not math.isfinite(bpp):
            raise PlicError(f"target bpp must be a positive number, not {bpp}")
        pixels = img.height * img.width
        return self._search_lambda(img, lambda data: 8 * len(data) / pixels, bpp, rel_tol * bpp,
                                   "bpp", max_iter, y=y)

    @torch.no_grad()
    def encode_to_psnr(self, img: PlanarImage, target: float, tol: float = 0.05,
                       max_iter: int = 24, y: Optional[torch.Tensor] = None) -> EncodeResult:
        """Encode at the smallest lambda whose decoded image reaches ``target`` dB PSNR (within ``tol``).

        PSNR is always against ``img``; ``y`` as in :meth:`encode_to_bpp`.
        """
        from plic.image_io import quantize_rgb

        def quality(data: bytes) -> float:
            rec = quantize_rgb(self.decode_file(bitstream.parse(data))).cpu()
            return psnr(rec, img.rgb)

        return self._search_lambda(img, quality, target, tol, "dB PSNR", max_iter, at_least=True, y=y)

    def _search_lambda(self, img: PlanarImage, measure: Callable[[bytes], float], target: float,
                       tol: float, unit: str, max_iter: int, at_least: bool = False,
                       y: Optional[torch.Tensor] = None) -> EncodeResult:
        """Bisection on log(lambda) for a ``measure`` of the file that grows with lambda."""
        m = self.model
        if not m.variable_rate:
            raise PlicError(f"this {self.name} model is fixed-rate (lambda {m.lambda_max:g}); "
                            f"a lambda search needs a variable-rate model")
        t0 = time.perf_counter()
        y = self.analysis(img) if y is None else y
        tried = {}
        lam_lo = float(np.float32(m.lambda_min * (1 + 1e-7)))
        lam_hi = float(np.float32(m.lambda_max * (1 - 1e-7)))

        def point(lam: float):
            lam = min(max(float(np.float32(lam)), lam_lo), lam_hi)
            if lam not in tried:
                data = bitstream.pack(self.encode_planes(img, lam, y))
                tried[lam] = (measure(data), data)
            return tried[lam][0]

        low, high = point(m.lambda_min), point(m.lambda_max)
        if not low - tol <= target <= high + tol:
            raise OutOfReach(f"{target:g} {unit} is out of this model's reach for this image: "
                             f"{low:.4f} .. {high:.4f} {unit} (nearest: {low if target < low else high:.4f})",
                             below=target < low)
        bisect(point, m.lambda_min, m.lambda_max, target, max_iter, "log",
               done=lambda v: abs(v - target) <= tol and (not at_least or v >= target))
        candidates = [(v, d) for v, d in tried.values() if not at_least or v >= target - tol]
        value, data = min(candidates, key=lambda vd: abs(vd[0] - target))
        pixels = img.height * img.width
        return EncodeResult(data, 8 * len(data) / pixels, time.perf_counter() - t0)

    # ---------------------------------------------------------------- decode
    def for_file(self, f: PlicFile) -> "Codec":
        """The codec that wrote ``f``: this one (a :class:`plic.ladder.CodecLadder` names its rung)."""
        return self

    def check_header(self, header: Header) -> None:
        if header.model != self.name:
            raise BitstreamError(f"file was made by model {header.model!r}, this decoder holds {self.name!r}")
        if header.fingerprint != self.model.fingerprint:
            raise BitstreamError(
                f"file was made with other {header.model!r} weights (fingerprint "
                f"{header.fingerprint.hex()}, these are {self.model.fingerprint.hex()}); "
                f"pass the matching weights with --model-path (earlier shipped ones: docs/bitstream.md)"
            )
        try:
            self.model.check_lambda(header.lmbda)
        except ValueError as exc:
            raise BitstreamError(f"corrupt header: {exc}") from None
        expected = self.expected_shapes(header.height, header.width)
        if expected is not None and bitstream.shapes_from_json(bitstream.shapes_to_json(expected)) != header.shapes:
            raise BitstreamError("corrupt header: latent shapes do not match the image size")

    def expected_shapes(self, h: int, w: int) -> Any:
        """Latent shapes the latent codec reports for an h x w image."""
        ph, pw = h + (-h) % self.stride, w + (-w) % self.stride
        if self._shape_template is None:
            self._shape_template = shape_template(self.entropy)
        return latent_shapes(self.entropy, ph // self.y_stride, pw // self.y_stride, self._shape_template)

    @torch.no_grad()
    def decode_file(self, f: PlicFile) -> torch.Tensor:
        """Decoded colour planes, float [1, 3, H, W] clamped to [0, 1]."""
        hd = f.header
        self.check_header(hd)
        payloads = self._padded_payloads(f)
        self._bind(hd.lmbda)
        try:
            with _float64_default():
                out = self.entropy.decompress(payloads, _as_compressai_shapes(hd.shapes))
        except (ValueError, RuntimeError, AssertionError, IndexError, TypeError) as exc:
            raise BitstreamError(f"corrupt payload ({type(exc).__name__})") from None
        step = self._step(hd.lmbda)
        y_hat = (out["y_hat"] * step).to(self.device, self.dtype)
        y_hat = y_hat.contiguous(memory_format=self.memory_format)
        s = self.y_stride
        # a synthesis told the rate (plic.models.rate_film) gets the step the file was coded with
        synthesis = functools.partial(synthesize, self.g_s, a=step.to(self.device))
        x_hat = _tiled(synthesis, y_hat, s, TILE // s, MARGIN // s).contiguous()
        x_hat = x_hat[:, :, : hd.height, : hd.width]
        if hd.flags & bitstream.FLAG_POST_FILTER:
            if self.post_filter is None:
                raise BitstreamError("file asks for a post-filter these weights do not have")
            x_hat = _tiled(self.post_filter, x_hat.clamp(0, 1), 1, TILE, MARGIN)
        x_hat = torch.nan_to_num(x_hat, nan=0.0, posinf=1.0, neginf=0.0)
        return x_hat.clamp(0, 1).float()

    def _padded_payloads(self, f: PlicFile):
        """Payloads followed by the zero bytes the rANS decoder may over-read (:func:`padded_for_rans`)."""
        counts = self.model.symbols_per_payload(f.header.shapes)
        if len(counts) != len(f.payloads) or any(len(g) != 1 for g in f.payloads):
            raise BitstreamError("corrupt file: wrong number of payloads for this model")
        return [[padded_for_rans(s, n) for s in group] for group, n in zip(f.payloads, counts, strict=True)]

    def decode(self, data: bytes):
        """``.plic`` bytes -> Pillow image of the original kind (mode, bit depth, alpha)."""
        f = bitstream.parse(data)
        rgb = self.decode_file(f)
        return to_pil(rgb, f.header.channels, f.header.bit_depth, alpha_plane(f)), f


def alpha_plane(f: PlicFile):
    """The losslessly carried alpha plane of a parsed file, or None."""
    if bitstream.TAG_ALPHA not in f.extensions:
        return None
    return decode_alpha(f.extensions[bitstream.TAG_ALPHA], f.header.height, f.header.width)


def _as_compressai_shapes(shapes: Any) -> Any:
    """compressai wants ``torch.Size``-comparable tuples; JSON gave tuples already."""
    if isinstance(shapes, dict):
        return {k: _as_compressai_shapes(v) for k, v in shapes.items()}
    if isinstance(shapes, tuple) and all(isinstance(v, int) for v in shapes):
        return torch.Size(shapes)
    if isinstance(shapes, tuple):
        return [_as_compressai_shapes(v) for v in shapes]
    return shapes


def latent_shapes(latent_codec, hy: int, wy: int, template: Any = None) -> Any:
    """Shapes compressai's latent codec records for a y of hy x wy.

    Found by compressing a small all-zero latent (or taken from ``template``,
    the result of that probe) and rescaling: every shape in these latent codecs
    ends with y's size or z's (y / 4).
    """
    if template is None:
        template = shape_template(latent_codec)

    def rescale(obj):
        if isinstance(obj, dict):
            return {k: rescale(v) for k, v in obj.items()}
        if isinstance(obj, list) and len(obj) >= 2 and all(isinstance(v, int) for v in obj):
            # (..., H, W) of y or of z = y / 4; leading entries (channels) kept
            if obj[-2:] == [8, 12]:
                return obj[:-2] + [hy, wy]
            if obj[-2:] == [2, 3]:
                return obj[:-2] + [hy // 4, wy // 4]
            raise AssertionError(f"unexpected latent shape {obj}")
        if isinstance(obj, list):
            return [rescale(v) for v in obj]
        return obj

    return rescale(template)


def shape_template(latent_codec) -> Any:
    probe = next(p for p in latent_codec.parameters()).new_zeros(1, _latent_channels(latent_codec), 8, 12)
    with torch.no_grad(), _float64_default():
        return bitstream.shapes_to_json(latent_codec.compress(probe)["shape"])


def _latent_channels(latent_codec) -> int:
    h_a = latent_codec["hyper"].h_a
    first = next(m for m in h_a.modules() if isinstance(m, torch.nn.Conv2d))
    return first.in_channels


def psnr(a: torch.Tensor, b: torch.Tensor, peak: float = 1.0) -> float:
    mse = torch.mean((a.double() - b.double()) ** 2).item()
    return psnr_from_mse(mse, peak)
