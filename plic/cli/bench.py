"""``plic bench``: encode/decode time of a plic model, next to CompressAI's and classical codecs'."""

from __future__ import annotations

import json
from pathlib import Path

import click

from plic.cli.common import load_codec

#: what --compare accepts besides the classical codecs of plic eval
TWIN = "compressai"


@click.command("bench")
@click.argument("images", type=click.Path(path_type=Path))
@click.option("-m", "--model", help="registered model name [default: hyperprior]")
@click.option("--model-path", type=click.Path(dir_okay=False), help="weights file instead of a shipped model")
@click.option("-q", "--quality", type=click.FloatRange(1, 8), default=4.0, show_default=True)
@click.option("--devices", default="cpu,cuda", show_default=True, help="devices to time; cuda is skipped where absent")
@click.option("--compare", default="", metavar="LIST",
              help="also time, on the same image: compressai (CompressAI's own compress()/decompress() of the same "
                   "weights, as MeanScaleHyperprior), and classical codecs of plic eval at plic's bpp "
                   "(webp, avif, hevc, jxl, jpeg...); e.g. --compare compressai,webp,avif,hevc,jxl")
@click.option("--warmup", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), help="first N images of a folder")
@click.option("--json", "json_out", type=click.Path(path_type=Path), help="also write the per-image results here")
@click.option("--fast", is_flag=True, hidden=True)  # the default decode is the float32 one now
def command(images, model, model_path, quality, devices, compare, warmup, repeat, limit, json_out, fast):
    """Median encode/decode seconds of plic's default (float32) and --exact (float64) coders.

    With --compare, the same image through CompressAI's own coder of the
    same architecture and weights, and through classical codecs at the same
    bpp; each time is also given as a ratio to CompressAI's.
    """
    import torch

    from plic.eval.runner import list_images
    from plic.files import atomic_write_bytes
    from plic.image_io import read_image

    others = [c.strip() for c in compare.split(",") if c.strip()]
    classical = _classical_codecs(others)
    paths = list_images(images)[:limit]
    rows = []
    for device in [d.strip() for d in devices.split(",") if d.strip()]:
        if device.startswith("cuda") and not torch.cuda.is_available():
            click.echo(f"{device}: not available here, skipped", err=True)
            continue
        coders = {"plic": load_codec(model, model_path, device, exact=False),
                  "plic --exact": load_codec(model, model_path, device, exact=True)}
        for p in paths:
            found = _time_image(read_image(p), coders, TWIN in others, classical, quality, warmup, repeat)
            click.echo(f"{device} {p.name} ({found[0]['megapixels']:.2f} MP):")
            for r in found:
                r["image"] = p.name
                click.echo(_line(r))
            rows += found
    if json_out:
        atomic_write_bytes(json_out, (json.dumps(rows, indent=1) + "\n").encode())


def _classical_codecs(names):
    """The classical codecs named in --compare, each checked to be usable here."""
    from plic.errors import PlicError
    from plic.eval.codecs import classical_codec

    found = []
    for name in names:
        if name == TWIN:
            continue
        codec = classical_codec(name)
        reason = codec.unavailable()
        if reason:
            raise PlicError(f"--compare {name}: {reason}")
        found.append(codec)
    return found


def _time_image(img, coders, with_twin, classical, quality, warmup, repeat):
    """One row per coder for one image; with CompressAI's twin, every time is also its ratio to the twin's."""
    import numpy as np

    from plic.errors import PlicError
    from plic.eval.timing import time_classical, time_codec, time_compressai_twin

    found = [{"coder": label, **time_codec(codec, img, quality, warmup, repeat)} for label, codec in coders.items()]
    if with_twin:
        try:
            found.append({"coder": "compressai", **time_compressai_twin(coders["plic"], img, quality, warmup, repeat)})
        except ValueError as exc:
            raise PlicError(f"--compare compressai: {exc}") from None
    rgb = (img.rgb[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    for codec in classical:
        found.append({"coder": codec.name, "device": "cpu", **time_classical(codec, rgb, found[0]["bpp"], warmup, repeat)})
    twin = next((r for r in found if r["coder"] == "compressai"), None)
    if twin is not None:
        for r in found:
            r["encode_vs_compressai"] = r["encode_s"] / twin["encode_s"]
            r["decode_vs_compressai"] = r["decode_s"] / twin["decode_s"]
    return found


def _line(r) -> str:
    ratio = (f"  x{r['encode_vs_compressai']:.2f} / x{r['decode_vs_compressai']:.2f} of CompressAI's"
             if "encode_vs_compressai" in r else "")
    weights = f"  ({r['weights']})" if "weights" in r else ""
    return (f"  {r['coder']:<14} {r['bpp']:.3f} bpp  encode {r['encode_s']:.3f} s  decode {r['decode_s']:.3f} s"
            f"{ratio}{weights}")
