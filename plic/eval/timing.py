"""Encode/decode speed of a plic model: whole codec, and the entropy coder alone.

Each measurement runs ``warmup`` times unmeasured, then ``repeat`` times; the
median is reported. The entropy-coding time is that of the latent codec's
``compress``/``decompress`` (rANS with the hyperprior's parameter path) on the
latents of the same image, so transform time is the difference.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, Dict

import torch

from plic import bitstream
from plic.codec import Codec, _as_compressai_shapes, _float64_default
from plic.image_io import PlanarImage


def _median_seconds(fn: Callable[[], object], warmup: int, repeat: int, sync: Callable[[], None]) -> float:
    for _ in range(warmup):
        fn()
        sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_codec(codec: Codec, img: PlanarImage, quality: float = 4.0, warmup: int = 1, repeat: int = 3) -> Dict:
    sync = torch.cuda.synchronize if codec.device.type == "cuda" else (lambda: None)
    lam = codec.resolve_lambda(quality)
    codec = codec.pick(lam)  # the rung of a ladder that codes at this quality
    data = codec.encode(img, lmbda=lam).data
    f = bitstream.parse(data)
    enc = _median_seconds(lambda: codec.encode(img, lmbda=lam), warmup, repeat, sync)
    dec = _median_seconds(lambda: codec.decode_file(bitstream.parse(data)), warmup, repeat, sync)
    # entropy coder alone, on the latents this image produces and the payloads it wrote
    y = codec.latents(img, lam)

    def entropy_encode():
        with _float64_default(), torch.no_grad():
            return codec.entropy.compress(y)

    payloads = codec._padded_payloads(f)
    shapes = _as_compressai_shapes(f.header.shapes)

    def entropy_decode():
        with _float64_default(), torch.no_grad():
            return codec.entropy.decompress(payloads, shapes)

    ent_enc = _median_seconds(entropy_encode, warmup, repeat, lambda: None)
    ent_dec = _median_seconds(entropy_decode, warmup, repeat, lambda: None)
    mp = img.height * img.width / 1e6
    # which weights ran: a ladder's rung is named, so that two timings of one name can be told apart
    weights = f"{codec.label or codec.name} {codec.model.fingerprint.hex()[:16]}"
    return {"device": str(codec.device), "exact": codec.exact, "weights": weights, "megapixels": mp, "bytes": len(data),
            "bpp": 8 * len(data) / (img.height * img.width), "encode_s": enc, "decode_s": dec,
            "encode_mp_s": mp / enc, "decode_mp_s": mp / dec, "entropy_encode_s": ent_enc, "entropy_decode_s": ent_dec,
            "entropy_mbit_s": 8 * len(data) / 1e6 / ((ent_enc + ent_dec) / 2)}


def time_compressai_twin(codec: Codec, img: PlanarImage, quality: float = 4.0, warmup: int = 1,
                         repeat: int = 3) -> Dict:
    """CompressAI's own ``compress()``/``decompress()`` of the same weights at the same lambda.

    The model is :func:`plic.models.compressai_interop.to_compressai` of the
    codec's (a plain ``compressai.models.MeanScaleHyperprior``, float32 on the
    codec's device, the default contiguous layout); its input is padded to a
    multiple of 64 as CompressAI's example code does, and its strings are the
    payloads of plic's file, without plic's header.
    """
    import torch.nn.functional as F

    from plic.models.compressai_interop import to_compressai

    sync = torch.cuda.synchronize if codec.device.type == "cuda" else (lambda: None)
    lam = codec.resolve_lambda(quality)
    codec = codec.pick(lam)
    twin = to_compressai(codec.model, lam).to(codec.device)
    x = img.rgb.to(codec.device)
    h, w = x.shape[-2:]
    ph, pw = (-h) % 64, (-w) % 64
    x = F.pad(x, (0, pw, 0, ph), mode="replicate") if (ph or pw) else x
    with torch.no_grad():
        out = twin.compress(x)
        enc = _median_seconds(lambda: twin.compress(x), warmup, repeat, sync)
        dec = _median_seconds(lambda: twin.decompress(out["strings"], out["shape"])["x_hat"][..., :h, :w].clamp(0, 1),
                              warmup, repeat, sync)
    nbytes = sum(len(s[0]) for s in out["strings"])
    mp = h * w / 1e6
    return {"device": str(codec.device), "megapixels": mp, "bytes": nbytes, "bpp": 8 * nbytes / (h * w),
            "encode_s": enc, "decode_s": dec, "encode_mp_s": mp / enc, "decode_mp_s": mp / dec}


def time_classical(codec, rgb, target_bpp: float, warmup: int = 1, repeat: int = 3) -> Dict:
    """A classical codec of ``plic eval`` at the setting whose file is nearest ``target_bpp`` (found untimed)."""
    from plic.eval.codecs import encode_at_bpp

    setting, data = encode_at_bpp(codec, rgb, target_bpp, tol=0.05, max_iter=10)
    enc = _median_seconds(lambda: codec.encode(rgb, setting), warmup, repeat, lambda: None)
    dec = _median_seconds(lambda: codec.decode(data), warmup, repeat, lambda: None)
    h, w = rgb.shape[:2]
    mp = h * w / 1e6
    return {"megapixels": mp, "bytes": len(data), "bpp": 8 * len(data) / (h * w), "setting": float(setting),
            "encode_s": enc, "decode_s": dec, "encode_mp_s": mp / enc, "decode_mp_s": mp / dec}

