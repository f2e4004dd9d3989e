"""``plic decompress``: ``.plic`` files back to images."""

from __future__ import annotations

import time
from pathlib import Path

import click

from plic.cli.common import load_codec, model_options, plan_outputs
from plic.errors import PlicError


def _read_plic(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PlicError(f"{path}: cannot read ({exc.strerror})") from None


@click.command("decompress")
@click.argument("input", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="output image (.png default), or folder for a folder input")
@model_options
@click.option("--reference", type=click.Path(path_type=Path, exists=True),
              help="original image (or folder) to report PSNR against")
@click.option("-f", "--force", is_flag=True, help="overwrite existing outputs")
@click.option("--quiet", is_flag=True, help="summary line only")
def command(input, output, model_path, device, reference, force, quiet):
    """Decompress a .plic file (or every .plic file in a folder)."""
    from tqdm import tqdm

    from plic import bitstream
    from plic.codec import alpha_plane, psnr
    from plic.image_io import IMAGE_SUFFIXES, quantize_rgb, read_image, save_image, to_pil

    pairs, folder = plan_outputs(input, output, [".plic"], ".png", force)
    codecs = {}
    t0 = time.perf_counter()
    bpps, psnrs = [], []
    bar = tqdm(pairs, disable=not folder or quiet, unit="img", dynamic_ncols=True)
    for src, dst in bar:
        data = _read_plic(src)
        f = bitstream.parse(data)
        name = f.header.model
        if name not in codecs:
            codecs[name] = load_codec(None if model_path else name, model_path, device)
        codec = codecs[name]
        rgb = codec.decode_file(f)
        pil = to_pil(rgb, f.header.channels, f.header.bit_depth, alpha_plane(f))
        dst.parent.mkdir(parents=True, exist_ok=True)
        save_image(pil, dst)
        bpp = 8 * len(data) / (f.header.height * f.header.width)
        bpps.append(bpp)
        msg = f"{src} -> {dst}: {f.header.width}x{f.header.height}, {bpp:.4f} bpp"
        ref = None
        if reference is not None:
            if reference.is_dir():
                rel = src.relative_to(input) if folder else Path(src.name)
                cands = [reference / rel.with_suffix(s) for s in sorted(IMAGE_SUFFIXES)]
                ref = next((c for c in cands if c.exists()), None)
            else:
                ref = reference
        if ref is not None:
            orig = read_image(ref)
            if orig.rgb.shape != rgb.shape:
                raise PlicError(f"{ref}: size differs from the decoded image")
            psnrs.append(psnr(quantize_rgb(rgb).cpu(), orig.rgb))
            msg += f", {psnrs[-1]:.2f} dB PSNR"
        if folder:
            bar.set_postfix(bpp=f"{sum(bpps) / len(bpps):.3f}")
        elif not quiet:
            click.echo(msg)
    elapsed = time.perf_counter() - t0
    summary = f"{len(bpps)} image(s), mean {sum(bpps) / len(bpps):.4f} bpp"
    if psnrs:
        summary += f", mean PSNR {sum(psnrs) / len(psnrs):.2f} dB"
    click.echo(f"{summary}, {elapsed:.1f} s")
