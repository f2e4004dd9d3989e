"""GAN hygiene: does the perceptual codec shift colours or give up fidelity on some images?

For every image and target rate of a ``plic eval`` folder that holds both the
MSE model and the perceptual one, decode both real files again and measure

* the mean colour error: per RGB channel, the mean of the decoded image
  minus the mean of the original (8-bit levels), the largest of the three in
  absolute value -- a global colour cast, which LPIPS and DISTS barely see;
* the PSNR drop of the perceptual file against the MSE file at the same rate;
* the high-frequency energy ratio: the mean squared Laplacian of the decode
  over the original's -- well above 1 where the codec invents texture
  (repeated patterns, ringing), well below 1 where it blurs;
* the grid score: the synthesis transform upsamples 16x in four 2x steps, so
  a pattern it repeats has the period 16 (or 8, 4, 2) and shows as peaks of
  the error's spectrum at multiples of 1/16 cycle per pixel. The score is the
  geometric mean, over those 255 frequencies, of the error's power there over
  the median power around each (7x7 bins): about 1 where nothing repeats.

Writes ``artefacts.json``, ``artefacts.md`` and, for the worst images, a crop
of original / MSE / perceptual around the place where the perceptual decode
differs most from the MSE one.

    python benchmarks/perceptual/artefacts.py --eval runs/perc_eval --mse plic:hyperprior \\
        --perceptual plic:hyperprior-perceptual --out benchmarks/perceptual
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import laplace, uniform_filter

from plic.eval.learned import make_codec
from plic.eval.runner import load_rgb, safe_name
from plic.files import atomic_write_bytes


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def colour_error(rec: np.ndarray, ref: np.ndarray) -> float:
    diff = rec.reshape(-1, 3).astype(np.float64).mean(0) - ref.reshape(-1, 3).astype(np.float64).mean(0)
    return float(diff[np.argmax(np.abs(diff))])


def hf_ratio(rec: np.ndarray, ref: np.ndarray) -> float:
    def energy(x):
        g = x.astype(np.float64).mean(2)
        return float(np.mean(laplace(g) ** 2))

    return energy(rec) / max(energy(ref), 1e-9)


def grid_score(rec: np.ndarray, ref: np.ndarray, period: int = 16) -> float:
    err = (rec.astype(np.float64) - ref.astype(np.float64)).mean(2)
    h, w = err.shape
    h, w = h - h % period, w - w % period  # whole periods, so the lattice falls on FFT bins
    power = np.abs(np.fft.fft2(err[:h, :w] - err[:h, :w].mean())) ** 2
    ratios = []
    for i in range(period):
        for j in range(period):
            if i == j == 0:
                continue
            fy, fx = i * h // period, j * w // period
            ys = [(fy + d) % h for d in range(-3, 4)]
            xs = [(fx + d) % w for d in range(-3, 4)]
            around = np.median(power[np.ix_(ys, xs)])
            ratios.append(power[fy, fx] / max(around, 1e-12))
    return float(np.exp(np.mean(np.log(np.maximum(ratios, 1e-12)))))


def worst_window(a: np.ndarray, b: np.ndarray, size: int):
    """Top-left corner of the ``size`` window where ``a`` and ``b`` differ most."""
    d = np.abs(a.astype(np.float64) - b.astype(np.float64)).mean(2)
    m = uniform_filter(d, size=size, mode="constant")
    h, w = d.shape
    half = size // 2
    m = m[half: h - half, half: w - half] if h > size and w > size else m
    y, x = np.unravel_index(np.argmax(m), m.shape)
    return int(min(y, max(0, h - size))), int(min(x, max(0, w - size)))


def crop_strip(tiles, labels, y, x, size, zoom: int = 1) -> Image.Image:
    """The ``size`` window at (x, y) of every tile side by side under its label, enlarged ``zoom`` times."""
    side = size * zoom
    strip = Image.new("RGB", (len(tiles) * (side + 4), side + 16), "white")
    for i, (t, label) in enumerate(zip(tiles, labels, strict=True)):
        crop = Image.fromarray(t[y: y + size, x: x + size])
        strip.paste(crop.resize((side, side), Image.NEAREST) if zoom > 1 else crop, (i * (side + 4), 16))
        ImageDraw.Draw(strip).text((i * (side + 4) + 2, 2), label, fill="black")
    return strip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--eval", required=True, type=Path, help="plic eval folder with both models at --targets")
    ap.add_argument("--mse", default="plic:hyperprior")
    ap.add_argument("--perceptual", default="plic:hyperprior-perceptual")
    ap.add_argument("--worst", type=int, default=3, help="crops for this many worst images")
    ap.add_argument("--crop", type=int, default=192)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/perceptual"))
    args = ap.parse_args()

    manifest = json.loads((args.eval / "manifest.json").read_text())
    data = Path(manifest["data"])
    mse_codec, per_codec = make_codec(args.mse), make_codec(args.perceptual)
    rows = []
    decoded = {}
    for target in manifest["targets"]:
        setting = f"bpp{target:g}"
        for image in manifest["images"]:
            stem = Path(image).stem
            files = [args.eval / "files" / safe_name(c) / setting / f"{stem}.plic" for c in (args.mse, args.perceptual)]
            if not all(f.is_file() for f in files):
                continue
            ref = load_rgb(data / image)
            a = mse_codec.decode(files[0].read_bytes())
            b = per_codec.decode(files[1].read_bytes())
            decoded[(stem, setting)] = (ref, a, b)
            rows.append({
                "image": stem, "setting": setting,
                "bpp_mse": 8 * files[0].stat().st_size / (ref.shape[0] * ref.shape[1]),
                "bpp_perceptual": 8 * files[1].stat().st_size / (ref.shape[0] * ref.shape[1]),
                "psnr_mse": psnr(a, ref), "psnr_perceptual": psnr(b, ref),
                "colour_error_mse": colour_error(a, ref), "colour_error_perceptual": colour_error(b, ref),
                "hf_ratio_mse": hf_ratio(a, ref), "hf_ratio_perceptual": hf_ratio(b, ref),
                "grid_mse": grid_score(a, ref), "grid_perceptual": grid_score(b, ref),
            })
    for r in rows:
        r["psnr_drop"] = r["psnr_mse"] - r["psnr_perceptual"]
    args.out.mkdir(parents=True, exist_ok=True)
    crops = args.out / "artefact_crops"
    crops.mkdir(exist_ok=True)
    lines = ["# GAN hygiene: colour shift, PSNR drop and invented texture of the perceptual model", "",
             f"`python benchmarks/perceptual/artefacts.py --eval {args.eval} --mse {args.mse} --perceptual "
             f"{args.perceptual} --out {args.out}`", "",
             "Per image and rate, both models' real files at the same target bpp. Colour error: the largest "
             "per-channel mean offset from the original (8-bit levels). HF ratio: mean squared Laplacian of the "
             "decode over the original's (1 = the original's amount of fine detail). Grid score: how far the error's "
             "spectrum peaks at multiples of 1/16 cycle per pixel, the synthesis transform's period (about 1 = no "
             "repeated pattern; geometric mean over the 255 frequencies of power over the local median).", ""]
    for setting in sorted({r["setting"] for r in rows}, key=lambda s: float(s[3:])):
        sub = [r for r in rows if r["setting"] == setting]
        mean = {k: float(np.mean([r[k] for r in sub])) for k in sub[0] if k not in ("image", "setting")}
        gridded = max(sub, key=lambda r: r["grid_perceptual"])
        lines += [f"## {setting[3:]} bpp ({len(sub)} images)", "",
                  "| | MSE model | perceptual |", "|---|---|---|",
                  f"| mean PSNR dB | {mean['psnr_mse']:.2f} | {mean['psnr_perceptual']:.2f} |",
                  f"| mean abs. colour error | {np.mean([abs(r['colour_error_mse']) for r in sub]):.2f} | "
                  f"{np.mean([abs(r['colour_error_perceptual']) for r in sub]):.2f} |",
                  f"| max abs. colour error | {max(abs(r['colour_error_mse']) for r in sub):.2f} | "
                  f"{max(abs(r['colour_error_perceptual']) for r in sub):.2f} |",
                  f"| mean HF ratio | {mean['hf_ratio_mse']:.3f} | {mean['hf_ratio_perceptual']:.3f} |",
                  f"| mean grid score | {mean['grid_mse']:.2f} | {mean['grid_perceptual']:.2f} |",
                  f"| max grid score (image) | {max(r['grid_mse'] for r in sub):.2f} | "
                  f"{gridded['grid_perceptual']:.2f} ({gridded['image']}) |", "",
                  "Worst images (largest PSNR drop):", "",
                  "| image | PSNR MSE | PSNR perceptual | drop | colour error (MSE / perc.) | HF ratio (MSE / perc.) |",
                  "|---|---|---|---|---|---|"]
        for r in sorted(sub, key=lambda r: -r["psnr_drop"])[: max(args.worst, 5)]:
            lines.append(f"| {r['image']} | {r['psnr_mse']:.2f} | {r['psnr_perceptual']:.2f} | {r['psnr_drop']:+.2f} | "
                         f"{r['colour_error_mse']:+.2f} / {r['colour_error_perceptual']:+.2f} | "
                         f"{r['hf_ratio_mse']:.2f} / {r['hf_ratio_perceptual']:.2f} |")
        lines.append("")
        for r in sorted(sub, key=lambda r: -r["psnr_drop"])[: args.worst]:
            ref, a, b = decoded[(r["image"], setting)]
            y, x = worst_window(a, b, args.crop)
            name = f"{r['image']}_{setting}.png"
            buf = crops / name
            crop_strip([ref, a, b], ["original", f"MSE {r['psnr_mse']:.2f} dB",
                                     f"perceptual {r['psnr_perceptual']:.2f} dB"], y, x, args.crop).save(buf)
            lines.append(f"![{r['image']} at {setting[3:]} bpp, crop at ({x}, {y})](artefact_crops/{name})")
        lines.append("")
    atomic_write_bytes(args.out / "artefacts.json", (json.dumps(rows, indent=1) + "\n").encode())
    atomic_write_bytes(args.out / "artefacts.md", ("\n".join(lines) + "\n").encode())
    print(f"wrote {args.out / 'artefacts.md'} ({len(rows)} image-rate pairs)")


if __name__ == "__main__":
    main()
