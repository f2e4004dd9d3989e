"""``plic bench``: encode/decode time and throughput of a plic model."""

from __future__ import annotations

import json
from pathlib import Path

import click

from plic.cli.common import load_codec


@click.command("bench")
@click.argument("images", type=click.Path(path_type=Path))
@click.option("-m", "--model", help="registered model name [default: hyperprior]")
@click.option("--model-path", type=click.Path(dir_okay=False), help="weights file instead of a shipped model")
@click.option("-q", "--quality", type=click.FloatRange(1, 8), default=4.0, show_default=True)
@click.option("--devices", default="cpu,cuda", show_default=True, help="devices to time; cuda is skipped where absent")
@click.option("--fast", is_flag=True, help="float32 transforms instead of the exact float64 path")
@click.option("--warmup", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), help="first N images of a folder")
@click.option("--json", "json_out", type=click.Path(path_type=Path), help="also write the per-image results here")
def command(images, model, model_path, quality, devices, fast, warmup, repeat, limit, json_out):
    """Median encode/decode seconds, megapixels per second and entropy-coder speed per image."""
    import statistics

    import torch

    from plic.eval.runner import list_images
    from plic.eval.timing import time_codec
    from plic.image_io import atomic_write_bytes, read_image

    paths = list_images(images)[:limit]
    rows = []
    for device in [d.strip() for d in devices.split(",") if d.strip()]:
        if device.startswith("cuda") and not torch.cuda.is_available():
            click.echo(f"{device}: not available here, skipped")
            continue
        codec = load_codec(model, model_path, device, fast)
        for p in paths:
            r = time_codec(codec, read_image(p), quality, warmup, repeat)
            r["image"] = p.name
            rows.append(r)
            click.echo(f"{device} {p.name}: {r['megapixels']:.2f} MP {r['bpp']:.3f} bpp  encode {r['encode_s']:.3f} s "
                       f"({r['encode_mp_s']:.2f} MP/s)  decode {r['decode_s']:.3f} s ({r['decode_mp_s']:.2f} MP/s)  "
                       f"entropy coder {r['entropy_encode_s'] * 1e3:.1f}/{r['entropy_decode_s'] * 1e3:.1f} ms enc/dec")
        mine = [r for r in rows if r["device"].startswith(device)]
        if mine:
            click.echo(f"{device} median over {len(mine)} images: encode {statistics.median(r['encode_s'] for r in mine):.3f} s, "
                       f"decode {statistics.median(r['decode_s'] for r in mine):.3f} s, "
                       f"{statistics.median(r['encode_mp_s'] for r in mine):.2f}/"
                       f"{statistics.median(r['decode_mp_s'] for r in mine):.2f} MP/s enc/dec")
    if json_out:
        atomic_write_bytes(json_out, (json.dumps(rows, indent=1) + "\n").encode())
