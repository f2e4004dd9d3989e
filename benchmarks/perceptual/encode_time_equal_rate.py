"""The plain perceptual model at the rate of each SGA+-refined file of encode_time.json: an equal-rate comparison.

SGA+ keeps the lambda, not the rate, so the refined files of ``encode_time.py`` land at another bpp.
This codes each image with the plain model at the refined file's bpp (lambda search, real files) and
scores it with the same metrics.

    python benchmarks/perceptual/encode_time_equal_rate.py --results benchmarks/perceptual/encode_time.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from plic.encode import Rate, encode_image
from plic.image_io import read_image
from plic.ladder import shipped_codec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from encode_time import mean_scores, scores, table_row  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default="benchmarks/perceptual/encode_time.json")
    ap.add_argument("--data", default="../shared/datasets/kodak")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    result = json.loads(Path(args.results).read_text())
    codec = shipped_codec("hyperprior-perceptual")  # the ladder --perceptual codes with
    for row in result["rows"]:
        img = read_image(Path(args.data) / row["image"])
        enc = encode_image(codec, img, Rate(bpp=row["refined"]["bpp"])).result
        row["plain_at_refined_bpp"] = scores(codec, img, enc.data)
        print(json.dumps({"image": row["image"], **row["plain_at_refined_bpp"]}), flush=True)
    keys = ("plain", "plain_at_refined_bpp", "refined")
    result["mean"] = mean_scores(result["rows"], keys)
    result["equal_rate_command"] = "python benchmarks/perceptual/encode_time_equal_rate.py " + " ".join(sys.argv[1:])
    Path(args.results).write_text(json.dumps(result, indent=1) + "\n")
    md = Path(args.results).with_suffix(".md")
    lines = md.read_text().splitlines()
    lines += ["", f"Equal rate (`{result['equal_rate_command']}`): the plain model coded at each refined file's bpp.", "",
              "| mean | bpp | PSNR | LPIPS-Alex | DISTS |", "|---|---|---|---|---|"]
    labels = {"plain": "plain, at the target", "plain_at_refined_bpp": "plain, at the refined bpp", "refined": "SGA+ refined"}
    lines += [table_row(labels[k], result["mean"][k]) for k in keys]
    md.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
