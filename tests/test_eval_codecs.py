"""Classical codecs for R-D benchmarks: round trips, rate ordering, rate targeting."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from plic.errors import PlicError
from plic.eval import codecs as cc
from plic.eval.codecs import CLASSICAL_CODECS, AvifCodec, ClassicalCodec, classical_codec, encode_at_bpp

SAMPLE = Path(__file__).resolve().parents[1] / "assets" / "chelsea.png"

# PSNR floor (dB) at the most-bits end of each knob on the 96x64 crop (measured: jpeg 39.3,
# jpeg444 41.4, webp 42.2, avif 50.0 / 57.7 via avifenc, jxl 47.1, jpeg2000 51.5, hevc 49.9).
HIGH_PSNR = {"jpeg": 37, "jpeg444": 39, "webp": 40, "avif": 46, "jxl": 44, "jpeg2000": 47, "hevc": 46}

VARIANTS = list(CLASSICAL_CODECS) + ["avif:avifenc"]


def _make(variant: str) -> ClassicalCodec:
    return AvifCodec(backend="avifenc") if variant == "avif:avifenc" else classical_codec(variant)


def _bpp(data: bytes, rgb: np.ndarray) -> float:
    return 8.0 * len(data) / (rgb.shape[0] * rgb.shape[1])


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def _most_bits(codec: ClassicalCodec) -> float:
    return codec.hi if codec.more_bits_when_higher else codec.lo


def _fewest_bits(codec: ClassicalCodec) -> float:
    return codec.lo if codec.more_bits_when_higher else codec.hi


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.asarray(Image.open(SAMPLE).convert("RGB"))


@pytest.fixture(scope="module")
def crop(image) -> np.ndarray:
    return np.ascontiguousarray(image[100:164, 150:246])  # 64x96, the cat's face


@pytest.fixture(params=VARIANTS)
def codec(request) -> ClassicalCodec:
    c = _make(request.param)
    reason = c.unavailable()
    if reason is not None:
        pytest.skip(reason)
    return c


# ------------------------------------------------------------------ registry and attributes


def test_registry_names():
    assert set(CLASSICAL_CODECS) == {"jpeg", "jpeg444", "webp", "avif", "jxl", "jpeg2000", "hevc"}
    for name, cls in CLASSICAL_CODECS.items():
        assert cls.name == name
        assert isinstance(classical_codec(name), cls)


def test_unknown_codec_name_lists_known_names():
    with pytest.raises(PlicError, match=r"unknown classical codec 'bpg'.*jpeg.*hevc"):
        classical_codec("bpg")


@pytest.mark.parametrize("name", list(CLASSICAL_CODECS))
def test_attributes_consistent(name):
    c = CLASSICAL_CODECS[name]
    assert c.label and c.knob and c.lo < c.hi
    assert len(c.sweep) >= 8
    assert all(c.lo <= s <= c.hi for s in c.sweep)
    if c.integer:
        assert all(float(s).is_integer() for s in c.sweep)
    # ordered from fewest to most bits
    ordered = sorted(c.sweep, reverse=not c.more_bits_when_higher)
    assert list(c.sweep) == ordered and len(set(c.sweep)) == len(c.sweep)


def test_setting_out_of_range_and_bad_input(crop):
    c = classical_codec("jpeg")
    with pytest.raises(PlicError, match="outside"):
        c.encode(crop, 0)
    with pytest.raises(PlicError, match="uint8"):
        c.encode(crop.astype(np.float32), 50)
    with pytest.raises(PlicError, match="HxWx3"):
        c.encode(crop[..., 0], 50)


# ------------------------------------------------------------------ every available codec


def test_round_trip_high_setting(codec, crop):
    data = codec.encode(crop, _most_bits(codec))
    assert isinstance(data, bytes) and len(data) > 0
    out = codec.decode(data)
    assert out.shape == crop.shape and out.dtype == np.uint8
    assert _psnr(crop, out) > HIGH_PSNR[codec.name]


def test_more_bits_along_sweep(codec, crop):
    sweep = codec.sweep
    picks = [sweep[0], sweep[len(sweep) // 2], sweep[-1]]
    sizes = [len(codec.encode(crop, s)) for s in picks]
    assert sizes[0] < sizes[1] < sizes[2], dict(zip(picks, sizes))


def test_odd_size_round_trip(codec, image):
    odd = np.ascontiguousarray(image[120:137, 200:233])  # 17x33
    # most-bits end: on 561 pixels the fewer-bits settings are dominated by headers (j2k bottoms out at ~180 bytes)
    out = codec.decode(codec.encode(odd, _most_bits(codec)))
    assert out.shape == (17, 33, 3) and out.dtype == np.uint8
    assert _psnr(odd, out) > 36


def test_file_format(codec, crop):
    data = codec.encode(crop, codec.sweep[len(codec.sweep) // 2])
    if codec.name in ("jpeg", "jpeg444"):
        assert data[:2] == b"\xff\xd8"
        with Image.open(io.BytesIO(data)) as im:
            assert JpegImagePlugin.get_sampling(im) == (2 if codec.name == "jpeg" else 0)
    elif codec.name == "webp":
        assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    elif codec.name == "avif":
        assert data[4:8] == b"ftyp"
    elif codec.name == "jxl":
        assert data[:2] == b"\xff\x0a" or data[:12] == b"\x00\x00\x00\x0cJXL \r\n\x87\n"
    elif codec.name == "jpeg2000":
        assert data[:4] == b"\xff\x4f\xff\x51"  # bare codestream: SOC, SIZ
    elif codec.name == "hevc":
        assert data[:4] == b"\x00\x00\x00\x01" or data[:3] == b"\x00\x00\x01"
        assert b"x265" not in data  # the info SEI (~2 KB of option text) must not be counted
    else:
        pytest.fail(f"no format check for {codec.name}")


def test_version(codec):
    v = codec.version()
    assert isinstance(v, str) and any(ch.isdigit() for ch in v) and "\n" not in v


def test_encode_at_bpp_reachable(codec, crop):
    mid = codec.sweep[len(codec.sweep) // 2]
    target = _bpp(codec.encode(crop, mid), crop)
    if not codec.integer:  # aim between two sweep points, not at one
        target = float(np.sqrt(target * _bpp(codec.encode(crop, codec.sweep[len(codec.sweep) // 2 + 1]), crop)))
    setting, data = encode_at_bpp(codec, crop, target, tol=0.02)
    assert codec.lo <= setting <= codec.hi
    assert abs(_bpp(data, crop) / target - 1) <= 0.02, (setting, _bpp(data, crop), target)
    assert codec.decode(data).shape == crop.shape


def test_encode_at_bpp_unreachable_returns_end(codec, crop):
    setting, data = encode_at_bpp(codec, crop, 200.0)
    assert setting == _most_bits(codec)
    assert codec.decode(data).shape == crop.shape
    setting, _ = encode_at_bpp(codec, crop, 1e-4)
    assert setting == _fewest_bits(codec)


# ------------------------------------------------------------------ HEVC colour conversion


def test_hevc_colour_conversion_nearly_lossless(crop):
    planes = np.frombuffer(cc._rgb_to_yuv444_planes(crop), dtype=np.uint8).reshape(3, *crop.shape[:2])
    back = cc._yuv444_planes_to_rgb(planes)
    assert np.abs(back.astype(int) - crop.astype(int)).max() <= 2
    assert _psnr(crop, back) > 50
    grey = np.full((2, 2, 3), 77, np.uint8)  # neutral colours have Cb = Cr = 128 and Y = value (full range)
    assert np.frombuffer(cc._rgb_to_yuv444_planes(grey), np.uint8).tolist() == [77] * 4 + [128] * 8


# ------------------------------------------------------------------ bisection logic on a fake codec


class _FakeCodec(ClassicalCodec):
    """File size is a fixed function of the knob; counts encodes."""

    name = "fake"
    knob = "q"

    def __init__(self, integer, higher, size):
        self.integer, self.more_bits_when_higher, self.size = integer, higher, size
        self.lo, self.hi = 0, 51
        self.calls = 0

    def encode(self, rgb, setting):
        self.calls += 1
        return bytes(int(self.size(setting)))


_RGB = np.zeros((8, 8, 3), np.uint8)  # 64 pixels: bpp = len / 8


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("higher", [True, False])
def test_bisection_directions(integer, higher):
    def size(s):  # bytes grow with the knob when `higher`, shrink otherwise: 10 .. 520
        return 10 + 10 * (s if higher else 51 - s)

    fake = _FakeCodec(integer, higher, size)
    target = size(17) / 8  # exactly reachable at 17
    setting, data = encode_at_bpp(fake, _RGB, target, tol=0.001)
    assert len(data) == size(17) and abs(setting - 17) < 0.1  # float knob: sizes are whole bytes
    assert fake.calls <= 20


def test_bisection_stops_at_max_iter_and_returns_closest():
    fake = _FakeCodec(False, True, lambda s: 100 + 1000 * s)
    setting, data = encode_at_bpp(fake, _RGB, target_bpp=(100 + 1000 * 12.345) / 8, tol=1e-12, max_iter=5)
    assert fake.calls == 5
    assert len(data) == 100 + 1000 * setting  # the data belongs to the returned setting
    assert abs(setting - 12.345) < 51 / 2**3  # the closest of the tried points


def test_bisection_integer_gap_terminates():
    fake = _FakeCodec(True, False, lambda s: 8 * (60 - s))  # bpp = 60 - qp, no setting gives 40.5
    setting, data = encode_at_bpp(fake, _RGB, 40.5, tol=0.001, max_iter=100)
    assert setting in (19, 20) and fake.calls <= 10


def test_bad_target(crop):
    with pytest.raises(PlicError, match="positive"):
        encode_at_bpp(classical_codec("jpeg"), crop, 0.0)
