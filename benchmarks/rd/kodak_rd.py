"""Kodak rate-distortion of plic's default model (alone: without the rungs ``plic compress`` codes the
low and middle qualities with since 2026-12-07; ``plic eval`` measures the codec as shipped) next to JPEG and WebP.

    python benchmarks/rd/kodak_rd.py --data ../shared/datasets/kodak --out benchmarks/rd/kodak_rd

Every point is a real file: plic's .plic bytes, Pillow's JPEG (4:2:0, the
libjpeg default, optimised Huffman tables) and WebP (method 6) bytes. bpp is
8 * bytes / pixels; PSNR is RGB PSNR of the 8-bit decoded image, averaged over
images (CompressAI's convention). Writes <out>.json (per image) and <out>.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from plic import bitstream, zoo
from plic.codec import Codec, psnr
from plic.eval.bjontegaard import bd_rate, interpolate_metric
from plic.eval.codecs import classical_codec
from plic.image_io import quantize_rgb, read_image
from plic.metrics.pixel import psnr_rgb

JPEG_Q = [1, 2, 3, 5, 8, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95]
WEBP_Q = [0, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95]


def classical_point(codec, rgb: np.ndarray, q: int) -> dict:
    """One real file of a classical codec from plic.eval (the same encoders plic eval uses)."""
    t0 = time.perf_counter()
    data = codec.encode(rgb, q)
    t1 = time.perf_counter()
    rec = codec.decode(data)
    t2 = time.perf_counter()
    return {"bpp": 8 * len(data) / (rgb.shape[0] * rgb.shape[1]), "psnr": psnr_rgb(rgb, rec),
            "encode_s": t1 - t0, "decode_s": t2 - t1}


def mean_curve(rows: list, key: str) -> list:
    settings = sorted({r[key] for r in rows})
    out = []
    for s in settings:
        sel = [r for r in rows if r[key] == s]
        out.append({key: s, "bpp": float(np.mean([r["bpp"] for r in sel])),
                    "psnr": float(np.mean([r["psnr"] for r in sel])),
                    "encode_s": float(np.median([r["encode_s"] for r in sel])),
                    "decode_s": float(np.median([r["decode_s"] for r in sel]))})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/datasets/kodak")
    ap.add_argument("--out", default="benchmarks/rd/kodak_rd")
    ap.add_argument("--model-path", help="weights (default: the shipped model)")
    ap.add_argument("--qualities", default="1,2,3,4,5,6,7,8")
    args = ap.parse_args()
    torch.set_num_threads(2)
    files = sorted(Path(args.data).glob("*.png"))
    if not files:
        sys.exit(f"no PNG images in {args.data}")
    model = zoo.load_weights(args.model_path) if args.model_path else zoo.load_model(zoo.DEFAULT_MODEL)
    codec = Codec(model)
    qualities = [float(q) for q in args.qualities.split(",")]
    jpeg, webp = classical_codec("jpeg"), classical_codec("webp")
    rows = {"plic": [], "jpeg": [], "webp": []}
    for i, path in enumerate(files):
        img = read_image(path)
        rgb = np.asarray(Image.open(path).convert("RGB"))
        for q in qualities:
            enc = codec.encode(img, quality=q)
            t0 = time.perf_counter()
            rec = codec.decode_file(bitstream.parse(enc.data))
            dec_s = time.perf_counter() - t0
            rows["plic"].append({"image": path.name, "quality": q, "bpp": enc.bpp,
                                 "psnr": psnr(quantize_rgb(rec), img.rgb),
                                 "encode_s": enc.seconds, "decode_s": dec_s})
        for q in JPEG_Q:
            rows["jpeg"].append({"image": path.name, "quality": q, **classical_point(jpeg, rgb, q)})
        for q in WEBP_Q:
            rows["webp"].append({"image": path.name, "quality": q, **classical_point(webp, rgb, q)})
        print(f"[{i + 1}/{len(files)}] {path.name}", file=sys.stderr)

    curves = {k: mean_curve(v, "quality") for k, v in rows.items()}
    p = curves["plic"]
    summary = {"bd_rate_psnr_vs_jpeg": bd_rate([c["bpp"] for c in curves["jpeg"]], [c["psnr"] for c in curves["jpeg"]],
                                               [c["bpp"] for c in p], [c["psnr"] for c in p]),
               "bd_rate_psnr_vs_webp": bd_rate([c["bpp"] for c in curves["webp"]], [c["psnr"] for c in curves["webp"]],
                                               [c["bpp"] for c in p], [c["psnr"] for c in p])}
    for c in p:
        for other in ("jpeg", "webp"):
            ref = interpolate_metric([x["bpp"] for x in curves[other]], [x["psnr"] for x in curves[other]], c["bpp"])
            c[f"{other}_psnr_at_same_bpp"] = ref
            c[f"gain_over_{other}_db"] = c["psnr"] - ref
    meta = {
        "command": "python benchmarks/rd/kodak_rd.py --data ../shared/datasets/kodak --out benchmarks/rd/kodak_rd",
        "model": model.registry_name, "fingerprint": model.fingerprint.hex(), "config": model.config(),
        "images": len(files), "torch": torch.__version__, "pillow": Image.__version__,
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "date": time.strftime("%Y-%m-%d"),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "summary": summary, "curves": curves,
                                                    "per_image": rows}, indent=1))
    lines = [
        "# Kodak: plic default model vs JPEG and WebP (real files)", "",
        f"Command: `{meta['command']}`  ",
        f"Model: `{meta['model']}` {meta['config']}, weights `{meta['fingerprint']}`; "
        f"{meta['images']} images; torch {meta['torch']}, Pillow {meta['pillow']}; {meta['machine']}; {meta['date']}.", "",
        "bpp = 8 x file bytes / pixels; PSNR = RGB PSNR of the 8-bit decoded image, mean over images.", "",
        f"BD-rate (PSNR) of plic vs JPEG: **{summary['bd_rate_psnr_vs_jpeg']:+.1f}%**, "
        f"vs WebP: **{summary['bd_rate_psnr_vs_webp']:+.1f}%** (negative = fewer bits).", "",
        "| plic quality | bpp | PSNR (dB) | JPEG at same bpp | gain vs JPEG | WebP at same bpp | gain vs WebP | encode s | decode s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in p:
        lines.append(f"| {c['quality']:g} | {c['bpp']:.4f} | {c['psnr']:.2f} | {c['jpeg_psnr_at_same_bpp']:.2f} | "
                     f"{c['gain_over_jpeg_db']:+.2f} | {c['webp_psnr_at_same_bpp']:.2f} | {c['gain_over_webp_db']:+.2f} | "
                     f"{c['encode_s']:.2f} | {c['decode_s']:.2f} |")
    for name in ("jpeg", "webp"):
        lines += ["", f"{name.upper()} (Pillow), mean over images:", "", "| quality | bpp | PSNR (dB) |", "|---|---|---|"]
        lines += [f"| {c['quality']} | {c['bpp']:.4f} | {c['psnr']:.2f} |" for c in curves[name]]
    lines.append("")
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
