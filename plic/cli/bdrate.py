"""``plic bdrate``: Bjontegaard delta rates of a ``plic eval`` folder."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("bdrate")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--anchor", default="hevc", show_default=True, help="codec the others are measured against")
@click.option("--metrics", default="", help="comma-separated metrics [default: all in the folder]")
def command(folder, anchor, metrics):
    """BD-rate (%, negative = fewer bits at equal quality) of every codec against ANCHOR."""
    from plic.eval.report import bd_rates, collect, metrics_of
    from plic.metrics import get_metric

    summary = collect(folder)
    names = [get_metric(m).name for m in metrics.split(",") if m.strip()] or metrics_of(summary)
    table = bd_rates(summary, anchor, names)
    width = max(len(c) for c in table)
    click.echo(f"{'codec':<{width}}  " + "  ".join(f"{m:>10}" for m in names))
    for codec, row in table.items():
        click.echo(f"{codec:<{width}}  " + "  ".join(f"{'-':>10}" if row[m] is None else f"{row[m]:>+10.2f}" for m in names))
