"""``plic decompress``: ``.plic`` files back to images."""

from __future__ import annotations

from pathlib import Path

import click

from plic.cli.common import batch_options, load_codec, model_options, plan_outputs, read_input, run_batch
from plic.errors import PlicError


@click.command("decompress")
@click.argument("input", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="output image (.png default), or folder for a folder input")
@model_options
@click.option("--reference", type=click.Path(path_type=Path, exists=True),
              help="original image (or folder) to report PSNR against")
@batch_options
@click.option("-f", "--force", is_flag=True, help="overwrite existing outputs")
@click.option("--quiet", is_flag=True, help="summary line only")
def command(input, output, model_path, device, exact, fast, reference, jobs, skip_existing, force, quiet):
    """Decompress a .plic file (or every .plic file in a folder).

    INPUT and -o may be - for standard input and output (PNG). A folder is
    decoded by --jobs worker processes.
    """
    pairs, folder = plan_outputs(input, output, [".plic"], ".png", force or skip_existing)
    options = dict(model_path=model_path, device=device, exact=exact, reference=reference,
                   root=input if folder else None)
    process = decompressor(**options)
    run_batch(pairs, folder, quiet, process, jobs=jobs, factory=(decompressor, options), skip_existing=skip_existing)


def decompressor(model_path, device, exact, reference, root):
    """``process(src, dst)``: decode one file with the weights its header names (loaded once per weights)."""
    from plic import bitstream
    from plic.codec import alpha_plane, psnr
    from plic.image_io import quantize_rgb, read_image, save_image, to_pil

    if model_path:
        load_codec(None, model_path, device, exact)  # an unusable weight file fails before any work
    codecs = {}

    def process(src: Path, dst: Path) -> dict:
        data = read_input(src)
        try:
            f = bitstream.parse(data)
        except PlicError as exc:
            if root is None:
                raise
            raise type(exc)(f"{src}: {exc}") from None
        rgb = _codec_for(f, src, codecs, model_path, device, exact).decode_file(f)
        save_image(to_pil(rgb, f.header.channels, f.header.bit_depth, alpha_plane(f)), dst)
        bpp = 8 * len(data) / (f.header.height * f.header.width)
        r = {"bpp": bpp, "msg": f"{src} -> {dst}: {f.header.width}x{f.header.height}, {bpp:.4f} bpp"}
        ref = _reference_for(src, reference, root)
        if ref is not None:
            orig = read_image(ref)
            if orig.rgb.shape != rgb.shape:
                raise PlicError(f"{ref}: size differs from the decoded image")
            r["psnr"] = psnr(quantize_rgb(rgb).cpu(), orig.rgb)
            r["msg"] += f", {r['psnr']:.2f} dB PSNR"
        return r

    return process


def _codec_for(f, src: Path, codecs: dict, model_path, device, exact):
    """The weights the file was made with: given, shipped (MSE or perceptual), or imported by plic import."""
    from plic.registry import MODELS
    from plic.zoo import find_imported, find_shipped

    name = f.header.model
    if not model_path and name not in MODELS:
        raise PlicError(f"{src}: made by model {name!r}, which this plic does not know")
    key = (name, f.header.fingerprint)
    if key not in codecs:
        shipped = imported = None
        if not model_path:
            shipped = find_shipped(name, f.header.fingerprint, device)
            imported = None if shipped else find_imported(name, f.header.fingerprint)
        # the shipped weights the header names, alone: a ladder's other rungs are not needed to decode
        codecs[key] = load_codec(None if imported else (shipped or name), model_path or imported, device, exact,
                                 ladder=False)
    return codecs[key]


def _reference_for(src: Path, reference, root):
    """The original to compare a decoded file with: the --reference file, or its namesake in a folder."""
    from plic.image_io import IMAGE_SUFFIXES

    if reference is None:
        return None
    if not reference.is_dir():
        return reference
    rel = src.relative_to(root) if root is not None else Path(src.name)
    return next((c for c in (reference / rel.with_suffix(s) for s in sorted(IMAGE_SUFFIXES)) if c.exists()), None)
