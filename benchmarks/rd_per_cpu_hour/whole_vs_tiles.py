"""Does a model trained on small crops code whole images as well as it codes crops?

    python benchmarks/rd_per_cpu_hour/whole_vs_tiles.py --out benchmarks/rd_per_cpu_hour/results/whole_vs_tiles \\
        --model default plic/weights/hyperprior-mse-vr.safetensors --model long-20k long_run/....safetensors

For every Kodak image and lambda: the rate the model's entropy model gives the whole image
(rounded latents, the same estimate the coder's files land within a few percent of) against the
sum of the rates of its 128x128 tiles, each coded on its own. A tile pays for its borders, so a
model that generalises codes the whole image for less (ratio below 1); a ratio above 1 means the
model learned something that only holds on crops of the size it was trained on (a hyper-latent
of 2x2 cells, all of them at the border). Cheap (about a minute of two threads per model over
four images) and decisive where the training loss is blind: the loss is measured on crops.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from plic.image_io import read_image
from plic.train.loss import bpp_per_item
from plic.zoo import load_model, stored_fingerprint

TILE = 128


@torch.no_grad()
def bits(model, x: torch.Tensor, lmbda: float) -> float:
    return float(bpp_per_item(model(x, lmbda)["likelihoods"], 1).sum())


def measure(path: str, images: list[Path], lambdas: list[float]) -> dict:
    model = load_model(path).float().eval()
    xs = [read_image(p).rgb.float() for p in images]  # read once, coded at every lambda
    rows = []
    for lam in lambdas:
        whole, tiles = [], []
        for x in xs:
            h, w = x.shape[-2:]
            whole.append(bits(model, x, lam) / (h * w))
            tiles.append(sum(bits(model, x[..., i:i + TILE, j:j + TILE], lam)
                             for i in range(0, h, TILE) for j in range(0, w, TILE)) / (h * w))
        ratio = np.array(whole) / np.array(tiles)
        rows.append({"lambda": lam, "whole_bpp": float(np.mean(whole)), "tiles_bpp": float(np.mean(tiles)),
                     "ratio_mean": float(ratio.mean()), "ratio_max": float(ratio.max()),
                     "worst_image": images[int(ratio.argmax())].stem})
        print(f"  lambda {lam:g}: whole {rows[-1]['whole_bpp']:.4f} bpp, tiles {rows[-1]['tiles_bpp']:.4f} bpp, "
              f"ratio {rows[-1]['ratio_mean']:.3f} (worst {rows[-1]['ratio_max']:.2f}, {rows[-1]['worst_image']})",
              flush=True)
    fp = stored_fingerprint(path)
    return {"weights": path, "fingerprint": fp.hex() if fp else "", "points": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", nargs=2, action="append", metavar=("NAME", "WEIGHTS"), required=True)
    ap.add_argument("--data", default="../shared/datasets/kodak")
    ap.add_argument("--images", type=int, default=24, help="the first N images of --data")
    ap.add_argument("--lambdas", default="0.0001,0.001,0.01,0.1")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True, help="writes OUT.json and OUT.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    images = sorted(Path(args.data).glob("*.png"))[: args.images]
    lambdas = [float(v) for v in args.lambdas.split(",")]
    out_json = args.out.with_suffix(".json")
    results = json.loads(out_json.read_text()) if out_json.exists() else {}
    for name, path in args.model:
        print(name, flush=True)
        results[name] = measure(path, images, lambdas) | {"images": len(images)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(results, indent=1))
    lines = ["| model | fingerprint | images | lambda | whole image, bpp | its 128x128 tiles, bpp | ratio (mean, worst) |",
             "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        for i, pt in enumerate(r["points"]):
            head = f"| {name} | {r['fingerprint'][:16]} | {r['images']} |" if i == 0 else "| | | |"
            lines.append(f"{head} {pt['lambda']:g} | {pt['whole_bpp']:.4f} | {pt['tiles_bpp']:.4f} | "
                         f"{pt['ratio_mean']:.3f}, {pt['ratio_max']:.2f} ({pt['worst_image']}) |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
