"""Side-by-side crops from a ``plic eval`` run: the original and each codec's real decode.

Reads the coded files ``plic eval`` kept (``OUT/files/<codec>/<setting>/``),
decodes them with the same codecs, and writes one PNG per image: a row of
crops, each labelled with its codec, bpp (from the file size) and LPIPS-VGG
(from the run's points).

    python benchmarks/perceptual/crops.py --eval runs/perceptual_eval --data ../shared/datasets/kodak \\
        --setting bpp0.15 --codecs plic:hyperprior,plic:hyperprior-perceptual,avif,jxl \\
        --images kodim05,kodim14,kodim21 --out benchmarks/perceptual/previous_st_lic_kodak/crops
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from plic.eval.learned import make_codec
from plic.image_io import read_image

LABEL_H = 28  # two lines of Pillow's default font


def codec_dir(spec: str) -> str:
    return spec.replace(":", "-").replace("/", "-")


def labelled(rgb: np.ndarray, text: str) -> Image.Image:
    tile = Image.new("RGB", (rgb.shape[1], rgb.shape[0] + LABEL_H), "white")
    tile.paste(Image.fromarray(rgb), (0, LABEL_H))
    ImageDraw.Draw(tile).text((3, 3), text, fill="black")
    return tile


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--eval", required=True, help="a plic eval results folder")
    ap.add_argument("--data", required=True, help="the original images")
    ap.add_argument("--setting", default="bpp0.15")
    ap.add_argument("--codecs", default="plic:hyperprior,plic:hyperprior-perceptual,avif,jxl")
    ap.add_argument("--images", default="kodim05,kodim14,kodim21")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--out", default="benchmarks/perceptual/previous_st_lic_kodak/crops")
    args = ap.parse_args()

    run, out = Path(args.eval), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    specs = args.codecs.split(",")
    codecs = {s: make_codec(s) for s in specs}
    for stem in args.images.split(","):
        src = Path(args.data) / f"{stem}.png"
        if not src.is_file():
            sys.exit(f"{src}: no such image")
        orig = (read_image(src).rgb[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        h, w = orig.shape[:2]
        c = min(args.crop, h, w)
        top, left = (h - c) // 2, (w - c) // 2  # the centre: no cherry-picking of the crop
        tiles = [labelled(orig[top:top + c, left:left + c], "original")]
        for spec in specs:
            folder = run / "files" / codec_dir(spec) / args.setting
            coded = sorted(folder.glob(f"{stem}.*"))
            point = run / "points" / codec_dir(spec) / args.setting / f"{stem}.json"
            if not coded or not point.is_file():
                sys.exit(f"{folder}: no coded {stem} (run plic eval with --targets first)")
            rec = codecs[spec].decode(coded[0].read_bytes())
            p = json.loads(point.read_text())
            name = spec.removeprefix("plic:")
            text = f"{name}\n{p['bpp']:.3f} bpp, LPIPS-VGG = {p['metrics'].get('lpips-vgg', float('nan')):.3f}"
            tiles.append(labelled(rec[top:top + c, left:left + c], text))
        sheet = Image.new("RGB", (sum(t.width for t in tiles) + 4 * (len(tiles) - 1), tiles[0].height), "white")
        x = 0
        for t in tiles:
            sheet.paste(t, (x, 0))
            x += t.width + 4
        path = out / f"{stem}_{args.setting}.png"
        sheet.save(path, optimize=True)
        print(path)


if __name__ == "__main__":
    main()
