"""Two plic eval folders compared on the images both finished (same targets), as a Markdown table.

    python benchmarks/perceptual/arms_compare.py runs/eval_po_alex runs/eval_po_vgg \
        --out benchmarks/perceptual/arms/alex_vs_vgg.md

Used when one evaluation was stopped early: only images present in both folders at a
target enter that target's means, and the table says how many.
"""
import argparse
import json
import sys
from pathlib import Path

METRICS = ("psnr", "ms-ssim", "lpips-alex", "dists")


def points(folder: Path):
    found = {}
    for f in folder.glob("points/*/*/*.json"):
        p = json.loads(f.read_text())
        found.setdefault(p["setting"], {})[p["image"]] = p
    return found


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folders", type=Path, nargs=2)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    a, b = (points(f) for f in args.folders)
    lines = ["# " + " vs ".join(str(f) for f in args.folders), "", "Made by: `python " + " ".join(sys.argv) + "`", "",
             "| target | images | eval folder | bpp | " + " | ".join(METRICS) + " |", "|---" * (4 + len(METRICS)) + "|"]
    for setting in sorted(set(a) & set(b)):
        images = sorted(set(a[setting]) & set(b[setting]))
        for folder, pts in zip(args.folders, (a, b), strict=True):
            rows = [pts[setting][i] for i in images]
            mean = {m: sum(r["metrics"][m] for r in rows) / len(rows) for m in METRICS}
            bpp = sum(r["bpp"] for r in rows) / len(rows)
            lines.append(f"| {setting} | {len(images)} ({images[0]}..{images[-1]}) | {folder} | {bpp:.4f} | "
                         + " | ".join(f"{mean[m]:.2f}" if m == "psnr" else f"{mean[m]:.4f}" for m in METRICS) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
