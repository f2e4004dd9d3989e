"""CompressAI's own coder as a benchmark codec: ``compressai:<zoo architecture>`` in ``plic eval``.

The knob is the zoo's quality (1..8). Each quality's weights are CompressAI's
zoo file from torch's hub cache, read as ``plic import`` reads it (plain
tensors only); the image is padded with zeros to a multiple of 64 and coded
with the model's own ``compress()``/``decompress()``, as CompressAI's
``compressai.utils.eval_model`` does. The "file" is CompressAI's strings
behind a small frame (image size, string shapes and lengths), so its size is
what CompressAI's strings cost plus a few bytes: the same weights imported
with ``plic import`` can then be compared file against file.
"""

from __future__ import annotations

import copy
import functools
import json
import struct

import numpy as np

from plic.errors import BitstreamError, PlicError
from plic.eval.codecs import ClassicalCodec


@functools.lru_cache(maxsize=8)
def _zoo_model(architecture: str, quality: int, metric: str):
    """CompressAI's model for ``quality``; for a vbr model, its one file with the tables of level ``quality - 1``."""
    from plic.importer import VBR

    if architecture in VBR:
        # one model per level (each update() rebuilds the hyper-latent's tables for that level's step)
        model = copy.deepcopy(_vbr_file_model(architecture, metric))
        model.update(force=True, scale=model.Gain[quality - 1].abs())
        return model.eval()
    model = _read_zoo_file(architecture, quality, metric)
    if model.gaussian_conditional._quantized_cdf.numel() == 0:  # files saved before update()
        model.update(force=True)
    return model.eval()


def _read_zoo_file(architecture: str, quality, metric: str):
    """The model in CompressAI's zoo file (from torch's hub cache), built as ``plic import`` builds it."""
    import compressai.models
    from compressai.zoo.pretrained import load_pretrained

    from plic.importer import IMPORTABLE, read_checkpoint, twin_of, zoo_file

    path = zoo_file(architecture, quality, metric)
    if not path.is_file():
        raise PlicError(f"no network access here: CompressAI's zoo file {path.name} is not in {path.parent}")
    return twin_of(getattr(compressai.models, IMPORTABLE[architecture][0]), load_pretrained(read_checkpoint(path)))


@functools.lru_cache(maxsize=2)
def _vbr_file_model(architecture: str, metric: str):
    """A vbr zoo file's model (all levels), read once for the eight levels' copies."""
    return _read_zoo_file(architecture, None, metric)


class CompressAICodec(ClassicalCodec):
    knob = "quality"
    sweep = [1, 2, 3, 4, 5, 6, 7, 8]
    lo, hi = 1, 8
    integer = True
    more_bits_when_higher = True

    def __init__(self, architecture: str, metric: str = "mse"):
        from plic.importer import IMPORTABLE, VBR

        if architecture not in IMPORTABLE:
            raise PlicError(f"compressai:{architecture} is not supported (supported: {', '.join(IMPORTABLE)})")
        self.architecture, self.metric = architecture, metric
        self.vbr = architecture in VBR
        self.name = f"compressai:{architecture}"
        self.label = f"CompressAI {architecture} (its own coder)"

    def unavailable(self) -> str | None:
        try:
            for q in self.sweep:
                _zoo_model(self.architecture, q, self.metric)
        except PlicError as exc:
            return str(exc)
        return None

    def encode(self, rgb: np.ndarray, setting: float) -> bytes:
        import torch
        import torch.nn.functional as F

        q = self._setting(setting)
        model = _zoo_model(self.architecture, q, self.metric)
        h, w = rgb.shape[:2]
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0
        x = F.pad(x, (0, (-w) % 64, 0, (-h) % 64), mode="constant", value=0)
        level = {"s": q - 1} if self.vbr else {}
        with torch.no_grad():
            out = model.compress(x, **level)
        head = json.dumps({"q": q, "h": h, "w": w, "shape": list(out["shape"])}).encode()
        strings = [s[0] for s in out["strings"]]
        return struct.pack(">H", len(head)) + head + b"".join(struct.pack(">I", len(s)) + s for s in strings)

    def decode(self, data: bytes) -> np.ndarray:
        import torch

        try:
            (n,) = struct.unpack(">H", data[:2])
            head = json.loads(data[2: 2 + n])
            pos, strings = 2 + n, []
            while pos < len(data):
                (k,) = struct.unpack(">I", data[pos: pos + 4])
                strings.append([data[pos + 4: pos + 4 + k]])
                pos += 4 + k
        except (struct.error, ValueError) as exc:
            raise BitstreamError(f"not a compressai benchmark file ({exc})") from None
        model = _zoo_model(self.architecture, int(head["q"]), self.metric)
        level = {"s": int(head["q"]) - 1} if self.vbr else {}
        with torch.no_grad():
            x = model.decompress(strings, head["shape"], **level)["x_hat"][0, :, : head["h"], : head["w"]]
        return (x.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)

    def version(self) -> str:
        import compressai

        return f"CompressAI {compressai.__version__} zoo {self.architecture} ({self.metric})"
