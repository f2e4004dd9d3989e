"""The container: round trip, refusal of foreign or damaged files, fuzzing."""

from __future__ import annotations

import random
import struct
import zlib

import pytest

from plic import bitstream
from plic.bitstream import BitstreamError, Header, PlicFile


def _file(**kw) -> PlicFile:
    h = dict(model="hyperprior", fingerprint=b"\x01" * 8, height=5, width=7, channels=3,
             bit_depth=8, lmbda=0.01, shapes={"y": (1, 1), "hyper": (1, 1)}, flags=0)
    h.update(kw)
    return PlicFile(Header(**h), [[b"abc"], [b""]])


def test_round_trip_keeps_every_field():
    f = _file(flags=bitstream.FLAG_ALPHA)
    f.extensions[bitstream.TAG_ALPHA] = b"zz"
    g = bitstream.parse(bitstream.pack(f))
    assert g.header.model == "hyperprior" and g.header.fingerprint == b"\x01" * 8
    assert (g.header.height, g.header.width, g.header.channels, g.header.bit_depth) == (5, 7, 3, 8)
    assert g.header.lmbda == pytest.approx(0.01)
    assert g.header.shapes == {"y": (1, 1), "hyper": (1, 1)}
    assert g.payloads == [[b"abc"], [b""]] and g.extensions == {1: b"zz"}


def _recrc(data: bytes) -> bytes:
    body = data[:-4]
    return body + struct.pack(">I", zlib.crc32(body))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: b"JPEG" + d[4:], "wrong magic"),
        (lambda d: d[:4] + bytes([9]) + d[5:], "version 9"),
        (lambda d: _recrc(d[:5] + b"\x80\x00" + d[7:]), "unknown header flags"),
        (lambda d: d[:-1], "checksum"),
        (lambda d: d[:10], "truncated"),
        (lambda d: d[:3], "wrong magic"),
        (lambda d: b"", "wrong magic"),
        (lambda d: d[:-5] + bytes([d[-5] ^ 1]) + d[-4:], "checksum"),
        (lambda d: _recrc(d[:-4] + b"x" + d[-4:]), "trailing bytes"),
    ],
)
def test_damaged_files_are_refused_with_a_reason(mutate, message):
    data = bitstream.pack(_file())
    with pytest.raises(BitstreamError, match=message):
        bitstream.parse(mutate(data))


def test_header_limits_are_enforced():
    with pytest.raises(BitstreamError, match="out of range"):
        bitstream.parse(bitstream.pack(_file(height=70000)))
    with pytest.raises(BitstreamError, match="bit depth"):
        bitstream.parse(bitstream.pack(_file(bit_depth=12)))
    with pytest.raises(BitstreamError, match="rate parameter"):
        bitstream.parse(bitstream.pack(_file(lmbda=float("nan"))))
    with pytest.raises(BitstreamError, match="alpha flag"):
        bitstream.parse(bitstream.pack(_file(flags=bitstream.FLAG_ALPHA)))


def test_fuzz_random_bytes_never_crash():
    rng = random.Random(0)
    for i in range(1500):
        n = rng.randrange(0, 300)
        data = rng.randbytes(n)
        if i % 3 == 0:
            data = b"PLIC\x01" + data  # get past the magic
        if i % 3 == 1:
            data = _recrc(b"PLIC\x01" + data + b"\0\0\0\0")  # and past the checksum
        try:
            bitstream.parse(data)
        except BitstreamError:
            pass


def test_fuzz_truncations_and_mutations_of_a_real_file(sample_plic):
    rng = random.Random(1)
    data = sample_plic
    for n in range(len(data)):
        with pytest.raises(BitstreamError):
            bitstream.parse(data[:n])
    for _ in range(1500):
        d = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            d[rng.randrange(len(d))] ^= 1 << rng.randrange(8)
        if bytes(d) == data:
            continue
        with pytest.raises(BitstreamError):
            bitstream.parse(bytes(d))
