"""A ladder's Kodak curve, composed from a ``plic eval`` folder that holds every rung's quality sweep.

    python projects/ladder/ladder_curve.py projects/ladder/results/eval_study --low plic:runs/low_mse6.safetensors \
        --mid plic:runs/mid_mse2.safetensors --high plic:plic/weights/hyperprior-mse-vr.safetensors \
        --switch 0.0058627 --switch 0.06 --against hevc --against webp --out runs/three_rungs

A ladder codes with each rung up to its lambda ``--switch`` (one per rung below the top, rising) and
with the top rung above the last (:class:`plic.ladder.CodecLadder`), and a rung's file is the same
file whichever ladder wrote it. So the ladder's points are each rung's swept points at lambdas
between the switch below it and its own: real files, coded once, with no need to register the
candidate as a shipped model first. BD-rates are against the top rung (the model the ladder would
replace), or against each ``--against`` codec of the folder (the classical codecs, say), on every
metric all of them hold, as ``plic eval``'s summary computes them (mean points, Pareto front, PCHIP);
each point's lead at equal rate is read off each of those codecs' curves (PCHIP over log-bpp).

A rung is one model: a weight file, or a shipped name that is not a ladder. ``plic:hyperprior``
codes as a ladder since the default got rungs below it, so the default model alone is
``plic:plic/weights/hyperprior-mse-vr.safetensors``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from plic.errors import PlicError
from plic.eval.bjontegaard import bd_rate, interpolate_metric
from plic.eval.learned import make_codec
from plic.eval.report import collect, curve
from plic.ladder import CodecLadder
from plic.metrics import METRICS, get_metric


def curves_of(folder: Path) -> dict:
    """The swept curves of a ``plic eval`` folder, or of a merged one that holds only its summary.json
    (benchmarks/perceptual/kodak_eval_merge.py: rungs evaluated into separate folders)."""
    if not (folder / "points").is_dir() and (folder / "summary.json").is_file():
        return json.loads((folder / "summary.json").read_text())["curves"]
    return collect(folder)["curves"]


def rung_labels(count: int) -> list[str]:
    """How the report names each rung's points: low, mid (mid1, mid2, ... if several), high."""
    mids = ["mid"] if count == 3 else [f"mid{i}" for i in range(1, count - 1)]
    return ["low", *mids, "high"]


def compose(curves: dict, rungs: list[str], switches: list[float]) -> dict:
    """The ladder's swept points: each rung's at the lambdas where the ladder picks that rung (above the
    switch below it and up to its own; the first rung's from its bottom, the last one's to its top).

    Each quality maps to a lambda as ``plic eval`` coded it (a shipped ladder name over its whole range).
    """
    codecs = []
    for name in rungs:
        codec = make_codec(name).codec
        if isinstance(codec, CodecLadder):
            raise PlicError(f"{name} codes as a ladder of several models, not one rung: name its model's weight "
                            f"file (plic:<file>.safetensors) and evaluate that")
        codecs.append(codec)
    try:
        ladder = CodecLadder(codecs, switches)  # the rungs and switches a plic ladder would accept
    except ValueError as exc:
        raise PlicError(f"no such ladder: {exc}") from None
    rows = {}
    for i, (name, codec, label) in enumerate(zip(rungs, codecs, rung_labels(len(rungs)))):
        for key, row in _swept(curves[name]).items():
            lmbda = codec.resolve_lambda(quality=row["knob_value"])  # float32, as in the file's header
            if ladder.position(lmbda) == i:  # by position: one weight file may be given for two rungs
                rows[f"{label} {key}"] = {**row, "lambda": lmbda}
        if sum(k.startswith(f"{label} ") for k in rows) < 2:
            raise PlicError(f"fewer than two swept points of {name} between its switches")
    return rows


def _swept(rows: dict) -> dict:
    return {k: v for k, v in rows.items() if v.get("target_bpp") is None}


def report(curves: dict, rungs: list[str], switches: list[float], command: str, against=()) -> dict:
    """The ladder's points, with BD-rates and leads at equal rate against each codec of ``against``
    (default: the top rung alone)."""
    rows = compose(curves, rungs, switches)
    against = list(against) or [rungs[-1]]
    metrics = [m for m in METRICS if all(m in r for r in rows.values())
               and all(m in r for a in against for r in _swept(curves[a]).values())]
    # each reference curve once: the BD-rates and every point's lead read the same one
    ref = {(a, m): curve(_swept(curves[a]), m) for a in against for m in metrics}
    bd = {}
    for a in against:
        bd[a] = {}
        for m in metrics:
            try:
                bd[a][m] = bd_rate(*ref[a, m], *curve(rows, m), higher_is_better=get_metric(m).higher_is_better)
            except ValueError as exc:
                raise PlicError(f"no BD-rate on {m} against {a}: {exc}") from None
    points = []
    for name, r in sorted(rows.items(), key=lambda kv: kv[1]["bpp"]):
        better = {}  # codec -> how much better the point is than its curve at the same bpp, in the metric's units
        for a in against:
            better[a] = {}
            for m in metrics:
                ra, ma = ref[a, m]
                if ra[0] <= r["bpp"] <= ra[-1]:
                    diff = r[m] - interpolate_metric(ra, ma, r["bpp"])
                    better[a][m] = diff if get_metric(m).higher_is_better else -diff
        points.append({"point": name, "lambda": r["lambda"], "bpp": r["bpp"], **{m: r[m] for m in metrics},
                       "better_at_equal_rate": better})
    images = sorted({r["n"] for r in rows.values()})
    return {"command": command, "rungs": rungs, "switches": switches, "against": against, "images": images,
            "bd_rate": bd, "points": points}


def markdown(rep: dict) -> str:
    first = rep["against"][0]
    metrics = list(rep["bd_rate"][first])
    name = lambda a: "the top rung alone" if a == rep["rungs"][-1] else f"`{a}`"  # noqa: E731
    steps = [f"`{r}` up to lambda {s:g}" for r, s in zip(rep["rungs"], rep["switches"])]
    lines = [f"# Ladder: {', '.join(steps)}, `{rep['rungs'][-1]}` above", "",
             f"Made by `{rep['command']}` from real files ({'/'.join(map(str, rep['images']))} images per point).", "",
             "BD-rate (%; negative: fewer bits at equal quality):", "",
             "| against | " + " | ".join(metrics) + " |", "|" + "---|" * (1 + len(metrics))]
    lines += [f"| {name(a)} | " + " | ".join(f"**{v:+.2f}**" for v in rep["bd_rate"][a].values()) + " |"
              for a in rep["against"]]
    lines += ["", f"The last columns: how much better each point is than {name(first)} at its bpp "
              "(PCHIP over log-bpp on its curve; positive is better, in the metric's units; the JSON has them "
              "against every codec above).", "",
              "| point | lambda | bpp | " + " | ".join(metrics) + " | " + " | ".join(f"{m} better by" for m in metrics) + " |",
              "|" + "---|" * (3 + 2 * len(metrics))]
    for t in rep["points"]:
        g = t["better_at_equal_rate"][first]
        lines.append(f"| {t['point']} | {t['lambda']:.5g} | {t['bpp']:.4f} | "
                     + " | ".join(f"{t[m]:.4f}" for m in metrics) + " | "
                     + " | ".join(f"{g[m]:+.4f}" if m in g else "–" for m in metrics) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="a plic eval --out folder with every rung swept")
    ap.add_argument("--low", required=True, help="the low rung's codec name in the folder (plic:<file or name>)")
    ap.add_argument("--mid", action="append", default=[],
                    help="a middle rung's codec name (repeatable, in rising order of rate)")
    ap.add_argument("--high", required=True, help="the top rung's codec name (the model the ladder replaces)")
    ap.add_argument("--switch", type=float, action="append", required=True,
                    help="lambda up to which a rung codes (one per rung below the top, in rising order)")
    ap.add_argument("--against", action="append", default=[],
                    help="a codec in the folder to compare with (repeatable; default: --high alone)")
    ap.add_argument("--out", type=Path, required=True, help="report path without suffix (.json and .md)")
    args = ap.parse_args()
    try:
        curves = curves_of(args.folder)
        rungs = [args.low, *args.mid, args.high]
        missing = [c for c in (*rungs, *args.against) if c not in curves]
        if missing:
            raise PlicError(f"not in {args.folder}: {', '.join(missing)} (there: {', '.join(curves)})")
        rep = report(curves, rungs, args.switch, shlex.join(["python", *sys.argv]), args.against)
    except PlicError as exc:
        sys.exit(f"ladder_curve: {exc}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(rep, indent=1) + "\n")
    text = markdown(rep)
    args.out.with_suffix(".md").write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
