"""Encode-time refinement of the perceptual model: does SGA+ with a perceptual objective buy more at equal rate?

For each image: the shipped perceptual model at the lambda that gives the target bpp (real files),
then SGA+ refinement of its latents at that lambda with the LPIPS-VGG objective (the training loss;
LPIPS-Alex and DISTS stay held out), coded for real. Both files are scored on PSNR, LPIPS-Alex and
DISTS; the refined file's bpp is reported next to the plain one's (SGA+ keeps the lambda, not the rate).

    python benchmarks/perceptual/encode_time.py --images 4 --steps 100 --out benchmarks/perceptual/encode_time
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from plic import bitstream
from plic.encode import Rate, Refinement, encode_image
from plic.image_io import quantize_rgb, read_image
from plic.ladder import shipped_codec
from plic.metrics import get_metric

METRICS = ("psnr", "lpips-alex", "dists")


def mean_scores(rows, keys) -> dict:
    """Per key of ``keys``: the mean over ``rows`` of each score."""
    return {k: {m: float(np.mean([r[k][m] for r in rows])) for m in ("bpp",) + METRICS} for k in keys}


def table_row(label: str, m: dict) -> str:
    return f"| {label} | {m['bpp']:.4f} | {m['psnr']:.2f} | {m['lpips-alex']:.4f} | {m['dists']:.4f} |"


def image_row(r: dict, a: str, b: str, tail: str = "") -> str:
    p, q = r[a], r[b]
    return (f"| {r['image']} | {p['bpp']:.4f} / {p['lpips-alex']:.4f} / {p['dists']:.4f} | "
            f"{q['bpp']:.4f} / {q['lpips-alex']:.4f} / {q['dists']:.4f} |{tail}")


def scores(codec, img, data) -> dict:
    rec = quantize_rgb(codec.decode_file(bitstream.parse(data))).cpu()
    ref = (img.rgb[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    dist = (rec[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    out = {"bpp": 8 * len(data) / (img.height * img.width)}
    out.update({m: float(get_metric(m).pair(ref, dist)) for m in METRICS})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/datasets/kodak")
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--skip", type=int, default=0, help="start after this many images (shards)")
    ap.add_argument("--bpp", type=float, default=0.15)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--objective", default="lpips")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/perceptual/encode_time")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    codec = shipped_codec("hyperprior-perceptual")  # the ladder --perceptual codes with
    rows = []
    for path in sorted(Path(args.data).glob("*.png"))[args.skip: args.skip + args.images]:
        img = read_image(path)
        t0 = time.perf_counter()
        out = encode_image(codec, img, Rate(bpp=args.bpp), Refinement("sga+", args.steps, metric=args.objective))
        seconds = time.perf_counter() - t0
        row = {"image": path.name, "plain": scores(codec, img, out.before.data),
               "refined": scores(codec, img, out.result.data), "seconds": seconds}
        rows.append(row)
        print(json.dumps(row), flush=True)
    mean = mean_scores(rows, ("plain", "refined"))
    result = {"command": "python benchmarks/perceptual/encode_time.py " + " ".join(sys.argv[1:]),
              "machine": f"{platform.machine()} CPU, {args.threads} thread(s), torch {torch.__version__}",
              "objective": args.objective, "steps": args.steps, "target_bpp": args.bpp, "rows": rows, "mean": mean}
    Path(args.out + ".json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# SGA+ ({args.objective}, {args.steps} steps) on the perceptual model at {args.bpp:g} bpp", "",
             f"Command: `{result['command']}`; {result['machine']}. Real files; mean over {len(rows)} Kodak images.", "",
             "| | bpp | PSNR | LPIPS-Alex | DISTS |", "|---|---|---|---|---|"]
    lines += [table_row(k, mean[k]) for k in ("plain", "refined")]
    lines += ["", "| image | plain bpp / LPIPS-Alex / DISTS | refined bpp / LPIPS-Alex / DISTS | seconds |", "|---|---|---|---|"]
    lines += [image_row(r, "plain", "refined", f" {r['seconds']:.0f} |") for r in rows]
    Path(args.out + ".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
