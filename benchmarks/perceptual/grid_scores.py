"""Grid score and colour error of every plic codec's files in a ``plic eval`` folder, as a Markdown table.

The quick check for an arm: ``artefacts.py`` needs the MSE model's files beside the
perceptual ones; this reads any eval folder (a ``--limit 4`` one, say) and reports, per
codec and rate, the two numbers of ``artefacts.py`` that need only the original: the grid
score (the error spectrum's peaks at the synthesis transform's period, about 1 when
nothing repeats) and the largest per-channel mean colour offset (8-bit levels).

    python benchmarks/perceptual/grid_scores.py runs/q_grid >> benchmarks/perceptual/arms/grid_penalty_kodim01-04.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from artefacts import colour_error, grid_score  # noqa: E402

from plic.eval.learned import make_codec  # noqa: E402
from plic.eval.runner import load_rgb, safe_name  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("eval", type=Path, help="a plic eval folder")
    args = ap.parse_args()
    manifest = json.loads((args.eval / "manifest.json").read_text())
    data = Path(manifest["data"])
    print(f"Grid score and colour error (`python benchmarks/perceptual/grid_scores.py {args.eval}`):\n")
    print("| codec | rate | images | mean grid score | max grid score | mean abs. colour error | max abs. colour error |")
    print("|---|---|---|---|---|---|---|")
    for name in manifest["codecs"]:
        if not name.startswith("plic:"):
            continue
        codec = make_codec(name)
        for target in manifest["targets"]:
            setting = f"bpp{target:g}"
            grid, colour, names = [], [], []
            for image in manifest["images"]:
                f = args.eval / "files" / safe_name(name) / setting / f"{Path(image).stem}.plic"
                if f.is_file():
                    ref = load_rgb(data / image)
                    rec = codec.decode(f.read_bytes())
                    grid.append(grid_score(rec, ref))
                    colour.append(abs(colour_error(rec, ref)))
                    names.append(Path(image).stem)
            if grid:
                g, c = int(np.argmax(grid)), int(np.argmax(colour))  # which image is worst, to look at
                print(f"| {name} | {target:g} | {len(grid)} | {np.mean(grid):.2f} | {grid[g]:.2f} ({names[g]}) | "
                      f"{np.mean(colour):.2f} | {colour[c]:.2f} ({names[c]}) |")


if __name__ == "__main__":
    main()
