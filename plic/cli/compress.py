"""``plic compress``: images to ``.plic`` files."""

from __future__ import annotations

import time
from pathlib import Path

import click

from plic.cli.common import load_codec, model_options, plan_outputs
from plic.image_io import IMAGE_SUFFIXES


@click.command("compress")
@click.argument("input", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="output file, or folder for a folder input")
@click.option("-q", "--quality", type=click.FloatRange(1, 8), help="1 (smallest) .. 8 (best); fractions allowed [default: 4]")
@click.option("--lambda", "lmbda", type=float, help="rate-distortion trade-off (within the model's range)")
@click.option("-m", "--model", help="registered model name [default: hyperprior]")
@model_options
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="decode each file after writing it and report PSNR")
@click.option("-f", "--force", is_flag=True, help="overwrite existing outputs")
@click.option("--quiet", is_flag=True, help="summary line only")
def command(input, output, quality, lmbda, model, model_path, device, verify, force, quiet):
    """Compress an image (or every image in a folder) to .plic."""
    from tqdm import tqdm

    from plic import bitstream
    from plic.codec import psnr
    from plic.image_io import atomic_write_bytes, quantize_rgb, read_image

    pairs, folder = plan_outputs(input, output, IMAGE_SUFFIXES, ".plic", force)
    codec = load_codec(model, model_path, device)
    lam = codec.resolve_lambda(quality, lmbda)
    t0 = time.perf_counter()
    bpps, psnrs = [], []
    bar = tqdm(pairs, disable=not folder or quiet, unit="img", dynamic_ncols=True)
    for src, dst in bar:
        img = read_image(src)
        enc = codec.encode(img, lmbda=lam)
        dst.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(dst, enc.data)
        bpps.append(enc.bpp)
        msg = f"{src} -> {dst}: {enc.bpp:.4f} bpp"
        if verify:
            rec = codec.decode_file(bitstream.parse(enc.data))
            psnrs.append(psnr(quantize_rgb(rec).cpu(), img.rgb))
            msg += f", {psnrs[-1]:.2f} dB PSNR"
        if folder:
            bar.set_postfix(bpp=f"{sum(bpps) / len(bpps):.3f}")
        elif not quiet:
            click.echo(f"{msg}, {enc.seconds:.2f} s encode")
    elapsed = time.perf_counter() - t0
    summary = f"{len(bpps)} image(s), mean {sum(bpps) / len(bpps):.4f} bpp"
    if psnrs:
        summary += f", mean PSNR {sum(psnrs) / len(psnrs):.2f} dB"
    click.echo(f"{summary}, {elapsed:.1f} s ({codec.name}, lambda {lam:.5g})")
