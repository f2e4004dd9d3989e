"""Where the perceptual ladder should switch rungs, measured on training images (Kodak stays held out).

For each rung and lambda of a grid around the low rung's top, code every image (a 256x256 centre
crop of ``--images`` training images spread over the sorted list) and measure its real bpp, LPIPS-Alex
and DISTS (neither is in a training loss; they are the issue's two target metrics). Prints, per lambda,
the means for both rungs and the high rung's relative difference on each metric against the low rung
at the same bpp (the low rung's curve over the grid, linear in log bpp, extended past its ends by its
end segments: the rungs spend within a few per cent of the same bits at one lambda, both having held
the MSE model's rate in training). The rule printed last: the largest lambda of the grid up to which
the low rung is better on the mean of the two differences at every point. (The shipped switch is not
this rule's answer: benchmarks/perceptual/README.md, "The switch".)

    python benchmarks/perceptual/ladder/switch_perceptual.py --data ../shared/datasets/train --images 24 \
        > benchmarks/perceptual/ladder/switch_perceptual.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from plic import bitstream, zoo
from plic.codec import Codec
from plic.image_io import PlanarImage, quantize_rgb
from plic.losses.distortion import distortion_fn
from plic.train.data import find_images

LAMBDAS = (0.0007, 0.001, 0.0012, 0.0015, 0.002, 0.003)


def crops(data: Path, count: int, size: int) -> list[torch.Tensor]:
    files = find_images([data])  # sorted per folder, as training reads them
    step = max(1, len(files) // count)  # spread over the sources (the folders sort by source)
    out = []
    for p in files[::step]:
        im = Image.open(p).convert("RGB")
        if min(im.size) < size:
            continue
        left, top = (im.width - size) // 2, (im.height - size) // 2
        a = np.asarray(im.crop((left, top, left + size, top + size)))
        out.append(torch.from_numpy(a.copy()).permute(2, 0, 1)[None].float() / 255)
        if len(out) == count:
            break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(2)
    ((low_name, switch),) = zoo.LADDERS["hyperprior-perceptual"]
    rungs = {low_name: Codec(zoo.load_model(low_name), exact=False),
             "hyperprior-perceptual": Codec(zoo.load_model("hyperprior-perceptual"), exact=False)}
    metrics = {m: distortion_fn(m) for m in ("lpips-alex", "dists")}
    images = crops(args.data, args.images, args.size)
    print(f"`{' '.join(sys.argv)}`: {len(images)} centre crops {args.size}x{args.size} of training images; "
          f"switch in plic.zoo when this ran: {switch:g}\n")
    print("| lambda | rung | bpp | LPIPS-Alex | DISTS | high rung against low at equal bpp (mean of the two) |")
    print("|---|---|---|---|---|---|")
    means = {name: {} for name in rungs}  # rung -> lambda -> (bpp, LPIPS-Alex, DISTS)
    for lam in LAMBDAS:
        for name, codec in rungs.items():
            m = codec.model
            if not m.lambda_min * (1 - 1e-6) <= lam <= m.lambda_max * (1 + 1e-6):
                continue
            rows = []
            for x in images:
                enc = codec.encode(PlanarImage(x, 3, 8), lmbda=lam)
                rec = quantize_rgb(codec.decode_file(bitstream.parse(enc.data))).cpu().float()
                with torch.no_grad():
                    rows.append([enc.bpp] + [float(fn(rec, x)) for fn in metrics.values()])
            means[name][lam] = np.mean(rows, axis=0)
    low_curve = np.array([means[low_name][lam] for lam in sorted(means[low_name])])
    rels = {}  # lambda -> the high rung's mean relative difference (positive: the low rung is better)
    for lam in LAMBDAS:
        for name in rungs:
            if lam not in means[name]:
                continue
            bpp, lp, ds = means[name][lam]
            diff = ""
            if name != low_name and lam in means[low_name]:
                lp0, ds0 = (at_bpp(low_curve[:, 0], low_curve[:, k], bpp) for k in (1, 2))
                d_lp, d_ds = 100 * (lp / lp0 - 1), 100 * (ds / ds0 - 1)
                rels[lam] = (d_lp + d_ds) / 2
                diff = f"{rels[lam]:+.1f} % (LPIPS-Alex {d_lp:+.1f} %, DISTS {d_ds:+.1f} %)"
            print(f"| {lam:g} | {name} | {bpp:.4f} | {lp:.4f} | {ds:.4f} | {diff} |", flush=True)
    best = None
    for lam, rel in sorted(rels.items()):
        if rel <= 0:
            break
        best = lam
    print(f"\nThe low rung is better at every lambda of the grid up to {best}"
          + (" (None: not even at the first)." if best is None else "."))


def at_bpp(bpps: np.ndarray, values: np.ndarray, bpp: float) -> float:
    """``values`` (over increasing ``bpps``) at ``bpp``, linear in log bpp; past the ends, the end segments extended."""
    x = np.log(bpps)
    i = int(np.clip(np.searchsorted(x, np.log(bpp)) - 1, 0, len(x) - 2))
    t = (np.log(bpp) - x[i]) / (x[i + 1] - x[i])
    return float(values[i] + t * (values[i + 1] - values[i]))


if __name__ == "__main__":
    main()
