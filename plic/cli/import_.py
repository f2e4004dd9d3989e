"""``plic import``: a CompressAI checkpoint as a plic weight file."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("import")
@click.argument("source", metavar="compressai:ARCH")
@click.option("-q", "--quality", type=click.IntRange(1, 8),
              help="CompressAI zoo quality 1..8 (not for the variable-rate *-vbr models: they hold all levels)")
@click.option("--metric", type=click.Choice(["mse", "ms-ssim"]), default="mse", show_default=True)
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path),
              help="a CompressAI checkpoint (state dict, or a training checkpoint holding one) instead of the zoo file")
@click.option("--lambda", "lmbda", type=click.FloatRange(min=0, min_open=True),
              help="the lambda it was trained for [default: the zoo's lambda of --quality]")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("-f", "--force", is_flag=True, help="overwrite an existing output")
def command(source, quality, metric, weights, lmbda, output, force):
    """Turn a CompressAI model into a plic weight file (safetensors, frozen CDF tables, provenance).

    The zoo file is read from torch's hub cache (no network is used); --weights
    takes any checkpoint of that architecture. The file then works with every
    plic command: compress --model-path, SGA+/SNIC (not on the autoregressive
    models), eval plic:FILE, train --init.
    Decompress finds imported weights by their fingerprint.
    """
    from plic.errors import PlicError
    from plic.importer import import_compressai

    if output.exists() and not force:
        raise PlicError(f"{output}: exists (use --force to overwrite)")
    r = import_compressai(source, quality, output, weights=weights, metric=metric, lmbda=lmbda)
    p = r["provenance"]
    lo, hi = r["lambda_range"]
    rate = f"fixed-rate at lambda {r['lambda']:g}" if r["lambda"] is not None else f"variable-rate, lambda {lo:g}..{hi:g}"
    click.echo(f"{p['file']} ({p['class']}, N={r['N']}, M={r['M']}) -> {output}: plic {r['model']}, "
               f"{rate}, weights {r['fingerprint']}")
