"""``plic info``: what a ``.plic`` file holds, without decoding it."""

from __future__ import annotations

import json
from pathlib import Path

import click

from plic.errors import PlicError


@click.command("info")
@click.argument("input", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def command(input, as_json):
    """Show the header of a .plic file and check its integrity."""
    from plic import bitstream

    if not input.is_file():
        raise PlicError(f"{input}: no such file")
    try:
        data = input.read_bytes()
    except OSError as exc:
        raise PlicError(f"{input}: cannot read ({exc.strerror})") from None
    f = bitstream.parse(data)
    info = describe(f, data, input)
    if as_json:
        click.echo(json.dumps(info, indent=1))
        return
    h = f.header
    match = {True: f"(the shipped weights: {info['shipped_weights']})", False: "(NOT the shipped weights)",
             None: ""}[info["matches_shipped_weights"]]
    if info["imported_weights"] is not None:
        match = f"(imported weights: {info['imported_weights']})"
    flags = info["flags"]
    click.echo(f"{input}: plic format v{h.version}, {len(data)} bytes, {info['bpp']:.4f} bpp, checksum ok")
    click.echo(f"  model      {h.model}, weights {h.fingerprint.hex()} {match}".rstrip())
    click.echo(f"  image      {h.width}x{h.height}, {h.channels} channel(s), {h.bit_depth}-bit")
    click.echo(f"  rate       lambda {h.lmbda:.6g}" + (f"  flags: {', '.join(flags)}" if flags else ""))
    click.echo(f"  latents    {json.dumps(h.shapes)}")
    click.echo(f"  payloads   {len(f.payloads)} groups, bytes {info['payload_bytes']}"
               + (f", alpha {info['alpha_bytes']}" if info["alpha_bytes"] else ""))


def describe(f, data: bytes, input: Path) -> dict:
    """What ``plic info --json`` prints: the header, and which weights on this machine decode the file."""
    from plic import bitstream, zoo

    h = f.header
    shipped, shipped_name = None, None
    names = zoo.shipped_names(h.model)
    if names:  # else None: no shipped weights of this architecture, not "other weights"
        shipped_name = zoo.find_shipped(h.model, h.fingerprint, names=names)
        shipped = shipped_name is not None
    imported = None if shipped else zoo.find_imported(h.model, h.fingerprint)
    flags = [name for bit, name in ((bitstream.FLAG_ALPHA, "alpha"),
                                    (bitstream.FLAG_VARIABLE_RATE, "variable-rate"),
                                    (bitstream.FLAG_POST_FILTER, "post-filter")) if h.flags & bit]
    return {
        "file": str(input),
        "bytes": len(data),
        "bpp": 8 * len(data) / (h.height * h.width),
        "format_version": h.version,
        "model": h.model,
        "weights_fingerprint": h.fingerprint.hex(),
        "matches_shipped_weights": shipped,
        "shipped_weights": shipped_name,
        "imported_weights": None if imported is None else str(imported),
        "width": h.width,
        "height": h.height,
        "channels": h.channels,
        "bit_depth": h.bit_depth,
        "lambda": h.lmbda,
        "flags": flags,
        "latent_shapes": h.shapes,
        "payload_bytes": [sum(len(s) for s in g) for g in f.payloads],
        "alpha_bytes": len(f.extensions.get(bitstream.TAG_ALPHA, b"")),
        "checksum": "ok",
    }
