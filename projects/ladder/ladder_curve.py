"""A ladder's Kodak curve, composed from a ``plic eval`` folder that holds both rungs' quality sweeps.

    python projects/ladder/ladder_curve.py runs/eval_low_mse --low plic:runs/low_mse.safetensors \
        --high plic:hyperprior --switch 0.012 --out projects/ladder/results/low_mse

A ladder codes with its low rung up to lambda ``switch`` and with the high rung
above (:class:`plic.ladder.CodecLadder`), and a rung's file is the same file
whichever ladder wrote it. So the ladder's points are the low rung's swept
points at lambdas up to the switch and the high rung's above it: real files,
coded once, with no need to register the candidate as a shipped model first.
BD-rates are against the high rung (the model the ladder would replace), on
every metric the folder holds, as ``plic eval``'s summary computes them
(mean points, Pareto front, PCHIP); each rung's gain at equal rate is read off
the high rung's curve (linear in log-bpp).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from plic import zoo
from plic.eval.bjontegaard import bd_rate, interpolate_metric
from plic.eval.report import collect, curve
from plic.metrics import get_metric


def lambdas(spec: str):
    """quality -> lambda of the model a ``plic:<name or file>`` codec names (each rung maps its own range)."""
    return zoo.load_model(spec.removeprefix("plic:")).quality_to_lambda


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="a plic eval --out folder with both codecs swept")
    ap.add_argument("--low", required=True, help="the low rung's codec name in the folder (plic:<file or name>)")
    ap.add_argument("--high", required=True, help="the high rung's codec name (the model the ladder replaces)")
    ap.add_argument("--switch", type=float, required=True, help="lambda up to which the low rung codes")
    ap.add_argument("--out", type=Path, required=True, help="report path without suffix (.json and .md)")
    args = ap.parse_args()
    curves = collect(args.folder)["curves"]
    missing = [c for c in (args.low, args.high) if c not in curves]
    if missing:
        sys.exit(f"not in {args.folder}: {', '.join(missing)} (there: {', '.join(curves)})")
    rows = {}
    for codec, below in ((args.low, True), (args.high, False)):
        lam = lambdas(codec)
        for key, row in curves[codec].items():
            if row.get("target_bpp") is not None:
                continue  # the sweep only: target points are not a rung's setting
            lmbda = lam(row["knob_value"])
            if (lmbda <= args.switch * (1 + 1e-6)) == below:
                rows[f"{'low' if below else 'high'} {key}"] = {**row, "lambda": lmbda}
    high = {k: v for k, v in curves[args.high].items() if v.get("target_bpp") is None}
    metrics = [m for m in ("psnr", "ms-ssim", "lpips-alex", "dists") if all(m in r for r in rows.values())]
    bd = {}
    for m in metrics:
        better = get_metric(m).higher_is_better
        ra, ma = curve(high, m)
        rt, mt = curve(rows, m)
        bd[m] = bd_rate(ra, ma, rt, mt, higher_is_better=better)
    ordered = sorted(rows.items(), key=lambda kv: kv[1]["bpp"])
    table = []
    for name, r in ordered:
        gain = {}
        for m in metrics:
            ra, ma = curve(high, m)
            if ra[0] <= r["bpp"] <= ra[-1]:
                gain[m] = r[m] - interpolate_metric(ra, ma, r["bpp"])
        table.append({"point": name, "lambda": r["lambda"], "bpp": r["bpp"], **{m: r[m] for m in metrics},
                      "gain_at_equal_rate": gain})
    cmd = "python " + " ".join(sys.argv)
    report = {"command": cmd, "low": args.low, "high": args.high, "switch": args.switch,
              "images": next(iter(high.values()))["n"], "bd_rate_against_high": bd, "points": table}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    lines = [f"# Ladder: `{args.low}` up to lambda {args.switch:g}, `{args.high}` above", "",
             f"Made by `{cmd}` from real files of {report['images']} images.", "",
             "BD-rate against the high rung alone: " + ", ".join(f"{m} **{v:+.2f} %**" for m, v in bd.items()), "",
             "| point | lambda | bpp | " + " | ".join(metrics) + " | " +
             " | ".join(f"{m} against the high rung at equal rate" for m in metrics) + " |",
             "|" + "---|" * (3 + 2 * len(metrics))]
    for t in table:
        g = t["gain_at_equal_rate"]
        lines.append(f"| {t['point']} | {t['lambda']:.5g} | {t['bpp']:.4f} | "
                     + " | ".join(f"{t[m]:.4f}" for m in metrics) + " | "
                     + " | ".join(f"{g[m]:+.4f}" if m in g else "–" for m in metrics) + " |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if any(math.isnan(v) for v in bd.values()):
        sys.exit("a BD-rate could not be computed (the curves do not overlap)")


if __name__ == "__main__":
    main()
