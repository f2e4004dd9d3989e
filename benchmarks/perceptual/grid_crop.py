"""A zoomed crop of one image from several codecs' real files, to see a faint repeated pattern.

The dot grid the GAN-finetuned models print has a 16-pixel period and an amplitude of a
level or two: it shows on flat areas, at 3x zoom. Without ``--at`` the crop is the
``--size`` window (on the 16-pixel lattice) where the original is flattest (least
Laplacian energy), where such a pattern is easiest to see.

    python benchmarks/perceptual/grid_crop.py --data ../shared/datasets/kodak --image kodim02 --setting bpp0.3 \\
        --tile MSE plic:hyperprior runs/art_eval/files/plic-hyperprior \\
        --tile "perceptual" plic:hyperprior-perceptual runs/art_eval/files/plic-hyperprior-perceptual \\
        --out benchmarks/perceptual/artefact_crops/kodim02_bpp0.3_grid_zoom3x.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.ndimage import laplace, uniform_filter

sys.path.insert(0, str(Path(__file__).parent))
from artefacts import crop_strip, grid_score  # noqa: E402

from plic.eval.learned import make_codec  # noqa: E402
from plic.eval.runner import load_rgb  # noqa: E402


def flattest(ref: np.ndarray, size: int, step: int = 16):
    energy = uniform_filter(laplace(ref.astype(np.float64).mean(2)) ** 2, size=size, mode="constant")
    h, w = energy.shape
    best = min(((energy[y + size // 2, x + size // 2], y, x)
                for y in range(0, h - size + 1, step) for x in range(0, w - size + 1, step)))
    return best[1], best[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--image", required=True, help="stem, e.g. kodim02")
    ap.add_argument("--setting", required=True, help="the eval setting folder, e.g. bpp0.3")
    ap.add_argument("--tile", nargs=3, action="append", required=True, metavar=("LABEL", "CODEC", "FILES"),
                    help="a label, the codec that decodes the file, and the folder of the eval's files for it")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--zoom", type=int, default=3)
    ap.add_argument("--at", help="x,y of the crop's top-left corner (default: the flattest window)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    ref = load_rgb(args.data / f"{args.image}.png")
    y, x = (int(v) for v in args.at.split(",")[::-1]) if args.at else flattest(ref, args.size)
    tiles, labels = [ref], ["original"]
    for label, spec, folder in args.tile:
        rec = make_codec(spec).decode((Path(folder) / args.setting / f"{args.image}.plic").read_bytes())
        tiles.append(rec)
        labels.append(f"{label} (grid score {grid_score(rec, ref):.1f})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    crop_strip(tiles, labels, y, x, args.size, args.zoom).save(args.out)
    print(f"wrote {args.out}: {args.image} {args.setting}, crop ({x}, {y}), {args.size}px at {args.zoom}x")


if __name__ == "__main__":
    main()
