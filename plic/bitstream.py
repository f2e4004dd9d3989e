"""The ``.plic`` container: pack and parse, with every read bounds-checked.

Layout (big-endian), documented in docs/bitstream.md:

    magic "PLIC" | version u8 | flags u16 | model name (u8 len + ASCII)
    | weights fingerprint 8 bytes | height u32 | width u32 | channels u8
    | bit depth u8 | lambda f32 | latent shapes (u16 len + JSON)
    | extensions (u16 count; each: u8 tag, u32 len, bytes)
    | payload groups (u8 count; each: u8 count; each: u32 len + bytes)
    | CRC-32 of everything before it, u32

Unknown flags, versions or extension tags are refused: a decoder never guesses.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any, Dict, List

from plic.errors import BitstreamError

MAGIC = b"PLIC"
VERSION = 1

FLAG_ALPHA = 1 << 0  # an alpha plane is carried losslessly (extension TAG_ALPHA)
FLAG_VARIABLE_RATE = 1 << 1  # lambda selects a point of a variable-rate model
FLAG_POST_FILTER = 1 << 2  # the model's post-filter (ST-LIC) is applied after synthesis
KNOWN_FLAGS = FLAG_ALPHA | FLAG_VARIABLE_RATE | FLAG_POST_FILTER

TAG_ALPHA = 1  # zlib-compressed 8- or 16-bit alpha plane, row-major
KNOWN_TAGS = {TAG_ALPHA}

# Limits that keep a hostile header from asking for absurd allocations.
MAX_SIDE = 1 << 16
MAX_PIXELS = 1 << 28
MAX_GROUPS = 64
MAX_SHAPES_JSON = 1 << 14


@dataclass
class Header:
    model: str
    fingerprint: bytes
    height: int
    width: int
    channels: int
    bit_depth: int
    lmbda: float
    shapes: Any
    flags: int = 0
    version: int = VERSION


@dataclass
class PlicFile:
    header: Header
    payloads: List[List[bytes]]
    extensions: Dict[int, bytes] = field(default_factory=dict)


def shapes_to_json(shapes: Any) -> Any:
    if isinstance(shapes, dict):
        return {str(k): shapes_to_json(v) for k, v in shapes.items()}
    if isinstance(shapes, (list, tuple)):
        return [shapes_to_json(v) for v in shapes]
    return int(shapes)


def shapes_from_json(obj: Any) -> Any:
    """JSON lists back to the tuples compressai compares shapes with."""
    if isinstance(obj, dict):
        return {k: shapes_from_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return tuple(shapes_from_json(v) for v in obj)
    if isinstance(obj, int) and not isinstance(obj, bool):
        return obj
    raise BitstreamError("corrupt header: bad latent shape entry")


def pack(f: PlicFile) -> bytes:
    h = f.header
    name = h.model.encode("ascii")
    shapes = json.dumps(shapes_to_json(h.shapes), separators=(",", ":")).encode()
    if len(name) > 255 or len(shapes) > MAX_SHAPES_JSON or len(h.fingerprint) != 8:
        raise ValueError("header field too long")
    out = bytearray()
    out += MAGIC
    out += struct.pack(">BH", h.version, h.flags)
    out += struct.pack(">B", len(name)) + name
    out += h.fingerprint
    out += struct.pack(">IIBBf", h.height, h.width, h.channels, h.bit_depth, h.lmbda)
    out += struct.pack(">H", len(shapes)) + shapes
    out += struct.pack(">H", len(f.extensions))
    for tag, data in sorted(f.extensions.items()):
        out += struct.pack(">BI", tag, len(data)) + data
    if len(f.payloads) > MAX_GROUPS:
        raise ValueError("too many payload groups")
    out += struct.pack(">B", len(f.payloads))
    for group in f.payloads:
        out += struct.pack(">B", len(group))
        for s in group:
            out += struct.pack(">I", len(s)) + s
    out += struct.pack(">I", zlib.crc32(out))
    return bytes(out)


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise BitstreamError(f"truncated file (while reading {what})")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, what: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))


def parse(data: bytes) -> PlicFile:
    """Parse and validate a whole ``.plic`` file (raises BitstreamError)."""
    if len(data) < 4 or data[:4] != MAGIC:
        raise BitstreamError("not a .plic file (wrong magic bytes)")
    if len(data) < 8:
        raise BitstreamError("truncated file (header)")
    version = data[4]
    if version != VERSION:
        raise BitstreamError(f"unsupported .plic format version {version} (this plic reads {VERSION})")
    if len(data) < 4 + 3 + 4:
        raise BitstreamError("truncated file (header)")
    (stored_crc,) = struct.unpack(">I", data[-4:])
    if zlib.crc32(data[:-4]) != stored_crc:
        raise BitstreamError("checksum mismatch: the file is corrupted or truncated")
    r = _Reader(data[:-4])
    r.take(5, "magic")
    (flags,) = r.unpack(">H", "flags")
    if flags & ~KNOWN_FLAGS:
        raise BitstreamError(f"unknown header flags 0x{flags:04x}: written by a newer plic?")
    (name_len,) = r.unpack(">B", "model name")
    try:
        model = r.take(name_len, "model name").decode("ascii")
    except UnicodeDecodeError:
        raise BitstreamError("corrupt header: model name is not ASCII") from None
    fp = r.take(8, "weights fingerprint")
    height, width, channels, bit_depth, lmbda = r.unpack(">IIBBf", "image header")
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE and height * width <= MAX_PIXELS):
        raise BitstreamError(f"corrupt header: image size {width}x{height} out of range")
    if channels not in (1, 2, 3, 4) or bit_depth not in (8, 16):
        raise BitstreamError("corrupt header: bad channel count or bit depth")
    if not (lmbda > 0 and lmbda < 1e3):  # also rejects NaN
        raise BitstreamError("corrupt header: bad rate parameter")
    (shapes_len,) = r.unpack(">H", "latent shapes")
    if shapes_len > MAX_SHAPES_JSON:
        raise BitstreamError("corrupt header: latent shapes too long")
    try:
        shapes = shapes_from_json(json.loads(r.take(shapes_len, "latent shapes")))
    except (ValueError, RecursionError):
        raise BitstreamError("corrupt header: latent shapes unreadable") from None
    (n_ext,) = r.unpack(">H", "extensions")
    extensions: Dict[int, bytes] = {}
    for _ in range(n_ext):
        tag, length = r.unpack(">BI", "extension")
        if tag not in KNOWN_TAGS or tag in extensions:
            raise BitstreamError(f"unknown or repeated extension tag {tag}")
        extensions[tag] = r.take(length, "extension")
    (n_groups,) = r.unpack(">B", "payloads")
    if n_groups > MAX_GROUPS:
        raise BitstreamError("corrupt file: too many payload groups")
    payloads: List[List[bytes]] = []
    for _ in range(n_groups):
        (n,) = r.unpack(">B", "payloads")
        group = []
        for _ in range(n):
            (length,) = r.unpack(">I", "payload length")
            group.append(r.take(length, "payload"))
        payloads.append(group)
    if r.pos != len(r.data):
        raise BitstreamError("corrupt file: trailing bytes after the payloads")
    if bool(flags & FLAG_ALPHA) != (TAG_ALPHA in extensions):
        raise BitstreamError("corrupt file: alpha flag and alpha plane disagree")
    header = Header(model, fp, height, width, channels, bit_depth, lmbda, shapes, flags, version)
    return PlicFile(header, payloads, extensions)
