"""Reading and writing images, with plic's stated input policy.

Policy (docs/bitstream.md repeats it):

* EXIF orientation is applied on read; the decoded image is upright.
* RGB, 8-bit: coded as is.
* Grayscale (L, 1-bit, I;16 ...): the gray plane is replicated to RGB for the
  codec; the decoder returns one plane (mean of the three decoded planes).
* 16-bit grayscale: the codec sees the full-precision values (scaled to
  [0, 1]) and the decoder writes 16-bit output again. Pillow itself reduces
  16-bit RGB files to 8 bits when it reads them; such files are coded as 8-bit.
* Alpha (RGBA, LA, palette with transparency): the alpha plane is carried
  losslessly (zlib) beside the lossy colour planes.
* CMYK, YCbCr, float and other modes are converted to RGB first.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from plic.errors import PlicError
from plic.files import IMAGE_SUFFIXES, atomic_write_bytes, plain_file_mode, write_output  # noqa: F401  (re-exported)


@dataclass
class PlanarImage:
    """Colour planes as float [1, 3, H, W] in [0, 1], plus what is needed to restore the file."""

    rgb: torch.Tensor
    channels: int  # 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA (of the original file)
    bit_depth: int  # 8 or 16
    alpha: Optional[np.ndarray] = None  # HxW uint8/uint16, kept losslessly

    @property
    def height(self) -> int:
        return self.rgb.shape[-2]

    @property
    def width(self) -> int:
        return self.rgb.shape[-1]


def open_image(path: Path) -> Image.Image:
    """A loaded Pillow image, EXIF orientation applied; every failure a one-line PlicError.

    ``-`` reads the image from standard input.
    """
    source = path
    if str(path) == "-":
        import io
        import sys

        source, path = io.BytesIO(sys.stdin.buffer.read()), "standard input"
    elif not path.exists():
        raise PlicError(f"{path}: no such file")
    elif path.is_dir():
        raise PlicError(f"{path}: is a folder, expected an image")
    try:
        im = Image.open(source)
        im.load()
    except UnidentifiedImageError:
        raise PlicError(f"{path}: not an image Pillow can read") from None
    except Image.DecompressionBombError as exc:
        raise PlicError(f"{path}: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise PlicError(f"{path}: unreadable image ({exc})") from None
    try:
        return ImageOps.exif_transpose(im)
    except Exception:  # a broken EXIF block must not make the pixels unreadable
        return im


def read_image(path: str | Path) -> PlanarImage:
    im = open_image(Path(path))
    mode = im.mode
    alpha = None
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im).astype(np.float64)
        if mode == "I" and arr.max(initial=0) > 65535:
            raise PlicError(f"{path}: 32-bit integer images are not supported")
        gray = torch.from_numpy(arr / 65535.0).float()
        return PlanarImage(gray.expand(1, 3, *gray.shape).contiguous(), 1, 16)
    if mode in ("1", "L", "LA", "La"):
        if mode in ("LA", "La"):
            im = im.convert("LA")
            alpha = np.array(im.getchannel("A"))
            im = im.getchannel("L")
        gray = torch.from_numpy(np.asarray(im.convert("L"), dtype=np.float32) / 255.0)
        return PlanarImage(gray.expand(1, 3, *gray.shape).contiguous(), 2 if alpha is not None else 1, 8, alpha)
    if mode in ("RGBA", "RGBa", "PA"):
        im = im.convert("RGBA")
        alpha = np.array(im.getchannel("A"))
        im = im.convert("RGB")
    elif mode != "RGB":
        im = im.convert("RGB")
    arr = np.asarray(im, dtype=np.float32) / 255.0
    rgb = torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()
    return PlanarImage(rgb, 4 if alpha is not None else 3, 8, alpha)


def to_pil(rgb: torch.Tensor, channels: int, bit_depth: int, alpha: Optional[np.ndarray]) -> Image.Image:
    """Rebuild a Pillow image of the original kind from decoded planes in [0, 1]."""
    x = rgb.detach().clamp(0, 1).squeeze(0).cpu().double()
    if channels in (1, 2):
        x = x.mean(0)
        if bit_depth == 16:
            return Image.fromarray(np.round(x.numpy() * 65535).astype(np.uint16))  # mode I;16
        im = Image.fromarray(np.round(x.numpy() * 255).astype(np.uint8), "L")
        if alpha is not None:
            im = Image.merge("LA", (im, Image.fromarray(alpha, "L")))
        return im
    arr = np.round(x.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    im = Image.fromarray(arr, "RGB")
    if alpha is not None:
        im = Image.merge("RGBA", (*im.split(), Image.fromarray(alpha, "L")))
    return im


def quantize_rgb(rgb: torch.Tensor) -> torch.Tensor:
    """The 8-bit values a decoded float image is written as, back in [0, 1]."""
    return torch.round(rgb.clamp(0, 1) * 255) / 255


def encode_alpha(alpha: np.ndarray) -> bytes:
    """Alpha planes are 8-bit here (Pillow's RGBA and LA modes)."""
    return zlib.compress(np.ascontiguousarray(alpha, dtype=np.uint8).tobytes(), 9)


def decode_alpha(data: bytes, height: int, width: int) -> np.ndarray:
    from plic.errors import BitstreamError

    expected = height * width
    try:
        # bounded: a hostile stream cannot inflate past the plane's size
        raw = zlib.decompressobj().decompress(data, expected + 1)
    except zlib.error:
        raise BitstreamError("corrupt alpha plane") from None
    if len(raw) != expected:
        raise BitstreamError("corrupt alpha plane (wrong size)")
    return np.frombuffer(raw, dtype=np.uint8).reshape(height, width).copy()


def save_image(im: Image.Image, path: str | Path) -> None:
    """Encode with Pillow to memory, then write atomically (``-``: PNG to standard output)."""
    import io

    path = Path(path)
    stdout = str(path) == "-"
    fmt = "PNG" if stdout else Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise PlicError(f"{path}: unknown image extension {path.suffix!r} (use .png)")
    buf = io.BytesIO()
    try:
        im.save(buf, format=fmt)
    except (OSError, ValueError, KeyError) as exc:
        raise PlicError(f"{path}: cannot save a {im.mode} image as {fmt} ({exc}); use .png") from None
    write_output(path, buf.getvalue())
