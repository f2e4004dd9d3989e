"""Add new plic models' Kodak points to the committed perceptual evaluation, without re-coding the others.

The classical codecs and the earlier models are deterministic: their points in
``kodak_eval/summary.json`` are what a rerun would give. A new model is
evaluated alone into its own folder (same images, metrics and targets), then

    python benchmarks/perceptual/kodak_eval_merge.py benchmarks/perceptual/kodak_eval runs/eval_a runs/eval_b \
        --out benchmarks/perceptual/kodak_eval_gan

writes OUT/summary.{json,md}: every codec's curves and the BD-rates against the
committed anchor, recomputed by plic's report code on the merged table, and its R-D
plots (``plic plot``'s) in OUT/plots. Where the committed folder keeps its points
(``points.jsonl``, one per image and setting), OUT gets them too, the new folders' added.

A model evaluated from a file before it was shipped keeps its file's name; ``--rename
plic:runs/x.safetensors=plic:hyperprior-perceptual`` gives it the shipped name, after
``--rename-base plic:hyperprior-perceptual=plic:hyperprior-perceptual-a3b27df7`` has moved the
committed entry of the same name out of the way (otherwise the new curve replaces it).
"""
import argparse
import json
import sys
from pathlib import Path

from plic.eval.report import bd_rates, collect, markdown, metrics_of, plot
from plic.files import atomic_write_bytes


def renamed(table: dict, renames: dict) -> dict:
    """``table`` with its codec names mapped through ``renames`` (one pass: no chains)."""
    return {renames.get(name, name): value for name, value in table.items()}


def point_renamed(point: dict, renames: dict) -> dict:
    return {**point, "codec": renames.get(point["codec"], point["codec"])}


def parse_renames(pairs, option: str) -> dict:
    out = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not (sep and old and new):
            sys.exit(f"{option} wants OLD=NEW, not {pair!r}")
        out[old] = new
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("base", type=Path, help="committed eval folder (summary.json)")
    ap.add_argument("new", type=Path, nargs="+", help="plic eval folders of the new models")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--rename", action="append", default=[], metavar="OLD=NEW", help="a new model's name")
    ap.add_argument("--rename-base", action="append", default=[], metavar="OLD=NEW",
                    help="a committed model's name")
    args = ap.parse_args()
    renames, base_renames = parse_renames(args.rename, "--rename"), parse_renames(args.rename_base, "--rename-base")
    summary = json.loads((args.base / "summary.json").read_text())
    summary["curves"] = renamed(summary["curves"], base_renames)
    summary["manifest"]["codecs"] = renamed(summary["manifest"].get("codecs", {}), base_renames)
    anchor = summary["anchor"]
    images = summary["manifest"]["images"]
    points = None
    if (args.base / "points.jsonl").is_file():
        points = [point_renamed(json.loads(line), base_renames)
                  for line in (args.base / "points.jsonl").read_text().splitlines() if line.strip()]
    for folder in args.new:
        new = collect(folder)
        if sorted(new["manifest"]["images"]) != sorted(images):
            sys.exit(f"{folder}: other images than {args.base}")
        summary["curves"].update(renamed(new["curves"], renames))
        summary["manifest"]["codecs"].update(renamed(new["manifest"].get("codecs", {}), renames))
        if points is not None:
            found = [point_renamed(json.loads(f.read_text()), renames) for f in sorted((folder / "points").glob("*/*/*.json"))]
            added = {q["codec"] for q in found}
            points = [q for q in points if q["codec"] not in added] + found  # a new curve replaces the committed one
    table = bd_rates(summary, anchor, metrics_of(summary))
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python " + " ".join(sys.argv)
    atomic_write_bytes(args.out / "summary.json", json.dumps({**summary, "bd_rate": table}, indent=1).encode())
    atomic_write_bytes(args.out / "summary.md", markdown(summary, anchor, table, command).encode())
    if points is not None:
        # only the points of the table's means (collect() leaves out a setting some images lack)
        lines = [json.dumps(q, separators=(",", ":")) for q in points
                 if q["image"] in images and q["setting"] in summary["curves"].get(q["codec"], {})]
        atomic_write_bytes(args.out / "points.jsonl", ("\n".join(lines) + "\n").encode())
    plot(summary, args.out / "plots")
    print((args.out / "summary.md").read_text().split("## Metrics")[0])


if __name__ == "__main__":
    main()
