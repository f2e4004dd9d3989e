"""``plic eval``: R-D benchmark of plic's models and classical codecs on an image folder."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import click

DEFAULT_CODECS = "plic:hyperprior,jpeg,jpeg444,webp,avif,jxl,jpeg2000,hevc"
DEFAULT_METRICS = "psnr,psnr-y,ms-ssim,lpips-alex,lpips-vgg,dists,vmaf,fd-vgg16"


def _floats(text: str):
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise click.BadParameter(f"not a comma-separated list of numbers: {text!r}") from None


@click.command("eval")
@click.option("--data", required=True, type=click.Path(path_type=Path), help="image folder (or one image)")
@click.option("--codecs", default=DEFAULT_CODECS, show_default=True,
              help="comma-separated: plic:<model or weights file>, plic:<model>+<refinement>[:<metric>[:<steps>[:<precision>]]] "
                   "(encode-time refinement: plan sga+, snic, snic-latent or snic+sga+; metric mse, ms-ssim, lpips (VGG), "
                   "lpips-alex or dists; precision fp32 or bf16; e.g. plic:hyperprior-perceptual+snic-latent:lpips:60:bf16), "
                   "compressai:<zoo architecture> (from the hub cache), jpeg, jpeg444, webp, avif, jxl, jpeg2000, hevc")
@click.option("--metrics", default=DEFAULT_METRICS, show_default=True,
              help="comma-separated: psnr, psnr-y, ssim, ms-ssim, lpips-alex, lpips-vgg, dists, vmaf, fd-vgg16, fid, kid")
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="results folder (reruns reuse it)")
@click.option("--targets", default="", help="also reach these bpp per image by bisection (a refinement aimed at a "
                   "target: one lambda search, then one optimisation), e.g. 0.075,0.15,0.3")
@click.option("--sweep/--no-sweep", default=True, show_default=True, help="code each codec's quality sweep")
@click.option("--anchor", default="hevc", show_default=True, help="BD-rate anchor of the summary")
@click.option("--limit", type=click.IntRange(min=1), help="first N images only")
@click.option("--points", type=click.IntRange(min=2), help="N settings spread over each codec's sweep [default: all]")
@click.option("--device", default="cpu", show_default=True, help="device of plic's models and the metric networks")
@click.option("--html", is_flag=True,
              help="also write OUT/html/<image>_bpp<T>.html per image and target: every codec's picture at that "
                   "rate with its numbers, and a slide/flip viewer at full resolution (self-contained)")
@click.option("--quiet", is_flag=True, help="no progress bar")
def command(data, codecs, metrics, out, targets, sweep, anchor, limit, points, device, html, quiet):
    """Code every image with every codec and setting; score, summarise and plot.

    Writes OUT/points (per-image JSON), OUT/files (the coded files),
    OUT/summary.md, OUT/summary.json and OUT/plots. Interrupt at will: a rerun
    skips what is done.
    """
    from tqdm import tqdm

    from plic.cli.common import require_device
    from plic.errors import PlicError

    require_device(device)
    if html and not _floats(targets):
        raise PlicError("--html pages compare codecs at equal rates: give --targets, e.g. --targets 0.15")
    from plic.eval.report import write_report
    from plic.eval.runner import Benchmark

    bench = Benchmark(data=data, codecs=[c.strip() for c in codecs.split(",") if c.strip()],
                      metrics=[m.strip() for m in metrics.split(",") if m.strip()], out=out,
                      targets=_floats(targets), sweep=sweep, limit=limit, points=points, device=device)
    for name, reason in bench.skipped.items():
        click.echo(f"plic: skipping {name}: {reason}", err=True)
    tasks = bench.tasks()
    t0 = time.time()
    with tqdm(total=len(tasks), disable=quiet, unit="pt", dynamic_ncols=True) as bar:
        def progress(t):
            bar.set_postfix_str(f"{t.codec.name} {t.key} {t.image.name}", refresh=False)
            bar.update(1)
        computed = bench.run(progress)
    command_line = "plic eval " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    summary = write_report(out, anchor, command_line)
    n_codecs = len(summary["curves"])
    click.echo(f"{len(bench.images)} images, {n_codecs} codecs, {len(tasks)} points ({computed} computed, "
               f"{len(tasks) - computed} cached) in {time.time() - t0:.0f} s -> {out / 'summary.md'}")
    if html:
        _pages(out, bench, _floats(targets), device)


def _pages(out, bench, targets, device) -> None:
    from plic.eval.html import write_pages

    pages = write_pages(out, images=[p.name for p in bench.images], codecs=[c.name for c in bench.codec_objs],
                        settings=[f"bpp{t:g}" for t in targets], device=device)
    click.echo(f"{len(pages)} comparison page(s) -> {out / 'html'}")
