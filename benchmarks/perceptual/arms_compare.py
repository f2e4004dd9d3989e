"""plic eval folders compared on the images every codec finished (same targets), as a Markdown table.

    python benchmarks/perceptual/arms_compare.py runs/eval_po_alex runs/eval_po_vgg \
        --out benchmarks/perceptual/arms/alex_vs_vgg.md
    python benchmarks/perceptual/arms_compare.py runs/proxy --out benchmarks/perceptual/arms/screen_kodim01-08.md

Each folder may hold several codecs (one row each). Used when an evaluation was stopped early or
ran on a subset (``--limit``): only images every codec has at a target enter that target's means,
and the table says how many (a codec with no point at a target has no row there). The columns
are the per-image metrics every point has.
"""
import argparse
import json
import sys
from pathlib import Path

#: per-image metrics, in column order (set-level ones, FD and FID, are not in the points)
ORDER = ("psnr", "psnr-y", "ms-ssim", "ssim", "lpips-alex", "lpips-vgg", "dists", "vmaf")


def points(folder: Path):
    """{setting: {(folder, codec): {image: point}}} of one eval folder."""
    found = {}
    for f in folder.glob("points/*/*/*.json"):
        p = json.loads(f.read_text())
        found.setdefault(p["setting"], {}).setdefault((str(folder), p["codec"]), {})[p["image"]] = p
    return found


def table(folders):
    merged = {}
    for folder in folders:
        for setting, arms in points(folder).items():
            merged.setdefault(setting, {}).update(arms)
    if not merged:
        raise SystemExit("no points in " + ", ".join(map(str, folders)))
    every = [p for arms in merged.values() for pts in arms.values() for p in pts.values()]
    metrics = [m for m in ORDER if all(m in p["metrics"] for p in every)]
    lines = ["| target | images | eval folder | codec | bpp | " + " | ".join(metrics) + " |",
             "|---" * (5 + len(metrics)) + "|"]
    for setting in sorted(merged):
        arms = merged[setting]
        images = sorted(set.intersection(*(set(pts) for pts in arms.values())))
        if not images:
            continue
        for (folder, codec), pts in sorted(arms.items()):
            rows = [pts[i] for i in images]
            mean = {m: sum(r["metrics"][m] for r in rows) / len(rows) for m in metrics}
            bpp = sum(r["bpp"] for r in rows) / len(rows)
            lines.append(f"| {setting} | {len(images)} ({images[0]}..{images[-1]}) | {folder} | {codec} | {bpp:.4f} | "
                         + " | ".join(f"{mean[m]:.2f}" if m in ("psnr", "psnr-y", "vmaf") else f"{mean[m]:.4f}"
                                      for m in metrics) + " |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folders", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    lines = ["# " + " vs ".join(str(f) for f in args.folders), "", "Made by: `python " + " ".join(sys.argv) + "`", "",
             *table(args.folders)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
