"""``plic compress``: images to ``.plic`` files, optionally optimised at encode time."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from plic.cli.common import batch_options, load_codec, model_options, plan_outputs, run_batch
from plic.files import IMAGE_SUFFIXES

_REFINE = ["none", "sga+", "snic", "snic-latent", "snic+sga+"]
_ROUNDING = ["ste", "noise", "atanh", "linear", "cosine", "ssl", "linear3", "cosine3", "ssl3"]
_METRICS = ["mse", "ms-ssim", "lpips", "lpips-alex", "dists"]
_PRECISIONS = ["fp32", "bf16"]


@click.command("compress")
@click.argument("input", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="output file, or folder for a folder input")
@click.option("-q", "--quality", type=click.FloatRange(1, 8), help="1 (smallest) .. 8 (best); fractions allowed [default: 4]")
@click.option("--lambda", "lmbda", type=float, help="rate-distortion trade-off (within the model's range)")
@click.option("--bpp", type=float, help="target bits per pixel: the lambda is searched per image (real file sizes)")
@click.option("--target-psnr", type=float, help="target PSNR (dB): the lambda is searched per image (real decodes)")
@click.option("-m", "--model", help="registered model name [default: hyperprior]")
@click.option("--perceptual", is_flag=True,
              help="the model's perceptual variant: sharper textures for a lower PSNR (any plic decodes it); "
                   "with --bpp, --refine snic-latent --precision bf16 lowers LPIPS and DISTS below HEVC's and "
                   "AVIF's on Kodak, for minutes of encoding per image")
@model_options
@click.option("--refine", type=click.Choice(_REFINE), default="none", show_default=True,
              help="encode-time optimisation: SGA+ latents, SNIC substitute image or latent, or both")
@click.option("--steps", type=click.IntRange(min=0), default=500, show_default=True, help="optimisation steps")
@click.option("--rounding", type=click.Choice(_ROUNDING),
              help="quantization surrogate [default: ssl for latents, noise for images]")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Adam step [default: 5e-3 latents, 3e-3 images]")
@click.option("--optimize-for", "metric", type=click.Choice(_METRICS),
              help="distortion the optimisation minimises, measured against the original [default: mse; "
                   "lpips with --perceptual, whose model an MSE objective would pull back towards blur, "
                   "except for a --target-psnr]")
@click.option("--refine-lambda", type=click.FloatRange(min=0, min_open=True),
              help="lambda of the optimisation objective [default: the coding lambda]; another value "
                   "moves along the R-D curve (SGA+'s semi-multi-rate)")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the stochastic rounding")
@click.option("--precision", type=click.Choice(_PRECISIONS), default="fp32", show_default=True,
              help="arithmetic of the perceptual loss network (lpips, lpips-alex, dists): bf16 halves its "
                   "forward and backward on CPUs with AVX512-BF16 or AMX, is slower on others")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="decode each file after writing it and report PSNR")
@batch_options
@click.option("-f", "--force", is_flag=True, help="overwrite existing outputs")
@click.option("--quiet", is_flag=True, help="summary line only")
def command(input, output, quality, lmbda, bpp, target_psnr, model, perceptual, model_path, device, exact, fast, refine, steps,
            rounding, lr, metric, refine_lambda, seed, precision, verify, jobs, skip_existing, force, quiet):
    """Compress an image (or every image in a folder) to .plic.

    INPUT and -o may be - for standard input and output. A folder is coded
    by --jobs worker processes.

    With --refine, each image is optimised for the frozen model before it is
    coded (any plic decoder decodes the result): sga+ refines the latents
    (Perugachi-Diaz et al.), snic optimises a substitute input image (Wang et
    al.), snic+sga+ does both. --bpp and --target-psnr pick the lambda by
    search; with a snic refinement they also become the optimisation's
    target, and a fixed-rate model reaches them through snic alone.
    """
    from plic.encode import Rate
    from plic.errors import PlicError

    Rate(quality, lmbda, bpp, target_psnr)  # conflicting or out-of-range settings: before any work
    if metric is None:  # a PSNR target is an MSE objective whatever the model
        metric = "lpips" if perceptual and refine != "none" and target_psnr is None else "mse"
    if perceptual:
        from plic.zoo import DEFAULT_MODEL, perceptual_variant

        if model_path:
            raise PlicError("--perceptual picks shipped weights; a weight file (--model-path) is used as it is")
        model = perceptual_variant(model or DEFAULT_MODEL)
    pairs, folder = plan_outputs(input, output, IMAGE_SUFFIXES, ".plic", force or skip_existing)
    options = dict(quality=quality, lmbda=lmbda, bpp=bpp, target_psnr=target_psnr, model=model, model_path=model_path,
                   device=device, exact=exact, refine=refine, steps=steps, rounding=rounding, lr=lr, metric=metric,
                   refine_lambda=refine_lambda, seed=seed, precision=precision, verify=verify, quiet=quiet or folder)
    # built here too when workers code a folder: a bad setting fails before any worker starts
    process = compressor(**options)
    run_batch(pairs, folder, quiet, process, jobs=jobs, factory=(compressor, options), skip_existing=skip_existing)


def compressor(quality, lmbda, bpp, target_psnr, model, model_path, device, exact, refine, steps, rounding, lr,
               metric, refine_lambda, seed, precision, verify, quiet):
    """``process(src, dst)`` for these settings: the model is loaded and the settings checked once."""
    from plic import bitstream
    from plic.codec import psnr
    from plic.encode import Encoder, OutOfReach, Rate, Refinement
    from plic.errors import PlicError
    from plic.files import write_output
    from plic.image_io import quantize_rgb, read_image

    codec = load_codec(model, model_path, device, exact)
    encoder = Encoder(codec, Rate(quality, lmbda, bpp, target_psnr),
                      Refinement(refine, steps, rounding, lr, metric, refine_lambda, seed, precision))

    def process(src: Path, dst: Path) -> dict:
        img = read_image(src)
        try:
            enc = _encode(encoder, img, quiet)
        except OutOfReach as exc:
            raise PlicError(f"{src}: {exc}") from None
        f = bitstream.parse(enc.result.data)
        write_output(dst, enc.result.data)
        r = {"bpp": enc.result.bpp, "msg": f"{src} -> {dst}: {enc.result.bpp:.4f} bpp"}
        coder = enc.codec or codec  # a target may have picked another imported quality
        rec = enc.decoded  # decoded already where a PSNR target was checked
        if rec is None and (verify or enc.before is not None):
            rec = quantize_rgb(coder.decode_file(f)).cpu()
        if verify:
            r["psnr"] = psnr(rec, img.rgb)
            r["msg"] += f", {r['psnr']:.2f} dB PSNR"
        used = coder.label or (model if coder is codec else None) or coder.name
        r["msg"] += f", {enc.result.seconds:.2f} s encode ({used}, lambda {f.header.lmbda:.5g})"
        if enc.before is not None:
            r["msg"] += "\n  " + _comparison(coder, img, enc.before, enc.result, rec, encoder.refine.metric)
        return r

    return process


def _encode(encoder, img, quiet):
    """The encoder's result, with a progress bar on standard error once a refinement runs."""
    from tqdm import tqdm

    from plic.refine import PLANS

    plan, bar = encoder.refine.plan, None

    def progress(space, i, stats):
        nonlocal bar
        if bar is None:  # not before: a target out of reach fails in the search, with no bar left behind
            bar = tqdm(total=encoder.refine.steps * len(PLANS[plan]), disable=quiet, unit="step",
                       dynamic_ncols=True, file=sys.stderr, desc=plan, leave=False)
        bar.update(1)
        bar.set_postfix(stage=space, loss=f"{stats['loss']:.4f}", bpp=f"{stats['bpp']:.4f}")

    try:
        return encoder.encode(img, progress)
    finally:
        if bar is not None:
            bar.close()


def _comparison(codec, img, before, after, after_rec, metric) -> str:
    """One line: bpp and quality before and after the optimisation, and its time.

    ``after_rec`` is the refined file's decoded image, already at hand.
    """
    import torch

    from plic import bitstream
    from plic.encode import quality_line
    from plic.image_io import quantize_rgb
    from plic.losses.distortion import distortion_fn

    fn = distortion_fn(metric, "cpu")
    parts = []
    before_rec = quantize_rgb(codec.decode_file(bitstream.parse(before.data))).cpu()
    for enc, rec in ((before, before_rec), (after, after_rec)):
        with torch.no_grad():
            d = float(fn(rec, img.rgb.float()).mean())
        parts.append(f"{enc.bpp:.4f} bpp, {quality_line(d, metric)}")
    return f"before: {parts[0]}; after: {parts[1]} ({after.seconds:.1f} s)"
