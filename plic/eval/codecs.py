"""Classical image codecs for rate-distortion benchmarks.

Each codec is a :class:`ClassicalCodec` subclass with one quality knob, a
default ``sweep`` of knob settings (covering roughly 0.05 to 2 bpp on Kodak),
and ``encode``/``decode`` between an ``HxWx3`` uint8 array and the complete
file bytes, so that ``8 * len(data) / (H * W)`` is the honest bit rate.

Backends: Pillow for JPEG, WebP, AVIF (falling back to ``avifenc``/``avifdec``)
and JPEG 2000; the command-line tools ``cjxl``/``djxl`` for JPEG XL and
``ffmpeg`` with libx265 for HEVC intra (the codec inside BPG).

:func:`encode_at_bpp` bisects a codec's knob to hit a target bit rate.
"""

from __future__ import annotations

import functools
import io
import math
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import PIL
from PIL import Image, features

from plic.errors import PlicError
from plic.search import bisect

__all__ = ["ClassicalCodec", "CLASSICAL_CODECS", "classical_codec", "encode_at_bpp"]


# --------------------------------------------------------------------------- helpers


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        desc = f"{rgb.dtype} array of shape {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise PlicError(f"expected an HxWx3 uint8 RGB array, got a {desc}")
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise PlicError(f"cannot encode an empty image of shape {rgb.shape}")
    return np.ascontiguousarray(rgb)


def _last_line(text: bytes | str | None) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else "no error message"


def _missing_tools(tools: tuple[str, ...], why: str) -> str | None:
    missing = [t for t in tools if shutil.which(t) is None]
    return f"{'/'.join(missing)} not found{why}" if missing else None


def _encode_with_tool(rgb: np.ndarray, suffix: str, argv: Callable[[str, str], list[str]]) -> bytes:
    """Write ``rgb`` as a PNG, run ``argv(src, dst)``, return the bytes of ``dst``."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.png", Path(tmp) / f"out{suffix}"
        Image.fromarray(rgb, "RGB").save(src, compress_level=1)
        _run(argv(str(src), str(dst)))
        return dst.read_bytes()


def _decode_with_tool(data: bytes, suffix: str, argv: Callable[[str, str], list[str]]) -> np.ndarray:
    """Write ``data`` to a file, run ``argv(src, dst)`` to make a PNG, return its pixels."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / f"in{suffix}", Path(tmp) / "out.png"
        src.write_bytes(data)
        _run(argv(str(src), str(dst)))
        return _pillow_decode(dst.read_bytes())


def _run(cmd: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """Run a tool with ``check=True``, turning any failure into a one-line PlicError."""
    try:
        return subprocess.run(cmd, input=stdin, capture_output=True, check=True)
    except FileNotFoundError as e:
        raise PlicError(f"{cmd[0]} not found on PATH") from e
    except subprocess.CalledProcessError as e:
        raise PlicError(f"{Path(cmd[0]).name} failed (exit {e.returncode}): {_last_line(e.stderr)}") from e


def _first_line(cmd: list[str]) -> str:
    try:
        res = subprocess.run(cmd, capture_output=True, check=False)
    except FileNotFoundError:
        return f"{cmd[0]} not found"
    out = (res.stdout or b"") + (res.stderr or b"")
    lines = [ln.strip() for ln in out.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[0] if lines else "unknown version"


def _pillow_encode(rgb: np.ndarray, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format=fmt, **params)
    return buf.getvalue()


def _pillow_decode(data: bytes) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (OSError, ValueError, SyntaxError) as e:
        raise PlicError(f"cannot decode image data: {e}") from e


# --------------------------------------------------------------------------- base class


class ClassicalCodec:
    """One classical codec with a single quality knob.

    Subclasses set the class attributes below and implement ``encode``,
    ``decode`` and ``version``; ``unavailable`` says why the codec cannot run
    here (``None`` when it can).
    """

    name: str = ""
    label: str = ""
    knob: str = ""
    sweep: list[float] = []
    lo: float = 0.0
    hi: float = 100.0
    integer: bool = True
    more_bits_when_higher: bool = True
    log_scale: bool = False  # bisect on log(knob): for knobs spanning decades (jxl distance, j2k ratio)

    def unavailable(self) -> str | None:
        return None

    def encode(self, rgb: np.ndarray, setting: float) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes) -> np.ndarray:
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    # shared plumbing for subclasses
    def _require(self) -> None:
        reason = self.unavailable()
        if reason is not None:
            raise PlicError(f"codec {self.name!r} is unavailable: {reason}")

    def _setting(self, setting: float) -> float | int:
        s = float(setting)
        if not math.isfinite(s) or not self.lo <= s <= self.hi:
            raise PlicError(f"{self.name}: {self.knob} {setting} is outside [{self.lo:g}, {self.hi:g}]")
        return int(round(s)) if self.integer else s


# --------------------------------------------------------------------------- Pillow codecs


class _PillowCodec(ClassicalCodec):
    _feature = ""  # PIL.features name
    _apt = ""

    def unavailable(self) -> str | None:
        if not features.check(self._feature):
            return f"Pillow {PIL.__version__} was built without {self._feature} support (install a Pillow wheel from PyPI, or {self._apt})"
        return None

    def decode(self, data: bytes) -> np.ndarray:
        self._require()
        return _pillow_decode(data)

    def version(self) -> str:
        return f"{self._feature} {features.version(self._feature)} via Pillow {PIL.__version__}"


class JpegCodec(_PillowCodec):
    name = "jpeg"
    label = "JPEG 4:2:0 (libjpeg via Pillow)"
    knob = "quality"
    sweep = [2, 5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95]
    lo, hi = 1, 95
    integer = True
    more_bits_when_higher = True
    _feature = "jpg"
    _apt = "apt package libjpeg62-turbo-dev, then rebuild Pillow"
    _subsampling = 2  # Pillow: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0

    def encode(self, rgb: np.ndarray, setting: float) -> bytes:
        self._require()
        rgb = _check_rgb(rgb)
        return _pillow_encode(rgb, "JPEG", quality=self._setting(setting), subsampling=self._subsampling, optimize=True)

    def version(self) -> str:
        turbo = features.version("libjpeg_turbo")
        lib = f"libjpeg-turbo {turbo}" if turbo else f"libjpeg {features.version('jpg')}"
        return f"{lib} via Pillow {PIL.__version__}"


class Jpeg444Codec(JpegCodec):
    name = "jpeg444"
    label = "JPEG 4:4:4 (libjpeg via Pillow)"
    sweep = [2, 4, 7, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90]
    _subsampling = 0


class WebpCodec(_PillowCodec):
    name = "webp"
    label = "WebP (libwebp via Pillow)"
    knob = "quality"
    sweep = [0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95]
    lo, hi = 0, 100
    integer = False  # libwebp takes a float quality
    more_bits_when_higher = True
    _feature = "webp"
    _apt = "apt package libwebp-dev, then rebuild Pillow"

    def encode(self, rgb: np.ndarray, setting: float) -> bytes:
        self._require()
        rgb = _check_rgb(rgb)
        return _pillow_encode(rgb, "WEBP", quality=float(self._setting(setting)), method=6, lossless=False)


class Jpeg2000Codec(_PillowCodec):
    """JPEG 2000 (OpenJPEG), 9/7 irreversible wavelet, irreversible colour transform, one quality layer.

    The knob is the compression ratio against 24-bit RGB (about ``24 / ratio``
    bpp, headers included); larger means fewer bits. The output is a bare
    ``.j2k`` codestream, no JP2 box wrapper.
    """

    name = "jpeg2000"
    label = "JPEG 2000 (OpenJPEG via Pillow)"
    knob = "ratio"
    sweep = [500, 300, 200, 140, 100, 70, 50, 35, 25, 18, 12]
    lo, hi = 2.0, 2000.0
    integer = False
    more_bits_when_higher = False
    log_scale = True
    _feature = "jpg_2000"
    _apt = "apt package libopenjp2-7-dev, then rebuild Pillow"

    def encode(self, rgb: np.ndarray, setting: float) -> bytes:
        self._require()
        rgb = _check_rgb(rgb)
        return _pillow_encode(
            rgb,
            "JPEG2000",
            quality_mode="rates",
            quality_layers=[float(self._setting(setting))],
            irreversible=True,
            mct=1,  # RGB -> YCbCr (ICT) before the wavelet, as every J2K codec does for photos: +3 dB on Kodak
            no_jp2=True,
        )

    def version(self) -> str:
        return f"OpenJPEG {features.version('jpg_2000')} via Pillow {PIL.__version__}"


# --------------------------------------------------------------------------- AVIF


def _pillow_has_avif() -> bool:
    try:
        return bool(features.check("avif"))
    except (ValueError, KeyError):  # Pillow older than 11.2 knows no "avif" feature
        return False


class AvifCodec(ClassicalCodec):
    """AVIF (libaom), 4:4:4, full range, speed 6.

    Uses Pillow's AVIF plugin when present, else ``avifenc``/``avifdec``. The
    knob is libavif's quality 0..100; for ``avifenc`` it is mapped to a fixed
    quantizer exactly as libavif does (``q = ((100 - quality) * 63 + 50) // 100``).
    """

    name = "avif"
    label = "AVIF 4:4:4 (libaom via Pillow)"
    knob = "quality"
    sweep = [0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88]
    lo, hi = 0, 100
    integer = True
    more_bits_when_higher = True
    speed = 6

    def __init__(self, backend: str = "auto"):
        if backend not in ("auto", "pillow", "avifenc"):
            raise PlicError(f"unknown AVIF backend {backend!r} (use auto, pillow or avifenc)")
        if backend == "auto":
            backend = "pillow" if _pillow_has_avif() else "avifenc"
        self.backend = backend
        if backend == "avifenc":
            self.label = "AVIF 4:4:4 (libaom via avifenc)"

    def unavailable(self) -> str | None:
        if self.backend == "pillow":
            if not _pillow_has_avif():
                return f"Pillow {PIL.__version__} has no AVIF support (needs Pillow >= 11.2 wheel, or apt package libavif-bin for avifenc)"
            return None
        return _missing_tools(("avifenc", "avifdec"), " and Pillow has no AVIF support (apt package libavif-bin)")

    def encode(self, rgb: np.ndarray, setting: float) -> bytes:
        self._require()
        rgb = _check_rgb(rgb)
        quality = self._setting(setting)
        if self.backend == "pillow":
            return _pillow_encode(rgb, "AVIF", quality=quality, speed=self.speed, subsampling="4:4:4", range="full")
        q = ((100 - quality) * 63 + 50) // 100
        opts = ["--min", str(q), "--max", str(q), "-s", str(self.speed), "-y", "444", "-r", "full", "-d", "8"]
        return _encode_with_tool(rgb, ".avif", lambda src, dst: ["avifenc", *opts, src, dst])

    def decode(self, data: bytes) -> np.ndarray:
        self._require()
        if self.backend == "pillow":
            return _pillow_decode(data)
        return _decode_with_tool(data, ".avif", lambda src, dst: ["avifdec", "-d", "8", src, dst])

    def version(self) -> str:
        if self.backend == "pillow":
            from PIL import _avif

            return f"libavif {features.version('avif')} ({_avif.codec_versions()}) via Pillow {PIL.__version__}"
        return f"avifenc {_first_line(['avifenc', '--version'])}"


# --------------------------------------------------------------------------- JPEG XL


class JxlCodec(ClassicalCodec):
    """JPEG XL (libjxl ``cjxl``/``djxl``), VarDCT at butteraugli distance ``d``, effort 7."""

    name = "jxl"
    label = "JPEG XL (libjxl cjxl)"
    knob = "distance"
    sweep = [25.0, 15.0, 10.0, 7.0, 5.0, 3.5, 2.5, 1.8, 1.3, 0.9, 0.6]
    lo, hi = 0.1, 25.0
    integer = False
    more_bits_when_higher = False
    log_scale = True
    effort = 7

    def unavailable(self) -> str | None:
        return _missing_tools(("cjxl", "djxl"), " (apt package libjxl-tools)")

    def encode(self, rgb: np.ndarray, setting: float) -> bytes:
        self._require()
        rgb = _check_rgb(rgb)
        distance = self._setting(setting)
        return _encode_with_tool(rgb, ".jxl", lambda src, dst: ["cjxl", src, dst, "-d", f"{distance:.6g}", "-e", str(self.effort)])

    def decode(self, data: bytes) -> np.ndarray:
        self._require()
        return _decode_with_tool(data, ".jxl", lambda src, dst: ["djxl", src, dst])

    def version(self) -> str:
        return _first_line(["cjxl", "--version"])


# --------------------------------------------------------------------------- HEVC intra (x265)

# Full-range BT.709 RGB <-> YCbCr (Kr = 0.2126, Kb = 0.0722), applied here in
# numpy on both sides so that ffmpeg/swscale never converts colours or ranges:
# ffmpeg only moves planar 8-bit yuv444p in and out of x265 / the HEVC decoder.
_KR, _KB = 0.2126, 0.0722
_KG = 1.0 - _KR - _KB
_RGB2YUV = np.array(
    [
        [_KR, _KG, _KB],
        [-_KR / (2 * (1 - _KB)), -_KG / (2 * (1 - _KB)), 0.5],
        [0.5, -_KG / (2 * (1 - _KR)), -_KB / (2 * (1 - _KR))],
    ]
)
_YUV2RGB = np.linalg.inv(_RGB2YUV)
_CHROMA_OFFSET = np.array([0.0, 128.0, 128.0])


def _rgb_to_yuv444_planes(rgb: np.ndarray) -> bytes:
    yuv = rgb.astype(np.float64) @ _RGB2YUV.T + _CHROMA_OFFSET
    yuv = np.clip(np.rint(yuv), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(yuv.transpose(2, 0, 1)).tobytes()  # planar Y, Cb, Cr


def _yuv444_planes_to_rgb(planes: np.ndarray) -> np.ndarray:
    yuv = planes.transpose(1, 2, 0).astype(np.float64) - _CHROMA_OFFSET
    rgb = yuv @ _YUV2RGB.T
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _parse_y4m_frame(data: bytes) -> np.ndarray:
    """The first frame of a ``yuv4mpegpipe`` stream in C444 as a (3, H, W) uint8 array."""
    end = data.find(b"\n")
    header = data[:end].split(b" ") if end > 0 else []
    if not header or header[0] != b"YUV4MPEG2":
        raise PlicError("HEVC decode: ffmpeg did not return a Y4M stream")
    fields = {t[:1]: t[1:] for t in header[1:] if t}
    width, height = int(fields[b"W"]), int(fields[b"H"])
    if not fields.get(b"C", b"").startswith(b"444"):
        raise PlicError(f"HEVC decode: expected 4:4:4 output, got C{fields.get(b'C', b'?').decode()}")
    frame = data.find(b"\n", end + 1)  # "FRAME[ params]\n"
    size = 3 * width * height
    raw = data[frame + 1 : frame + 1 + size]
    if frame < 0 or len(raw) != size:
        raise PlicError("HEVC decode: truncated frame from ffmpeg")
    return np.frombuffer(raw, dtype=np.uint8).reshape(3, height, width)


@functools.lru_cache(maxsize=None)
def _ffmpeg_has_libx265() -> bool:
    try:
        res = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-encoders"], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return False
    return b"libx265" in res.stdout


@functools.lru_cache(maxsize=None)
def _x265_version() -> str:
    """x265's own version, read from its info log on a tiny encode."""
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-f", "rawvideo", "-pix_fmt", "yuv444p", "-s", "16x16", "-i", "pipe:0"]
    cmd += ["-frames:v", "1", "-c:v", "libx265", "-x265-params", "qp=30:log-level=info", "-f", "hevc", "pipe:1"]
    try:
        res = subprocess.run(cmd, input=bytes(3 * 16 * 16), capture_output=True, check=False)
    except OSError:
        return "unknown"
    m = re.search(rb"HEVC encoder version (\S+)", res.stderr or b"")
    return m.group(1).decode() if m else "unknown"


class HevcCodec(ClassicalCodec):
    """HEVC intra, 4:4:4 8-bit, constant QP (x265 through ffmpeg): the codec inside BPG.

    The file is the raw Annex-B bitstream (VPS/SPS/PPS + one IDR slice), no
    container. x265's informational SEI (its version and full option string,
    about 2 KB) is switched off with ``info=0`` so it is not counted as image
    bits. Colour conversion is full-range BT.709, done here on both sides. x265
    accepts odd sizes in 4:4:4 (it pads to its CU size internally and signals a
    conformance window), so no padding is needed here.
    """

    name = "hevc"
    label = "HEVC intra 4:4:4 (x265)"
    knob = "qp"
    sweep = [51, 47, 43, 40, 37, 34, 31, 28, 25, 22, 19]
    lo, hi = 0, 51
    integer = True
    more_bits_when_higher = False
    preset = "medium"

    def unavailable(self) -> str | None:
        missing = _missing_tools(("ffmpeg",), " (apt package ffmpeg)")
        if missing:
            return missing
        if not _ffmpeg_has_libx265():
            return "this ffmpeg has no libx265 encoder (apt package ffmpeg from Debian/Ubuntu, built with libx265)"
        return None

    def encode(self, rgb: np.ndarray, setting: float) -> bytes:
        self._require()
        rgb = _check_rgb(rgb)
        qp = self._setting(setting)
        h, w = rgb.shape[:2]
        x265 = f"qp={qp}:keyint=1:info=0:log-level=error:range=full:colorprim=bt709:transfer=bt709:colormatrix=bt709"
        cmd = ["ffmpeg", "-loglevel", "error", "-nostdin", "-f", "rawvideo", "-pix_fmt", "yuv444p", "-s", f"{w}x{h}", "-i", "pipe:0"]
        cmd += ["-frames:v", "1", "-c:v", "libx265", "-preset", self.preset, "-x265-params", x265, "-f", "hevc", "pipe:1"]
        data = _run(cmd, stdin=_rgb_to_yuv444_planes(rgb)).stdout
        if not data:
            raise PlicError("ffmpeg/x265 produced an empty HEVC bitstream")
        return data

    def decode(self, data: bytes) -> np.ndarray:
        self._require()
        cmd = ["ffmpeg", "-loglevel", "error", "-nostdin", "-f", "hevc", "-i", "pipe:0"]
        cmd += ["-frames:v", "1", "-pix_fmt", "yuv444p", "-f", "yuv4mpegpipe", "pipe:1"]
        return _yuv444_planes_to_rgb(_parse_y4m_frame(_run(cmd, stdin=data).stdout))

    def version(self) -> str:
        ff = _first_line(["ffmpeg", "-version"])
        ff = " ".join(ff.split()[:3])  # "ffmpeg version 5.1.x"
        return f"x265 {_x265_version()} via {ff}"


# --------------------------------------------------------------------------- registry

CLASSICAL_CODECS: dict[str, type[ClassicalCodec]] = {
    cls.name: cls for cls in (JpegCodec, Jpeg444Codec, WebpCodec, AvifCodec, JxlCodec, Jpeg2000Codec, HevcCodec)
}


def classical_codec(name: str) -> ClassicalCodec:
    """An instance of the classical codec registered as ``name``."""
    try:
        cls = CLASSICAL_CODECS[name]
    except (KeyError, TypeError):
        raise PlicError(f"unknown classical codec {name!r}; known: {', '.join(CLASSICAL_CODECS)}") from None
    return cls()


# --------------------------------------------------------------------------- rate targeting


def encode_at_bpp(codec: ClassicalCodec, rgb: np.ndarray, target_bpp: float, tol: float = 0.02, max_iter: int = 20) -> tuple[float, bytes]:
    """Bisect ``codec``'s knob for the file whose bpp is closest to ``target_bpp``.

    Stops as soon as a setting lands within relative tolerance ``tol`` and
    otherwise after ``max_iter`` encodes (the two ends included), or when an
    integer knob has no untried value left in the bracket. A target below
    (above) what the knob's range reaches returns the fewest-bits (most-bits)
    end. Returns ``(setting, data)`` of the closest file found.
    """
    rgb = _check_rgb(rgb)
    try:
        target_bpp = float(target_bpp)
    except (TypeError, ValueError):
        target_bpp = math.nan
    if not (math.isfinite(target_bpp) and target_bpp > 0):
        raise PlicError(f"target bpp must be a positive number, got {target_bpp!r}")
    pixels = rgb.shape[0] * rgb.shape[1]
    tried: dict[float, tuple[float, bytes]] = {}

    def bpp_at(s: float) -> float:
        if s not in tried:
            data = codec.encode(rgb, s)
            tried[s] = (8.0 * len(data) / pixels, data)
        return tried[s][0]

    def best() -> tuple[float, bytes]:
        s = min(tried, key=lambda k: (abs(tried[k][0] / target_bpp - 1.0), k))
        return (s, tried[s][1])

    lo, hi = (int(codec.lo), int(codec.hi)) if codec.integer else (float(codec.lo), float(codec.hi))
    few, many = (lo, hi) if codec.more_bits_when_higher else (hi, lo)  # knob ends giving fewest / most bits
    if bpp_at(few) >= target_bpp or abs(tried[few][0] / target_bpp - 1.0) <= tol:
        return (few, tried[few][1])
    if bpp_at(many) <= target_bpp or abs(tried[many][0] / target_bpp - 1.0) <= tol:
        return (many, tried[many][1])

    # invariant: bpp(few) < target < bpp(many)
    space = "integer" if codec.integer else "log" if codec.log_scale and few > 0 and many > 0 else "linear"
    hit, _, _ = bisect(bpp_at, few, many, target_bpp, max(0, max_iter - 2), space,
                       done=lambda b: abs(b / target_bpp - 1.0) <= tol)
    return (hit, tried[hit][1]) if hit is not None else best()
