"""JPEG (plic eval's codec: 4:2:0, optimized Huffman tables) on Kodak at the qualities the committed report skips.

    python projects/residual_layer/jpeg_dense.py ../shared/datasets/kodak > projects/residual_layer/results/jpeg_dense.txt

The committed report (benchmarks/rd/kodak_eval) has JPEG at quality 70 (1.21 bpp) and 95 (3.31 bpp) and
nothing between, so a lead read off its curve in that gap rests on interpolation; these points close it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from plic.eval.codecs import JpegCodec


def main() -> None:
    codec = JpegCodec()
    images = sorted(Path(sys.argv[1]).glob("*.png"))
    print("quality, mean bpp, mean PSNR (dB) over", len(images), "images")
    for q in (70, 75, 80, 85, 88, 90, 92, 95):
        bpp, db = [], []
        for path in images:
            x = np.asarray(Image.open(path).convert("RGB"))
            data = codec.encode(x, q)
            y = codec.decode(data).astype(np.float64)
            bpp.append(8 * len(data) / (x.shape[0] * x.shape[1]))
            db.append(10 * np.log10(255 ** 2 / np.mean((y - x) ** 2)))
        print(f"{q}, {np.mean(bpp):.3f}, {np.mean(db):.2f}")


if __name__ == "__main__":
    main()
