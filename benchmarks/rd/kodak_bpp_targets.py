"""How closely ``plic compress --bpp`` hits a target rate on Kodak.

    python benchmarks/rd/kodak_bpp_targets.py --data ../shared/datasets/kodak --out benchmarks/rd/kodak_bpp_targets

For every image and target, the lambda of the default (variable-rate) model
is searched on real file sizes, as ``plic compress --bpp`` does (``--model`` names one model; the
shipped default codes since 2026-12-07 as a ladder: the lowest rung whose file at its switch reaches
a target searches it); the
achieved bpp is 8 * file bytes / pixels. Targets the model cannot reach for an
image are counted separately, with the reachable range. Writes <out>.json (per
image) and <out>.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from plic import bitstream, zoo
from plic.codec import Codec
from plic.errors import PlicError
from plic.image_io import read_image

TARGETS = [0.05, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 1.5]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/datasets/kodak")
    ap.add_argument("--out", default="benchmarks/rd/kodak_bpp_targets")
    ap.add_argument("--model", default="hyperprior")
    ap.add_argument("--limit", type=int, default=0, help="first N images only")
    args = ap.parse_args()

    codec = Codec(zoo.load_model(args.model))
    files = sorted(Path(args.data).glob("*.png"))[: args.limit or None]
    if not files:
        sys.exit(f"no PNG images in {args.data}")
    rows = []
    for path in files:
        img = read_image(path)
        for target in TARGETS:
            t0 = time.perf_counter()
            try:
                enc = codec.encode_to_bpp(img, target)
            except PlicError as exc:
                rows.append({"image": path.name, "target": target, "error": str(exc)})
                continue
            lam = bitstream.parse(enc.data).header.lmbda
            rows.append({"image": path.name, "target": target, "bpp": enc.bpp, "lambda": lam,
                         "rel_error": enc.bpp / target - 1, "seconds": time.perf_counter() - t0})
        print(path.name, flush=True)

    summary = []
    for target in TARGETS:
        ok = [r for r in rows if r["target"] == target and "bpp" in r]
        err = np.array([abs(r["rel_error"]) for r in ok])
        summary.append({
            "target": target, "reached": len(ok),
            "unreachable": sum(1 for r in rows if r["target"] == target and "error" in r),
            "mean_bpp": float(np.mean([r["bpp"] for r in ok])) if ok else None,
            "mean_abs_rel_error": float(err.mean()) if ok else None,
            "max_abs_rel_error": float(err.max()) if ok else None,
            "within_3pct": int((err <= 0.03).sum()),
            "median_seconds": float(np.median([r["seconds"] for r in ok])) if ok else None,
        })
    model = codec.model
    meta = {
        "command": "python benchmarks/rd/kodak_bpp_targets.py " + " ".join(sys.argv[1:]),
        "model": args.model, "fingerprint": model.fingerprint.hex(),
        "lambda_range": [model.lambda_min, model.lambda_max], "images": len(files),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}",
    }
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "summary": summary, "rows": rows}, indent=1))
    lines = [
        "# `plic compress --bpp` on Kodak: achieved vs target bpp",
        "",
        f"Command: `{meta['command']}`. Model `{args.model}` (fingerprint {meta['fingerprint']}, "
        f"lambda {model.lambda_min:g}..{model.lambda_max:g}), {len(files)} images, real files.",
        "",
        "| target bpp | images reached | unreachable | mean bpp | mean abs. error | max abs. error | within 3 % | median time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        if s["reached"]:
            lines.append(f"| {s['target']} | {s['reached']} | {s['unreachable']} | {s['mean_bpp']:.4f} | "
                         f"{100 * s['mean_abs_rel_error']:.2f} % | {100 * s['max_abs_rel_error']:.2f} % | "
                         f"{s['within_3pct']}/{s['reached']} | {s['median_seconds']:.2f} s |")
        else:
            lines.append(f"| {s['target']} | 0 | {s['unreachable']} | - | - | - | - | - |")
    unreachable = [r for r in rows if "error" in r]
    if unreachable:
        lines += ["", "Unreachable targets (the model's range for that image):", ""]
        lines += [f"- {r['image']} at {r['target']} bpp: {r['error']}" for r in unreachable]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
