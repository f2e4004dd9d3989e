"""``plic plot``: R-D curves of a ``plic eval`` folder as PNG."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("plot")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--published/--no-published", default=True, show_default=True,
              help="draw CompressAI's published Kodak PSNR/MS-SSIM curves, dashed and labelled")
def command(folder, published):
    """Draw metric-vs-bpp plots of FOLDER into FOLDER/plots."""
    from plic.eval.report import collect, plot

    for path in plot(collect(folder), folder / "plots", published):
        click.echo(str(path))
