"""``plic curves``: training curves of ``plic train`` run folders as PNG."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("curves")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="PNG file [default: RUN/curves.png]")
@click.option("--window", type=click.IntRange(min=1), default=200, show_default=True,
              help="steps averaged into each point of the training curves")
def command(runs, output, window):
    """Plot loss, bpp and PSNR over steps (train.csv) and the Kodak evaluations (eval.csv).

    Several RUNS are drawn one after another: the stages of one model.
    """
    from plic.train.curves import plot_runs

    click.echo(str(plot_runs(runs, output or runs[-1] / "curves.png", window)))
