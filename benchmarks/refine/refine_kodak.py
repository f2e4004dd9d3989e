"""SGA+ and SNIC with plic's default model on Kodak: true R-D loss over steps, BD-rates, timing.

    python benchmarks/refine/refine_kodak.py --data ../shared/datasets/kodak --out benchmarks/refine/refine_kodak \
        --images 2 --steps 200

Three experiments, all ending in real files (bpp from file sizes, PSNR and
MS-SSIM of the decoded image against the original):

1. ``methods``: every rounding at one lambda; the true (hard-rounded) loss
   ``lambda * 255^2 * MSE + bpp`` every 10 steps (SGA+'s Figure 2 / Table 1
   setting) and the loss of the real file at the end;
2. ``rd``: no refinement, SGA+ (SSL) latents, and SNIC substitute images
   (MSE objective) at several lambdas -> BD-rates against no refinement;
   then an MS-SSIM objective (``--optimize-for ms-ssim``) scored on MS-SSIM;
3. ``targets``: SNIC with a target rate; achieved vs target bpp, and the
   spread over repeated runs with different seeds.

Writes <out>.json (everything), <out>.md (tables) and <out>.png (loss curves).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from plic import bitstream, zoo
from plic.codec import Codec
from plic.encode import OutOfReach, Rate, Refinement, encode_image
from plic.eval.bjontegaard import bd_rate
from plic.image_io import PlanarImage, quantize_rgb, read_image
from plic.refine import Objective, Settings
from plic.refine.optimize import optimise

METHODS = ["ste", "noise", "atanh", "linear", "cosine", "ssl", "ssl3"]


def scores(codec: Codec, img: PlanarImage, data: bytes, lmbda: float) -> dict:
    from pytorch_msssim import ms_ssim

    rec = quantize_rgb(codec.decode_file(bitstream.parse(data))).cpu()
    mse = float(((rec - img.rgb) ** 2).mean())
    bpp = 8 * len(data) / (img.height * img.width)
    return {"bpp": bpp, "psnr": -10 * math.log10(mse), "mse": mse,
            "ms_ssim": float(ms_ssim(rec, img.rgb, data_range=1.0)),
            "loss": lmbda * 255**2 * mse + bpp}


def ms_db(s: float) -> float:
    return -10 * math.log10(max(1 - s, 1e-12))


def mean_of(rows, key):
    return float(np.mean([r[key] for r in rows]))


def main() -> None:  # noqa: C901
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/datasets/kodak")
    ap.add_argument("--out", default="benchmarks/refine/refine_kodak")
    ap.add_argument("--images", type=int, default=2, help="N Kodak images")
    ap.add_argument("--skip", type=int, default=0, help="start after the first K images")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--snic-steps", type=int, default=100)
    ap.add_argument("--lmbda", type=float, default=0.0067, help="lambda of the methods experiment")
    ap.add_argument("--lambdas", default="0.002,0.0067,0.025,0.08")
    ap.add_argument("--targets", default="0.15,0.3")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default="methods,rd,targets")
    ap.add_argument("--plans", default="sga+/mse,snic/mse,snic/ms-ssim", help="rd experiment: plan/distortion list")
    ap.add_argument("--merge", nargs="+", metavar="JSON",
                    help="pool the rounding, R-D and target-rate rows of earlier runs (image chunks made with --skip) "
                         "into --out; runs nothing")
    args = ap.parse_args()
    if args.merge:
        merge([Path(m) for m in args.merge], Path(args.out))
        return

    torch.set_num_threads(max(1, torch.get_num_threads()))
    codec = Codec(zoo.load_model("hyperprior"))
    files = sorted(Path(args.data).glob("*.png"))[args.skip: args.skip + args.images]
    if not files:
        sys.exit(f"no PNG images in {args.data}")
    images = {p.name: read_image(p) for p in files}
    todo = set(args.only.split(","))
    result = {"meta": {
        "command": "python benchmarks/refine/refine_kodak.py " + " ".join(sys.argv[1:]),
        "model": "hyperprior", "fingerprint": codec.model.fingerprint.hex(), "images": list(images),
        "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} threads, torch {torch.__version__}",
    }}

    if "methods" in todo:
        lam = args.lmbda
        rows = []
        for name, img in images.items():
            base = scores(codec, img, codec.encode(img, lmbda=lam).data, lam)
            rows.append({"image": name, "method": "none", **base, "trace": [], "seconds_per_step": 0.0})
            for method in METHODS:
                res = optimise(codec, img, lam, Objective(lam), Settings(steps=args.steps, rounding=method,
                                                                         trace_every=10))
                f = codec.encode_planes(img, lam, latent=res.y, z=res.z)
                rows.append({"image": name, "method": method, **scores(codec, img, bitstream.pack(f), lam),
                             "trace": res.trace, "seconds_per_step": res.seconds_per_step})
                print(f"methods {name} {method}: {rows[-1]['loss']:.4f} (none {base['loss']:.4f})", flush=True)
        result["methods"] = {"lambda": lam, "steps": args.steps, "rows": rows}

    if "rd" in todo:
        lambdas = [float(v) for v in args.lambdas.split(",")]
        rows = []
        for name, img in images.items():
            for lam in lambdas:
                rows.append({"image": name, "lambda": lam, "plan": "none",
                             **scores(codec, img, codec.encode(img, lmbda=lam).data, lam)})
                for spec in args.plans.split(","):
                    plan, metric = spec.split("/")
                    steps = args.snic_steps if plan.startswith("snic") else args.steps
                    t0 = time.perf_counter()
                    out = encode_image(codec, img, Rate(lmbda=lam), Refinement(plan, steps, metric=metric))
                    rows.append({"image": name, "lambda": lam, "plan": f"{plan}/{metric}", "steps": steps,
                                 "seconds": time.perf_counter() - t0,
                                 **scores(codec, img, out.result.data, lam)})
                    print(f"rd {name} {lam} {plan}/{metric}: {rows[-1]['bpp']:.4f} bpp {rows[-1]['psnr']:.2f} dB",
                          flush=True)
        result["rd"] = {"lambdas": lambdas, "rows": rows}

    if "targets" in todo:
        targets = [float(v) for v in args.targets.split(",")]
        rows = []
        for name, img in images.items():
            for target in targets:
                for seed in range(args.repeats):
                    t0 = time.perf_counter()
                    try:  # the target's lambda by search, then a substitute aimed at the target
                        out = encode_image(codec, img, Rate(bpp=target), Refinement("snic", args.snic_steps, seed=seed))
                    except OutOfReach as exc:
                        print(f"target {name} {target} seed {seed}: {exc}", flush=True)
                        continue
                    start = out.before
                    lam = bitstream.parse(start.data).header.lmbda
                    rows.append({"image": name, "target": target, "seed": seed, "lambda": lam,
                                 "search_bpp": start.bpp, "search_psnr": scores(codec, img, start.data, lam)["psnr"],
                                 "seconds": time.perf_counter() - t0,
                                 **scores(codec, img, out.result.data, lam)})
                    print(f"target {name} {target} seed {seed}: {rows[-1]['bpp']:.4f}", flush=True)
        result["targets"] = {"rows": rows, "steps": args.snic_steps}

    out = Path(args.out)
    previous = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").exists() else {}
    previous.update(result)  # experiments run separately (--only) accumulate
    out.with_suffix(".json").write_text(json.dumps(previous, indent=1))
    write_report(previous, out)


def merge(parts: list, out: Path) -> None:
    """One report over several runs (image chunks): pools the rounding, R-D and target-rate rows they all have.

    BD-rates are then those of the pooled mean curve.
    """
    runs = [json.loads(p.read_text()) for p in parts]
    kinds = [k for k in ("methods", "rd", "targets") if all(k in r for r in runs)]
    if not kinds:
        sys.exit("--merge: the runs share no experiment (--only methods, rd or targets)")
    if len({r["meta"]["fingerprint"] for r in runs}) != 1:
        sys.exit("--merge: the runs used different models")
    if "rd" in kinds and any(r["rd"]["lambdas"] != runs[0]["rd"]["lambdas"] for r in runs):
        sys.exit("--merge: the R-D runs differ in lambdas")
    if "methods" in kinds and len({(r["methods"]["lambda"], r["methods"]["steps"]) for r in runs}) != 1:
        sys.exit("--merge: the rounding runs differ in lambda or steps")
    if "targets" in kinds and len({r["targets"]["steps"] for r in runs}) != 1:
        sys.exit("--merge: the target-rate runs differ in steps")
    images = [im for r in runs for im in r["meta"]["images"]]
    if len(set(images)) != len(images):
        sys.exit("--merge: an image appears in more than one run")
    result = {"meta": {**runs[0]["meta"], "images": images,
                       "machine": "; ".join(sorted({r["meta"]["machine"] for r in runs})),
                       "command": "python benchmarks/refine/refine_kodak.py --merge " + " ".join(map(str, parts))
                                  + f" --out {out}; the runs: " + "; ".join(r["meta"]["command"] for r in runs)}}
    for kind in kinds:
        result[kind] = {**runs[0][kind], "rows": [row for r in runs for row in r[kind]["rows"]]}
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    write_report(result, out)


def write_report(result: dict, out: Path) -> None:  # noqa: C901
    lines = ["# SGA+ and SNIC on Kodak with plic's default model", ""]
    meta = result["meta"]
    lines += [f"Command: `{meta['command']}`; model fingerprint {meta['fingerprint']}; images "
              f"{', '.join(meta['images'])}; {meta['machine']}. Every number is from a real file.", ""]
    if "methods" in result:
        m = result["methods"]
        rows = m["rows"]
        lines += [f"## Roundings at lambda {m['lambda']}, {m['steps']} steps (mean over images)", "",
                  "| method | true loss at step 0 | true loss at the end | real-file loss | bpp | PSNR | vs none | s/step |",
                  "|---|---|---|---|---|---|---|---|"]
        none = mean_of([r for r in rows if r["method"] == "none"], "loss")
        for method in ["none"] + METHODS:
            sel = [r for r in rows if r["method"] == method]
            if not sel:
                continue
            first = np.mean([r["trace"][0]["true_loss"] for r in sel]) if sel[0]["trace"] else float("nan")
            last = np.mean([r["trace"][-1]["true_loss"] for r in sel]) if sel[0]["trace"] else float("nan")
            loss = mean_of(sel, "loss")
            lines.append(f"| {method} | {first:.4f} | {last:.4f} | {loss:.4f} | {mean_of(sel, 'bpp'):.4f} | "
                         f"{mean_of(sel, 'psnr'):.2f} | {100 * (loss / none - 1):+.2f} % | "
                         f"{mean_of(sel, 'seconds_per_step'):.2f} |")
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(7, 4.5))
            for method in METHODS:
                sel = [r for r in rows if r["method"] == method]
                if not sel:
                    continue
                steps = [t["step"] for t in sel[0]["trace"]]
                ax.plot(steps, np.mean([[t["true_loss"] for t in r["trace"]] for r in sel], 0), label=method)
            ax.axhline(none, color="k", ls=":", label="no refinement (real file)")
            ax.set_xlabel("step")
            ax.set_ylabel("true R-D loss (hard rounding)")
            ax.set_title(f"Latent refinement, lambda {m['lambda']}, Kodak ({len(meta['images'])} images)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
            fig.tight_layout()
            fig.savefig(out.with_suffix(".png"), dpi=110)
            plt.close(fig)
            lines += ["", f"![true loss over steps]({out.with_suffix('.png').name})"]
        except ImportError:
            pass
        lines.append("")
    if "rd" in result:
        rows = result["rd"]["rows"]
        lambdas = result["rd"]["lambdas"]
        plans = sorted({r["plan"] for r in rows}, key=lambda p: (p != "none", p))
        curves = {}
        for plan in plans:
            curves[plan] = [(mean_of([r for r in rows if r["plan"] == plan and r["lambda"] == lam], "bpp"),
                             mean_of([r for r in rows if r["plan"] == plan and r["lambda"] == lam], "psnr"),
                             mean_of([r for r in rows if r["plan"] == plan and r["lambda"] == lam], "ms_ssim"))
                            for lam in lambdas]
        lines += ["## R-D with and without refinement (mean over images)", "",
                  "| plan | " + " | ".join(f"lambda {lam:g}" for lam in lambdas) + " | BD-rate PSNR | BD-rate MS-SSIM |",
                  "|---|" + "---|" * len(lambdas) + "---|---|"]
        base = curves["none"]
        for plan in plans:
            c = curves[plan]
            cells = [f"{b:.4f} bpp / {p:.2f} dB / {s:.4f}" for b, p, s in c]
            if plan == "none":
                bd_p = bd_s = "—"
            else:
                rates_a, rates_t = [b for b, _, _ in base], [b for b, _, _ in c]
                bd_p = f"{bd_rate(rates_a, [p for _, p, _ in base], rates_t, [p for _, p, _ in c]):+.2f} %"
                # MS-SSIM in dB, as CompressAI plots it
                bd_s = f"{bd_rate(rates_a, [ms_db(s) for _, _, s in base], rates_t, [ms_db(s) for _, _, s in c]):+.2f} %"
            lines.append(f"| {plan} | " + " | ".join(cells) + f" | {bd_p} | {bd_s} |")
        lines.append("")
    if "targets" in result:
        rows = result["targets"]["rows"]
        lines += [f"## SNIC target rate ({result['targets']['steps']} steps)", "",
                  "| target bpp | runs | mean achieved | mean abs. error | max abs. error | std over seeds (mean per image) "
                  "| lambda search alone: bpp | its PSNR | SNIC PSNR | s per image |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for target in sorted({r["target"] for r in rows}):
            sel = [r for r in rows if r["target"] == target]
            stds = [float(np.std([r["bpp"] for r in sel if r["image"] == im])) for im in {r["image"] for r in sel}]
            errors = [abs(r["bpp"] - target) for r in sel]
            lines.append(f"| {target} | {len(sel)} | {mean_of(sel, 'bpp'):.4f} | "
                         f"{np.mean(errors):.4f} | {np.max(errors):.4f} | {np.mean(stds):.5f} | "
                         f"{mean_of(sel, 'search_bpp'):.4f} | "
                         f"{mean_of(sel, 'search_psnr') if 'search_psnr' in sel[0] else float('nan'):.2f} | "
                         f"{mean_of(sel, 'psnr'):.2f} | {mean_of(sel, 'seconds'):.1f} |")
        lines.append("")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
