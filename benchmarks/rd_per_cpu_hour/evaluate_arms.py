"""Issue 20: Kodak R-D of each equal-time training arm, from real files, against the shipped default.

    python benchmarks/rd_per_cpu_hour/evaluate_arms.py --out benchmarks/rd_per_cpu_hour/results \\
        --arm anchor runs/r20/anchor.safetensors runs/r20/anchor \\
        --arm plic-rd runs/r20/plic_rd/model.safetensors runs/r20/plic_rd

Each arm is NAME WEIGHTS RUN_FOLDER (its log gives the steps and the wall-clock time spent).
A fixed-rate arm codes every Kodak image at its lambda; a variable-rate one at each ``--lambdas``.
The reference (the shipped default model alone, ``plic:hyperprior`` without the rungs below it, as in
every arm table here) codes at the same lambdas. For each arm:
mean bpp (file bytes), PSNR and MS-SSIM, and the rate it needs against the reference at equal
quality: BD-rates (PSNR and MS-SSIM) over the range both curves cover when the arm has a curve, and
for every point the reference's rate interpolated (PCHIP over PSNR -> log bpp) at that point's PSNR,
which shows where on the curve an arm gains or loses. Results
per model and image set are cached in OUT/points/<fingerprint>-<image set>.json, so a rerun codes only new weights.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from pytorch_msssim import ms_ssim
from scipy.interpolate import PchipInterpolator

from plic import bitstream
from plic.codec import Codec, psnr
from plic.eval.bjontegaard import bd_rate
from plic.image_io import quantize_rgb, read_image
from plic.ladder import shipped_codec
from plic.zoo import load_weights

ROOT = Path(__file__).resolve().parents[2]


def code_kodak(codec: Codec, lambdas: list[float], images: list[Path]) -> list[dict]:
    out = []
    pictures = [read_image(p) for p in images]
    for lam in lambdas:
        bpps, mses, psnrs, msssims, t0 = [], [], [], [], time.perf_counter()
        for img in pictures:
            enc = codec.encode(img, lmbda=lam)
            rec = quantize_rgb(codec.decode_file(bitstream.parse(enc.data))).cpu()
            bpps.append(8 * len(enc.data) / (img.height * img.width))
            psnrs.append(psnr(rec, img.rgb))
            mses.append(float(((rec.double() - img.rgb.double()) ** 2).mean()))
            msssims.append(float(ms_ssim(rec.float(), img.rgb.float(), data_range=1.0)))
        bpp, mse = float(np.mean(bpps)), float(np.mean(mses))
        out.append({"lambda": lam, "bpp": bpp, "mse": mse, "psnr": float(np.mean(psnrs)),
                    # the Lagrangian every arm minimises, at the lambda it was coded with
                    "rd_cost": bpp + lam * 255**2 * mse,
                    "ms_ssim": float(np.mean(msssims)), "seconds": time.perf_counter() - t0})
        print(f"  lambda {lam:g}: {out[-1]['bpp']:.4f} bpp, {out[-1]['psnr']:.2f} dB", flush=True)
    return out


def rate_at(points: list[dict], at: float, metric: str = "psnr") -> float:
    """The reference's bpp at quality ``at`` (PCHIP of log bpp over ``metric``); NaN outside its curve."""
    p = sorted(points, key=lambda q: q[metric])
    x = np.array([q[metric] for q in p])
    if not x[0] <= at <= x[-1]:
        return float("nan")
    return float(np.exp(PchipInterpolator(x, np.log([q["bpp"] for q in p]))(at)))


def rate_vs(ref: list[dict], points: list[dict], metric: str) -> float:
    """Rate (percent) against the reference at equal ``metric``: a BD-rate for a curve, the
    interpolated reference rate for one point; NaN where the curves do not overlap."""
    if len(points) == 1:
        return 100 * (points[0]["bpp"] / rate_at(ref, points[0][metric], metric) - 1)
    try:
        return bd_rate([p["bpp"] for p in ref], [p[metric] for p in ref],
                       [p["bpp"] for p in points], [p[metric] for p in points])
    except ValueError:
        return float("nan")


def run_log(folder: Path) -> dict:
    """Steps and seconds the arm trained for: plic's train.csv, or the anchor script's log.csv."""
    if (folder / "train.csv").is_file():
        rows = list(csv.DictReader((folder / "train.csv").open()))
        # a resumed run's clock starts again at 0: add up the segments
        total, last = 0.0, 0.0
        for r in rows:
            t = float(r["seconds"])
            if t < last:
                total += last
            last = t
        return {"steps": int(rows[-1]["step"]), "seconds": total + last}
    rows = list(csv.DictReader((folder / "log.csv").open()))
    return {"steps": int(rows[-1]["steps"]), "seconds": float(rows[-1]["seconds"])}


def evaluate(codec: Codec, lambdas: list[float], images: list[Path], cache: Path) -> list[dict]:
    m = codec.model
    lams = lambdas if m.variable_rate else [float(np.float32(m.lambda_max))]
    # keyed by weights and image set: a run on a few images must not stand in for all of Kodak
    images_digest = hashlib.sha256("\n".join(p.name for p in images).encode()).hexdigest()[:8]
    path = cache / f"{m.fingerprint.hex()[:16]}-{images_digest}.json"
    done = json.loads(path.read_text()) if path.is_file() else []
    have = {round(d["lambda"], 8) for d in done}
    todo = [lam for lam in lams if round(lam, 8) not in have]
    if todo:
        done = sorted(done + code_kodak(codec, todo, images), key=lambda d: d["lambda"])
        path.write_text(json.dumps(done, indent=1))
    return [d for d in done if round(d["lambda"], 8) in {round(x, 8) for x in lams}]


def _finite(x: float):
    return None if math.isnan(x) else x


def _pct(x) -> str:
    return "–" if x is None else f"{x:+.1f} %"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "kodak"))
    ap.add_argument("--arm", nargs=3, action="append", metavar=("NAME", "WEIGHTS", "RUN"), required=True)
    ap.add_argument("--lambdas", default="0.0018,0.0035,0.0067,0.013,0.025,0.0483",
                    help="lambdas of variable-rate arms")
    ap.add_argument("--reference-lambdas", default="0.0001,0.0003,0.0009,0.0018,0.0035,0.0067,0.013,0.025",
                    help="the default's curve (down to its lowest lambda, where undertrained arms land)")
    ap.add_argument("--reference", help="weights of the reference [default: the shipped plic:hyperprior]; "
                    "name the old file when the arms are to replace it")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    images = sorted(Path(args.data).glob("*.png"))
    lambdas = [float(np.float32(x)) for x in args.lambdas.split(",")]
    out = Path(args.out)
    (out / "points").mkdir(parents=True, exist_ok=True)
    print(f"reference: {args.reference or 'plic:hyperprior (the model alone, without the rungs below it)'}")
    reference = (Codec(load_weights(args.reference), exact=False) if args.reference
                 else shipped_codec("hyperprior", exact=False, ladder=False))
    ref = evaluate(reference,
                   [float(np.float32(x)) for x in args.reference_lambdas.split(",")], images, out / "points")
    rows = []
    for name, weights, run in args.arm:
        print(f"{name}: {weights}")
        points = evaluate(Codec(load_weights(weights), exact=False), lambdas, images, out / "points")
        for p in points:
            # where on the curve an arm gains or loses: the rate of this point against the default's
            p["rate_vs_default_percent"] = _finite(rate_vs(ref, [p], "psnr"))
        rows.append({"arm": name, "weights": weights, **run_log(Path(run)), "points": points,
                     "rate_vs_default_percent": _finite(rate_vs(ref, points, "psnr")),
                     "rate_vs_default_ms_ssim_percent": _finite(rate_vs(ref, points, "ms_ssim"))})
    (out / "arms.json").write_text(json.dumps({"images": len(images), "reference": ref, "arms": rows}, indent=1))
    lines = ["| arm | steps | minutes | lambda | bpp | PSNR | MS-SSIM | R + lambda D | rate vs default at this "
             "point's PSNR | BD-rate vs default: PSNR, MS-SSIM |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        bd = f"{_pct(r['rate_vs_default_percent'])}, {_pct(r['rate_vs_default_ms_ssim_percent'])}"
        for i, p in enumerate(r["points"]):
            head = f"| {r['arm']} | {r['steps']} | {r['seconds'] / 60:.1f} |" if i == 0 else "| | | |"
            lines.append(f"{head} {p['lambda']:g} | {p['bpp']:.4f} | {p['psnr']:.2f} | {p['ms_ssim']:.4f} | "
                         f"{p['rd_cost']:.4f} | {_pct(p['rate_vs_default_percent'])} | {bd if i == 0 else ''} |")
    for p in ref:
        lines.append(f"| reference ({reference.model.fingerprint.hex()[:16]}) | | | {p['lambda']:g} | {p['bpp']:.4f} | {p['psnr']:.2f} | "
                     f"{p['ms_ssim']:.4f} | {p['rd_cost']:.4f} | 0 | |")
    (out / "arms.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
