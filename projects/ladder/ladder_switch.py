"""Measure the lambda above which a high-rate partner codes better than the low-rate model.

    python projects/ladder/ladder_switch.py --low plic/weights/hyperprior-mse-vr.safetensors \
        --high runs/hyperprior-m192-high/model.safetensors --data ../shared/datasets/train \
        --out runs/ladder_switch

Both models minimise the same Lagrangian, ``R + lambda * 255^2 * MSE`` (bpp,
MSE of [0, 1] pixels), so at each lambda the better model is the one with the
lower mean cost. Measured with real files on 256x256 centre crops of training
images (Kodak is kept for evaluation): the switch is the smallest lambda of the
grid from which the partner's cost stays lower at every larger lambda. The
result is the ``switch`` of :class:`plic.ladder.CodecLadder`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from plic import bitstream, zoo
from plic.codec import Codec
from plic.image_io import PlanarImage, quantize_rgb
from plic.train.data import find_images


def crops(data: str, count: int, size: int, seed: int) -> list[torch.Tensor]:
    files = find_images([data])
    rng = np.random.default_rng(seed)
    out = []
    for i in rng.permutation(len(files)):
        im = Image.open(files[i]).convert("RGB")
        w, h = im.size
        if min(w, h) < size:
            continue
        left, top = (w - size) // 2, (h - size) // 2
        arr = np.asarray(im.crop((left, top, left + size, top + size)))
        out.append(torch.from_numpy(arr.copy()).permute(2, 0, 1)[None].float() / 255)
        if len(out) == count:
            break
    return out


def cost_table(codec: Codec, images: list[torch.Tensor], lambdas: list[float]) -> list[dict]:
    rows = []
    for lam in lambdas:
        bpp, mse = [], []
        for x in images:
            img = PlanarImage(x, 3, 8)
            enc = codec.encode(img, lmbda=lam)
            rec = quantize_rgb(codec.decode_file(bitstream.parse(enc.data))).cpu()
            bpp.append(enc.bpp)
            mse.append(float(((rec - x) ** 2).mean()))
        b, m = float(np.mean(bpp)), float(np.mean(mse))
        # psnr of the mean MSE (the cost's distortion), not the mean of per-crop PSNRs
        rows.append({"lambda": lam, "bpp": b, "mse": m, "psnr": -10 * math.log10(m), "cost": b + lam * 255**2 * m})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--low", required=True, help="weights (file or shipped name) of the low-rate model")
    ap.add_argument("--high", required=True, help="weights of the high-rate partner")
    ap.add_argument("--data", required=True)
    ap.add_argument("--crops", type=int, default=32)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--points", type=int, default=12, help="lambdas, log-spaced over the overlap of both ranges")
    ap.add_argument("--out", required=True, help="report path without suffix (.json and .md are written)")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    low, high = (Codec(zoo.load_model(w)) for w in (args.low, args.high))
    lo, hi = max(low.model.lambda_min, high.model.lambda_min), min(low.model.lambda_max, high.model.lambda_max)
    if not lo < hi:
        sys.exit("the two models' lambda ranges do not overlap")
    lambdas = [float(np.float32(v)) for v in np.exp(np.linspace(math.log(lo), math.log(hi), args.points))]
    lambdas[0], lambdas[-1] = float(np.float32(lo * (1 + 1e-6))), float(np.float32(hi * (1 - 1e-6)))
    images = crops(args.data, args.crops, args.size, args.seed)
    rows_low, rows_high = cost_table(low, images, lambdas), cost_table(high, images, lambdas)
    switch = None
    for i in range(len(lambdas)):
        if all(rows_high[j]["cost"] < rows_low[j]["cost"] for j in range(i, len(lambdas))):
            switch = lambdas[i]
            break
    cmd = "python " + " ".join(sys.argv)
    report = {"command": cmd, "crops": len(images), "size": args.size, "low": args.low, "high": args.high,
              "low_fingerprint": low.model.fingerprint.hex(), "high_fingerprint": high.model.fingerprint.hex(),
              "switch": switch, "low_points": rows_low, "high_points": rows_high}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    lines = [
        "# Where the high-rate partner takes over", "", f"Made by `{cmd}`.", "",
        f"{len(images)} centre crops of {args.size}x{args.size} from `{args.data}`, real files. "
        f"Cost = bpp + lambda * 255^2 * MSE (the training loss); lower is better. bpp and MSE are "
        f"means over the crops; PSNR is that of the mean MSE (a few textured crops weigh most).", "",
        f"low: `{args.low}` ({low.model.fingerprint.hex()}); high: `{args.high}` ({high.model.fingerprint.hex()})", "",
        "| lambda | low bpp | low PSNR | low cost | high bpp | high PSNR | high cost |",
        "|---|---|---|---|---|---|---|",
    ]
    for a, b in zip(rows_low, rows_high, strict=True):
        lines.append(f"| {a['lambda']:.5g} | {a['bpp']:.4f} | {a['psnr']:.2f} | {a['cost']:.4f} | "
                     f"{b['bpp']:.4f} | {b['psnr']:.2f} | {b['cost']:.4f} |")
    lines += ["", f"Switch: **{switch:.5g}**" if switch else "Switch: none (the partner is not better at the top)"]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
