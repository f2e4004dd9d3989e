"""``plic compress``: images to ``.plic`` files."""

from __future__ import annotations

from pathlib import Path

import click

from plic.cli.common import load_codec, model_options, plan_outputs, run_batch
from plic.image_io import IMAGE_SUFFIXES


@click.command("compress")
@click.argument("input", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="output file, or folder for a folder input")
@click.option("-q", "--quality", type=click.FloatRange(1, 8), help="1 (smallest) .. 8 (best); fractions allowed [default: 4]")
@click.option("--lambda", "lmbda", type=float, help="rate-distortion trade-off (within the model's range)")
@click.option("--bpp", type=float, help="target bits per pixel: the lambda is searched per image (real file sizes)")
@click.option("-m", "--model", help="registered model name [default: hyperprior]")
@model_options
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="decode each file after writing it and report PSNR")
@click.option("-f", "--force", is_flag=True, help="overwrite existing outputs")
@click.option("--quiet", is_flag=True, help="summary line only")
def command(input, output, quality, lmbda, bpp, model, model_path, device, fast, verify, force, quiet):
    """Compress an image (or every image in a folder) to .plic."""
    from plic import bitstream
    from plic.codec import psnr
    from plic.errors import PlicError
    from plic.image_io import atomic_write_bytes, quantize_rgb, read_image

    if bpp is not None and (quality is not None or lmbda is not None):
        raise PlicError("give one of --quality, --lambda or --bpp")
    if bpp is not None and not 0 < bpp < 64:
        raise PlicError(f"--bpp must be between 0 and 64, not {bpp:g}")
    pairs, folder = plan_outputs(input, output, IMAGE_SUFFIXES, ".plic", force)
    codec = load_codec(model, model_path, device, fast)
    lam = codec.resolve_lambda(quality, lmbda) if bpp is None else None

    def process(src: Path, dst: Path) -> dict:
        img = read_image(src)
        enc = codec.encode(img, lmbda=lam) if bpp is None else codec.encode_to_bpp(img, bpp)
        f = bitstream.parse(enc.data)
        dst.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(dst, enc.data)
        r = {"bpp": enc.bpp, "msg": f"{src} -> {dst}: {enc.bpp:.4f} bpp"}
        if verify:
            rec = codec.decode_file(f)
            r["psnr"] = psnr(quantize_rgb(rec).cpu(), img.rgb)
            r["msg"] += f", {r['psnr']:.2f} dB PSNR"
        r["msg"] += f", {enc.seconds:.2f} s encode ({codec.name}, lambda {f.header.lmbda:.5g})"
        return r

    run_batch(pairs, folder, quiet, process)
