"""Means over several encode_time shards (each already through encode_time_equal_rate.py).

    python benchmarks/perceptual/encode_time_merge.py benchmarks/perceptual/encode_time.json \\
        benchmarks/perceptual/encode_time_s3.json benchmarks/perceptual/encode_time_s6.json \\
        --out benchmarks/perceptual/encode_time_all
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from encode_time import image_row, mean_scores, table_row  # noqa: E402

KEYS = {"plain": "plain, at the target", "plain_at_refined_bpp": "plain, at the refined bpp", "refined": "SGA+ refined"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="+")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    parts = [json.loads(Path(p).read_text()) for p in args.results]
    rows = [r for part in parts for r in part["rows"]]
    mean = mean_scores(rows, KEYS)
    command = "python benchmarks/perceptual/encode_time_merge.py " + " ".join(sys.argv[1:])
    Path(args.out + ".json").write_text(json.dumps({"command": command, "parts": [p["command"] for p in parts],
                                                    "rows": rows, "mean": mean}, indent=1) + "\n")
    lines = [f"# SGA+ (LPIPS-VGG) on the perceptual model at 0.15 bpp: {len(rows)} Kodak images", "",
             f"Command: `{command}`; the shards' commands are in the JSON. Real files.", "",
             "| mean | bpp | PSNR | LPIPS-Alex | DISTS |", "|---|---|---|---|---|"]
    lines += [table_row(label, mean[k]) for k, label in KEYS.items()]
    lines += ["", "| image | plain at refined bpp: bpp / LPIPS-Alex / DISTS | refined: bpp / LPIPS-Alex / DISTS |",
              "|---|---|---|"]
    lines += [image_row(r, "plain_at_refined_bpp", "refined") for r in rows]
    Path(args.out + ".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
