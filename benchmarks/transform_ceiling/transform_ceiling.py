"""Where a hyperprior's quality saturates: its transforms with and without quantization, on Kodak.

    python benchmarks/transform_ceiling/transform_ceiling.py --data ../shared/datasets/kodak \
        --out benchmarks/transform_ceiling/transform_ceiling --weights plic/weights/hyperprior-mse-vr.safetensors \
        [--weights widened.safetensors --old-M 96]

For each weight file and image: the PSNR of ``g_s(g_a(x))`` with no
quantization at all (the ceiling no rate can pass), and at a few lambdas the
model's own estimate (eval-mode forward: y rounded around its predicted mean,
bpp from the likelihoods; no file is written, so these are not R-D results).
With ``--old-M`` (a model widened by ``scripts/widen_latent.py``) it also
reports how many of those bits the added channels carry and what zeroing them
costs: whether training has put the new channels to use.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from plic import zoo
from plic.codec import psnr
from plic.errors import PlicError
from plic.image_io import read_image


@torch.no_grad()
def measure(model, x: torch.Tensor, lambdas, old_m: int | None) -> dict:
    pad_h, pad_w = (-x.shape[2]) % model.stride, (-x.shape[3]) % model.stride
    xp = torch.nn.functional.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    crop = (slice(None), slice(None), slice(0, x.shape[2]), slice(0, x.shape[3]))
    row = {"no_quantization_psnr": psnr(model.g_s(model.g_a(xp))[crop].clamp(0, 1), x)}
    pixels = x.shape[2] * x.shape[3]
    for lam in lambdas:
        out = model(xp, lam)
        bits_y = -out["likelihoods"]["y"].log2().sum((0, 2, 3))
        bits_z = -out["likelihoods"]["z"].log2().sum()
        r = {"bpp": float(bits_y.sum() + bits_z) / pixels, "psnr": psnr(out["x_hat"][crop].clamp(0, 1), x)}
        if old_m is not None:
            y_hat = out["y_hat"].clone()
            y_hat[:, old_m:] = 0
            r["bpp_new_channels"] = float(bits_y[old_m:].sum()) / pixels
            r["psnr_new_channels_zeroed"] = psnr(model.g_s(y_hat)[crop].clamp(0, 1), x)
        row[f"{lam:g}"] = r
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/datasets/kodak")
    ap.add_argument("--out", default="benchmarks/transform_ceiling/transform_ceiling")
    ap.add_argument("--weights", action="append", required=True, help="weight file (repeatable)")
    ap.add_argument("--old-M", type=int, help="latent channels before widening (for widened models)")
    ap.add_argument("--lambdas", default="0.0067,0.08,0.45")
    ap.add_argument("--limit", type=int, default=24)
    args = ap.parse_args()
    files = sorted(Path(args.data).glob("*.png"))[: args.limit]
    if not files:
        sys.exit(f"no PNG images in {args.data}")
    lambdas = [float(v) for v in args.lambdas.split(",")]
    result = {"command": "python benchmarks/transform_ceiling/transform_ceiling.py " + " ".join(sys.argv[1:]),
              "images": [p.name for p in files], "models": {}}
    models = {}
    for path in args.weights:  # every model loaded and checked before the first image is measured
        try:
            models[path] = zoo.load_weights(path).eval()
        except PlicError as exc:
            sys.exit(str(exc))
        if getattr(models[path], "rate_film", False):
            sys.exit(f"{path}: the transform ceiling has no rate to tell a rate-conditioned synthesis (--rate-film)")
    images = {p.name: read_image(p).rgb.float() for p in files}
    for path, model in models.items():
        old_m = args.old_M if args.old_M is not None and model.M > args.old_M else None
        rows = {name: measure(model, x, lambdas, old_m) for name, x in images.items()}
        result["models"][path] = {"fingerprint": model.fingerprint.hex(), "N": model.N, "M": model.M,
                                  "transform_channels": getattr(model, "transform_channels", model.N), "rows": rows}
        print(f"{path}: no-quantization PSNR {np.mean([r['no_quantization_psnr'] for r in rows.values()]):.2f} dB",
              flush=True)
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    lines = ["# Transform ceiling on Kodak", "", f"Command: `{result['command']}`; {len(files)} images. "
             "Model estimates (likelihood bpp, eval-mode rounding), not real files.", "",
             "| weights | N, M (transforms' width) | no quantization | " + " | ".join(f"lambda {lam:g}" for lam in lambdas) + " |",
             "|---|---|---|" + "---|" * len(lambdas)]
    for path, m in result["models"].items():
        rows = list(m["rows"].values())
        cells = []
        for lam in lambdas:
            rs = [r[f"{lam:g}"] for r in rows]
            cell = f"{np.mean([r['bpp'] for r in rs]):.3f} bpp / {np.mean([r['psnr'] for r in rs]):.2f} dB"
            if "bpp_new_channels" in rs[0]:
                cell += (f" (new channels {np.mean([r['bpp_new_channels'] for r in rs]):.3f} bpp; zeroed "
                         f"{np.mean([r['psnr_new_channels_zeroed'] for r in rs]):.2f} dB)")
            cells.append(cell)
        width = m.get("transform_channels", m["N"])
        lines.append(f"| `{path}` ({m['fingerprint']}) | {m['N']}, {m['M']}" + (f" ({width})" if width != m["N"] else "")
                     + " | "
                     f"{np.mean([r['no_quantization_psnr'] for r in rows]):.2f} dB | " + " | ".join(cells) + " |")
    lines += ["", "Per image, no quantization (dB):", "",
              "| image | " + " | ".join(f"`{Path(p).name}`" for p in result["models"]) + " |",
              "|---|" + "---|" * len(result["models"])]
    for name in result["images"]:
        lines.append(f"| {name} | " + " | ".join(f"{m['rows'][name]['no_quantization_psnr']:.2f}"
                                                for m in result["models"].values()) + " |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
