"""Encode-time refinement of the shipped perceptual ladder, aimed at each target bpp, at equal rate.

Reads a ``plic eval`` folder holding a refined plic codec
(``plic:hyperprior-perceptual+snic-latent:lpips:60``: a lambda search on the plain ladder, then its
latents optimised for LPIPS-VGG with the rate held at the target) beside the plain ladder and the
classical anchors, all at the same targets. A refined file lands up to a few percent off its
target, so each image is also coded with the plain ladder at the refined file's own bpp (lambda
search, real files): that is the equal-rate comparison. LPIPS-Alex and DISTS are in no loss.

    python benchmarks/perceptual/refine_targets.py runs/proxy22 \
        --refined plic:hyperprior-perceptual+snic-latent:lpips:60 --out benchmarks/perceptual/refine/kodim01-04
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from plic.encode import Rate, encode_image
from plic.eval.learned import make_codec
from plic.eval.runner import load_rgb, safe_name
from plic.metrics import get_metric

METRICS = ("psnr", "lpips-alex", "dists")


def points(folder: Path, codec: str) -> dict:
    """``{target: {image: point}}`` of ``codec``'s target points in a plic eval folder."""
    out = defaultdict(dict)
    for p in sorted((folder / "points" / safe_name(codec)).glob("bpp*/*.json")):
        d = json.loads(p.read_text())
        if d.get("target_bpp") is not None:
            out[d["target_bpp"]][d["image"]] = d
    return out


def plain_at(plain, path: Path, bpp: float) -> dict:
    """The plain codec's (a plic eval codec) file for ``path`` at ``bpp`` (lambda search), scored as plic eval scores it."""
    ref = load_rgb(path)
    data = encode_image(plain.codec, plain._image(ref), Rate(bpp=bpp)).result.data
    dist = plain.decode(data)
    return {"bpp": 8 * len(data) / (ref.shape[0] * ref.shape[1]),
            "metrics": {m: float(get_metric(m).pair(ref, dist)) for m in METRICS}}


def mean_row(label: str, rows: list) -> str:
    bpp = np.mean([r["bpp"] for r in rows])
    return f"| {label} | {bpp:.4f} | " + " | ".join(f"{np.mean([r['metrics'][m] for r in rows]):.4f}" for m in METRICS) + " |"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path, help="a plic eval folder")
    ap.add_argument("--refined", required=True, help="the refined codec's name in that folder")
    ap.add_argument("--plain", default="plic:hyperprior-perceptual")
    ap.add_argument("--anchors", default="hevc,avif")
    ap.add_argument("--out", required=True, help="path stem of the .json and .md written")
    args = ap.parse_args()
    manifest = json.loads((args.folder / "manifest.json").read_text())
    data = Path(manifest["data"])  # as plic eval was given it: run from the same folder
    plain = make_codec(args.plain)
    args.refined, args.plain = make_codec(args.refined).name, plain.name  # the names points are stored under
    refined = points(args.folder, args.refined)
    if not refined:
        sys.exit(f"no target points of {args.refined} in {args.folder}")
    others = {c: points(args.folder, c) for c in [args.plain] + args.anchors.split(",")}
    stale = {p["version"] for t in others[args.plain].values() for p in t.values()} - {plain.version()}
    if stale:
        sys.exit(f"{args.folder} holds {args.plain} points of other weights ({', '.join(sorted(stale))}); rerun plic eval")
    result = {"command": "python benchmarks/perceptual/refine_targets.py " + " ".join(sys.argv[1:]),
              "refined": args.refined, "targets": {}}
    lines = [f"# {args.refined} at equal rate", "",
             f"Made by `{result['command']}` from the plic eval folder {args.folder} (real files; each target",
             "reached by bisection, the refined codec by one lambda search and one optimisation held at the target;",
             "the plain codec also coded at each refined file's own bpp). LPIPS-Alex and DISTS are in no loss.", ""]
    for target in sorted(refined):
        images = sorted(refined[target])
        if any(image not in others[c].get(target, {}) for c in others for image in images):
            print(f"{target:g} bpp: not every codec has every image; skipped", file=sys.stderr)
            continue
        rows = []
        for image in images:
            r = refined[target][image]
            same = plain_at(plain, data / image if data.is_dir() else data, r["bpp"])
            rows.append({"image": image, "refined": r, "plain_same_bpp": same,
                         **{c: others[c][target][image] for c in others}})
            print(json.dumps({"image": image, "target": target, "refined": r["metrics"], "plain": same["metrics"]}),
                  flush=True)
        result["targets"][str(target)] = rows
        seconds = statistics.median(r["refined"]["encode_s"] for r in rows)
        lines += [f"## {target:g} bpp, {len(rows)} images ({images[0]}..{images[-1]})", "",
                  "| mean | bpp | PSNR | LPIPS-Alex | DISTS |", "|---|---|---|---|---|",
                  mean_row(f"{args.refined} (median encode {seconds:.0f} s)", [r["refined"] for r in rows]),
                  mean_row(f"{args.plain} at the refined files' bpp", [r["plain_same_bpp"] for r in rows]),
                  mean_row(f"{args.plain} at the target", [r[args.plain] for r in rows])]
        lines += [mean_row(f"{c} at the target", [r[c] for r in rows]) for c in others if c != args.plain]
        lines += ["", "| image | refined bpp / LPIPS-Alex / DISTS | plain at that bpp | " +
                  " | ".join(c for c in others if c != args.plain) + " |", "|---|---|---|" + "---|" * (len(others) - 1)]
        for r in rows:
            cells = [r["refined"], r["plain_same_bpp"]] + [r[c] for c in others if c != args.plain]
            lines.append(f"| {r['image']} | " + " | ".join(
                f"{c['bpp']:.4f} / {c['metrics']['lpips-alex']:.4f} / {c['metrics']['dists']:.4f}" for c in cells) + " |")
        lines.append("")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps(result, indent=1) + "\n")
    Path(args.out + ".md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
