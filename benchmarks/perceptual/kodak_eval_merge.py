"""Add new plic models' Kodak points to the committed perceptual evaluation, without re-coding the others.

The classical codecs and the earlier models are deterministic: their points in
``kodak_eval/summary.json`` are what a rerun would give. A new model is
evaluated alone into its own folder (same images, metrics and targets), then

    python benchmarks/perceptual/kodak_eval_merge.py benchmarks/perceptual/kodak_eval runs/eval_a runs/eval_b \
        --out benchmarks/perceptual/kodak_eval_gan

writes OUT/summary.{json,md}: every codec's curves and the BD-rates against the
committed anchor, recomputed by plic's report code on the merged table.
"""
import argparse
import json
import sys
from pathlib import Path

from plic.eval.report import bd_rates, collect, markdown, metrics_of
from plic.files import atomic_write_bytes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("base", type=Path, help="committed eval folder (summary.json)")
    ap.add_argument("new", type=Path, nargs="+", help="plic eval folders of the new models")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    summary = json.loads((args.base / "summary.json").read_text())
    anchor = summary["anchor"]
    images = summary["manifest"]["images"]
    for folder in args.new:
        new = collect(folder)
        if sorted(new["manifest"]["images"]) != sorted(images):
            sys.exit(f"{folder}: other images than {args.base}")
        summary["curves"].update(new["curves"])
        summary["manifest"].setdefault("codecs", {}).update(new["manifest"].get("codecs", {}))
    table = bd_rates(summary, anchor, metrics_of(summary))
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python " + " ".join(sys.argv)
    atomic_write_bytes(args.out / "summary.json", json.dumps({**summary, "bd_rate": table}, indent=1).encode())
    atomic_write_bytes(args.out / "summary.md", markdown(summary, anchor, table, command).encode())
    print((args.out / "summary.md").read_text().split("## Metrics")[0])


if __name__ == "__main__":
    main()
