"""Would a linear residual layer on top of the default codec beat JPEG above 1 bpp? A measured design study.

    python projects/residual_layer/residual_layer_study.py --train ../shared/datasets/train \
        --kodak ../shared/datasets/kodak --base-lambdas 0.015,0.03,0.06 --deltas 14,18,22,27,34,44,56,72,96 \
        --fit-images 40 --out projects/residual_layer/results/study

Why: the default's top rung reaches only 33.0 dB on Kodak even without quantization, so JPEG leads it
above about 0.96 bpp, and widening its transforms or its latent moved that by tenths of a dB per CPU-hour.
Its residual is far from white, though (linear_ceilings.py). So this codes, after the shipped ladder's own
file at a base lambda, the residual of its *decoded* image with :class:`plic.residual_layer.ResidualLayer`
(its docstring has the design), fitted here on ``--fit-images`` training images coded at that lambda.

Bytes are real: the ladder's ``.plic`` file plus the layer's rANS stream, which is decoded back by the
layer's own decoder for the PSNR (framing the stream in a file, a step and a length, is a few bytes more,
not counted). The other codecs' curves are the committed Kodak report's (benchmarks/rd/kodak_eval), read at
each point's rate by PCHIP over log-bpp as ``plic eval`` reads curves.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from plic import bitstream
from plic.eval.bjontegaard import interpolate_metric
from plic.files import write_output
from plic.image_io import quantize_rgb, read_image
from plic.ladder import shipped_codec
from plic.residual_layer import ResidualLayer, activity, residual_blocks
from plic.train.data import find_images


def pixels_of(rgb: torch.Tensor) -> np.ndarray:
    """Colour planes (1, 3, H, W) in [0, 1] as 8-bit values (H, W, 3)."""
    return np.rint(rgb[0].permute(1, 2, 0).numpy() * 255).astype(np.int64)


def coded_base(codec, img, lmbda: float) -> tuple[int, np.ndarray]:
    """The ladder's real file at ``lmbda``: its size in bytes and its decoded 8-bit pixels (H, W, 3)."""
    data = codec.encode(img, lmbda=lmbda).data
    return len(data), pixels_of(quantize_rgb(codec.decode_file(bitstream.parse(data))))


def fitted_layer(codec, paths: list[Path], lmbda: float) -> tuple[ResidualLayer, float]:
    """The layer fitted on ``paths`` coded at ``lmbda`` (basis rounded to float16, as stored), and the share of
    the residual's energy in its first 96 components."""
    res, act = [], []
    for p in paths:
        img = read_image(p)
        _, base = coded_base(codec, img, lmbda)
        res.append(residual_blocks(pixels_of(img.rgb), base))
        act.append(activity(base))
    layer = ResidualLayer.fit(np.concatenate(res), np.concatenate(act))
    return layer, float(layer.variances[:96].sum() / layer.variances.sum())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255 ** 2 / np.mean((a.astype(np.float64) - b) ** 2)))


def mean_curve(report: Path, codec: str, images: list[str]) -> tuple[list, list]:
    """A codec's mean PSNR curve over ``images`` from a plic eval points.jsonl."""
    by_setting: dict = {}
    for line in report.read_text().splitlines():
        p = json.loads(line)
        if p["codec"] == codec and p["image"] in images:
            by_setting.setdefault(p["setting"], []).append((p["bpp"], p["metrics"]["psnr"]))
    pts = sorted(tuple(np.mean(v, 0)) for v in by_setting.values() if len(v) == len(images))
    return [p[0] for p in pts], [p[1] for p in pts]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", required=True)
    ap.add_argument("--kodak", required=True)
    ap.add_argument("--base-lambdas", default="0.015,0.03,0.06")
    ap.add_argument("--deltas", default="14,18,22,27,34,44,56,72,96", help="the layer's steps (8-bit units)")
    ap.add_argument("--fit-images", type=int, default=40, help="training images the basis and scales are fitted on")
    ap.add_argument("--limit", type=int, default=0, help="first N Kodak images only")
    ap.add_argument("--against", default="jpeg,webp,hevc,avif,plic:hyperprior",
                    help="codecs of --report whose curves each point is compared with")
    ap.add_argument("--report", type=Path, default=Path("benchmarks/rd/kodak_eval/points.jsonl"))
    ap.add_argument("--out", type=Path, required=True, help="report path without suffix (.json and .md)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    codec = shipped_codec("hyperprior")
    train = find_images([args.train])
    np.random.default_rng(0).shuffle(train)
    kodak = find_images([args.kodak])[:args.limit or None]
    names = [p.name for p in kodak]
    against = args.against.split(",")
    curves = {c: mean_curve(args.report, c, names) for c in against}
    deltas = [float(d) for d in args.deltas.split(",")]
    rows, t0 = [], time.time()
    for lam in (float(v) for v in args.base_lambdas.split(",")):
        layer, share = fitted_layer(codec, train[:args.fit_images], lam)
        per = {d: [] for d in [None, *deltas]}
        for p in kodak:
            img = read_image(p)
            x = pixels_of(img.rgb)
            n_base, base = coded_base(codec, img, lam)
            pixels = x.shape[0] * x.shape[1]
            per[None].append((8 * n_base / pixels, psnr(base, x)))
            for d in deltas:
                data = layer.encode(x, base, d)
                out = layer.decode(data, base, d)
                n_layer = len(data)
                per[d].append((8 * (n_base + n_layer) / pixels, psnr(out, x)))
        for d, v in per.items():
            bpp, db = np.mean(v, 0)
            leads = {c: db - interpolate_metric(*curves[c], bpp) for c in against}
            rows.append({"base_lambda": lam, "delta": d, "bpp": float(bpp), "psnr": float(db),
                         "lead_db": {c: None if np.isnan(v) else float(v) for c, v in leads.items()},
                         "energy_in_96": share})
            print(f"base lambda {lam:g} step {d}: {bpp:.3f} bpp {db:.2f} dB, leads "
                  + ", ".join(f"{c} {v:+.2f}" for c, v in leads.items()) + f" dB ({time.time() - t0:.0f} s)",
                  flush=True)
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    write_output(args.out.with_suffix(".json"), (json.dumps({"command": command, "images": names, "curves": curves,
                                                          "rows": rows}, indent=1) + "\n").encode())
    lines = [f"# Residual layer study\n\nCommand: `{command}`; {len(names)} Kodak images, real bytes (base file + "
             f"the layer's rANS stream), mean over images. PSNR lead over each codec at equal bpp (dB; – where "
             f"its curve does not reach the rate; `plic:hyperprior` is the shipped ladder alone).\n",
             "| base lambda | step | bpp | PSNR | " + " | ".join(against) + " |",
             "|---|---|---|---|" + "---|" * len(against)]
    for r in rows:
        leads = ["–" if r["lead_db"][c] is None else f"{r['lead_db'][c]:+.2f}" for c in against]
        step = "base alone" if r["delta"] is None else f"{r['delta']:g}"
        lines.append(f"| {r['base_lambda']:g} | {step} | {r['bpp']:.3f} | {r['psnr']:.2f} | " + " | ".join(leads) + " |")
    write_output(args.out.with_suffix(".md"), ("\n".join(lines) + "\n").encode())


if __name__ == "__main__":
    main()
