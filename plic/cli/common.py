"""Pieces shared by the CLI tools: model options, output paths, batches."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, List, Optional, Tuple

import click

from plic.errors import PlicError


def model_options(f):
    f = click.option("--fast", is_flag=True,
                     help="float32 transforms: ~3x faster on CPU, pixels may differ by one level between machines")(f)
    f = click.option("--device", default="cpu", show_default=True,
                     help="where the transforms run (entropy coding always runs on the CPU)")(f)
    f = click.option("--model-path", type=click.Path(dir_okay=False),
                     help="weights file (.safetensors) instead of the shipped model")(f)
    return f


def require_device(device: str) -> None:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise PlicError("--device cuda asked for, but no CUDA device is available")


def load_codec(model: Optional[str], model_path: Optional[str], device: str, fast: bool = False):
    """A weight file as a codec, or a shipped model (with its high-rate partner, if it has one)."""
    from plic.codec import Codec
    from plic.ladder import shipped_codec
    from plic.zoo import DEFAULT_MODEL, load_weights

    require_device(device)
    if model_path:
        m = load_weights(model_path, device)
        if model and m.registry_name != model:
            raise PlicError(f"{model_path} holds a {m.registry_name!r} model, not {model!r}")
        return Codec(m, device=device, exact=not fast)
    return shipped_codec(model or DEFAULT_MODEL, device, exact=not fast)


def plan_outputs(inp: Path, out: Optional[Path], in_suffixes: Iterable[str], out_suffix: str,
                 force: bool) -> Tuple[List[Tuple[Path, Path]], bool]:
    """(input, output) pairs for a file or a folder, refusing to overwrite.

    Returns the pairs and whether the input was a folder.
    """
    suffixes = {s.lower() for s in in_suffixes}
    if not inp.exists():
        raise PlicError(f"{inp}: no such file or folder")
    if inp.is_dir():
        files = sorted(p for p in inp.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
        if not files:
            raise PlicError(f"{inp}: no input files ({', '.join(sorted(suffixes))}) in this folder")
        if out is None:
            raise PlicError("a folder input needs -o OUTPUT_FOLDER")
        if out.exists() and not out.is_dir():
            raise PlicError(f"{out}: exists and is not a folder")
        pairs = [(p, out / p.relative_to(inp).with_suffix(out_suffix)) for p in files]
        folder = True
    else:
        target = out if out is not None else inp.with_suffix(out_suffix)
        if target.is_dir():
            target = target / inp.with_suffix(out_suffix).name
        pairs = [(inp, target)]
        folder = False
    for src, dst in pairs:
        if dst.resolve() == src.resolve():
            raise PlicError(f"{dst}: output would overwrite the input")
        if dst.exists() and not force:
            raise PlicError(f"{dst}: exists (use --force to overwrite)")
    return pairs, folder


def run_batch(pairs, folder: bool, quiet: bool, process) -> Tuple[List[dict], float]:  # noqa: C901
    """Run ``process(src, dst) -> {"bpp", "psnr"?, "msg"}`` over the pairs.

    A folder batch reports a failing file on one line and goes on; the
    command fails at the end if any file failed. Returns results and seconds.
    """
    import sys
    import time

    from tqdm import tqdm

    t0 = time.perf_counter()
    results, failed = [], []
    bar = tqdm(pairs, disable=not folder or quiet, unit="img", dynamic_ncols=True, file=sys.stderr)
    for src, dst in bar:
        try:
            r = process(src, dst)
        except PlicError as exc:
            if not folder:
                raise
            failed.append(src)
            bar.write(f"plic: {exc}", file=sys.stderr)
            continue
        results.append(r)
        if folder:
            bar.set_postfix(bpp=f"{sum(x['bpp'] for x in results) / len(results):.3f}")
        elif not quiet:
            click.echo(r["msg"])
    elapsed = time.perf_counter() - t0
    if results:
        bpps = [r["bpp"] for r in results]
        psnrs = [r["psnr"] for r in results if r.get("psnr") is not None]
        summary = f"{len(results)} image(s), mean {sum(bpps) / len(bpps):.4f} bpp"
        if psnrs:
            summary += f", mean PSNR {sum(psnrs) / len(psnrs):.2f} dB"
        click.echo(f"{summary}, {elapsed:.1f} s")
    if failed:
        raise PlicError(f"{len(failed)} of {len(pairs)} file(s) failed (reported above)")
    return results, elapsed
