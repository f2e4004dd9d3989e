"""Would a linear residual layer on top of the default codec beat JPEG above 1 bpp? A measured design study.

    python projects/residual_layer/residual_layer_study.py --train ../shared/datasets/train \
        --kodak ../shared/datasets/kodak --base-lambdas 0.02,0.04,0.06,0.1 --out projects/residual_layer/results/study

Why: the default's top rung reaches only 33.0 dB on Kodak even without quantization, so JPEG leads it
above about 0.96 bpp, and widening its transforms or its latent moved that by tenths of a dB per CPU-hour.
Its residual is far from white, though: the principal components of the residual's 16x16x3 blocks
concentrate it (96 of the 768 hold about two thirds of its energy on training crops). So this codes, after
the default's own file at a base lambda, the residual of its *decoded* image in that basis:

* basis: the principal components of decoded-residual blocks of training images at that base lambda
  (closed form; no gradient training);
* quantizer: uniform, step ``delta`` in 8-bit units, rounding to the nearest level;
* entropy model: a Laplace per (component, block class), scales fitted on the same training blocks; a
  block's class is one of six bins of the decoded base block's integer gradient energy, which the decoder
  has exactly, so nothing about the model is sent;
* coder: compressai's rANS (``RansEncoder.encode_with_indexes``) with 16-bit CDF tables of the
  discretized Laplace at 64 log-spaced scales, out-of-range values bypass-coded as compressai does.

The layer's bytes are real rANS output (decoded back and checked symbol for symbol); the base's bytes are
the real ``.plic`` file of the shipped ladder at that lambda. Stream framing (a step, a length: a few
bytes) is not counted. JPEG's curve (and the others') is the committed Kodak report's (benchmarks/rd/kodak_eval), read at
each point's rate by PCHIP over log-bpp as ``plic eval`` reads curves. Pixels are 8-bit RGB: the layer's
output is added to the decoded base, then rounded and clipped as a decoder writes it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from compressai._CXX import pmf_to_quantized_cdf
from compressai.ans import RansDecoder, RansEncoder

from plic import bitstream
from plic.eval.bjontegaard import interpolate_metric
from plic.image_io import quantize_rgb, read_image
from plic.ladder import shipped_codec

BLOCK = 16
CLASSES = 6
#: Laplace scales of the CDF tables, in units of the quantization step
SCALES = np.exp(np.linspace(np.log(0.04), np.log(40.0), 64))
PRECISION = 16
TAIL = 1e-6


def image_paths(folder: str) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))


def to_blocks(a: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (blocks, 768), row-major blocks of the top-left multiple-of-16 region."""
    h, w = (a.shape[0] // BLOCK) * BLOCK, (a.shape[1] // BLOCK) * BLOCK
    return a[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK, 3).transpose(0, 2, 1, 3, 4).reshape(
        -1, BLOCK * BLOCK * 3)


def from_blocks(b: np.ndarray, h: int, w: int) -> np.ndarray:
    return b.reshape(h // BLOCK, w // BLOCK, BLOCK, BLOCK, 3).transpose(0, 2, 1, 3, 4).reshape(h, w, 3)


def activity(base: np.ndarray) -> np.ndarray:
    """Integer gradient energy of each block of the decoded 8-bit base (exact on every machine)."""
    q = base.astype(np.int64)
    g = np.zeros_like(q)
    g[:-1] += np.abs(np.diff(q, axis=0))
    g[:, :-1] += np.abs(np.diff(q, axis=1))
    return to_blocks(g).sum(1)


def coded_base(codec, img, lmbda: float) -> tuple[int, np.ndarray]:
    """The ladder's real file at ``lmbda``: its size in bytes and its decoded 8-bit pixels (H, W, 3)."""
    data = codec.encode(img, lmbda=lmbda).data
    rgb = quantize_rgb(codec.decode_file(bitstream.parse(data)))
    return len(data), np.rint(rgb[0].permute(1, 2, 0).numpy() * 255).astype(np.int64)


def pixels_of(img) -> np.ndarray:
    return np.rint(img.rgb[0].permute(1, 2, 0).numpy() * 255).astype(np.int64)


def laplace_cdf(v: np.ndarray, scale: float) -> np.ndarray:
    return np.where(v < 0, 0.5 * np.exp(v / scale), 1 - 0.5 * np.exp(-v / scale))


def laplace_tables() -> tuple[list, list, list]:
    """CDFs, lengths and offsets of the discretized Laplace at each of SCALES (unit quantization step)."""
    cdfs, lengths, offsets = [], [], []
    for s in SCALES:
        half = int(np.ceil(s * np.log(1 / (2 * TAIL)))) + 1
        n = np.arange(-half, half + 1, dtype=np.float64)
        pmf = laplace_cdf(n + 0.5, s) - laplace_cdf(n - 0.5, s)
        tail = max(1.0 - pmf.sum(), 0.0)
        q = pmf_to_quantized_cdf(np.append(pmf, tail).tolist(), PRECISION)
        cdfs.append(q)
        lengths.append(len(q))
        offsets.append(-half)
    return cdfs, lengths, offsets


class ResidualLayer:
    """Basis, class edges and Laplace scales fitted on decoded-residual blocks of training images."""

    def __init__(self, residuals: np.ndarray, activities: np.ndarray):
        _, vectors = np.linalg.eigh(np.cov(residuals.T))
        self.basis = vectors[:, ::-1].copy()
        self.edges = np.quantile(activities, np.linspace(0, 1, CLASSES + 1)[1:-1]).round().astype(np.int64)
        coeffs = residuals @ self.basis
        classes = np.searchsorted(self.edges, activities)
        self.scales = np.stack([np.maximum(np.abs(coeffs[classes == k]).mean(0), 1e-3) for k in range(CLASSES)])
        self.energy = np.linalg.eigvalsh(np.cov(residuals.T))[::-1]
        self.tables = laplace_tables()

    def code(self, x: np.ndarray, base: np.ndarray, delta: float) -> tuple[int, np.ndarray]:
        """The layer's rANS bytes for image ``x`` over decoded ``base`` at step ``delta``; the decoded image."""
        h, w = (x.shape[0] // BLOCK) * BLOCK, (x.shape[1] // BLOCK) * BLOCK
        residual = to_blocks((x - base).astype(np.float64))
        symbols = np.rint(residual @ self.basis / delta).astype(np.int64)
        scale = self.scales[np.searchsorted(self.edges, activity(base))] / delta
        index = np.clip(np.searchsorted(np.log(SCALES), np.log(scale)), 0, len(SCALES) - 1)
        cdfs, lengths, offsets = self.tables
        data = RansEncoder().encode_with_indexes(symbols.ravel().tolist(), index.ravel().tolist(), cdfs, lengths,
                                                 offsets)
        back = RansDecoder().decode_with_indexes(data, index.ravel().tolist(), cdfs, lengths, offsets)
        if not np.array_equal(np.asarray(back).reshape(symbols.shape), symbols):
            raise RuntimeError("rANS round trip failed")
        out = base.astype(np.float64)
        out[:h, :w] += from_blocks(symbols * delta @ self.basis.T, h, w)
        return len(data), np.clip(np.rint(out), 0, 255)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255 ** 2 / np.mean((a.astype(np.float64) - b) ** 2)))


def mean_curve(report: Path, codec: str, images: list[str]) -> tuple[list, list]:
    """A codec's mean PSNR curve over ``images`` from a plic eval points.jsonl."""
    by_setting: dict = {}
    for line in report.read_text().splitlines():
        p = json.loads(line)
        if p["codec"] == codec and p["image"] in images:
            by_setting.setdefault(p["setting"], []).append((p["bpp"], p["metrics"]["psnr"]))
    pts = sorted(tuple(np.mean(v, 0)) for v in by_setting.values() if len(v) == len(images))
    return [p[0] for p in pts], [p[1] for p in pts]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", required=True)
    ap.add_argument("--kodak", required=True)
    ap.add_argument("--base-lambdas", default="0.02,0.04,0.06,0.1")
    ap.add_argument("--deltas", default="14,17,20,24,28,34,42,52")
    ap.add_argument("--fit-images", type=int, default=50, help="training images the basis and scales are fitted on")
    ap.add_argument("--limit", type=int, default=0, help="first N Kodak images only")
    ap.add_argument("--against", default="jpeg,webp,hevc,avif,plic:hyperprior",
                    help="codecs of --report whose curves each point is compared with")
    ap.add_argument("--report", type=Path, default=Path("benchmarks/rd/kodak_eval/points.jsonl"))
    ap.add_argument("--out", type=Path, required=True, help="report path without suffix (.json and .md)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    codec = shipped_codec("hyperprior")
    train = image_paths(args.train)
    np.random.default_rng(0).shuffle(train)
    kodak = image_paths(args.kodak)[:args.limit or None]
    names = [p.name for p in kodak]
    against = args.against.split(",")
    curves = {c: mean_curve(args.report, c, names) for c in against}
    deltas = [float(d) for d in args.deltas.split(",")]
    rows, t0 = [], time.time()
    for lam in (float(v) for v in args.base_lambdas.split(",")):
        res, act = [], []
        for p in train[:args.fit_images]:
            img = read_image(p)
            _, base = coded_base(codec, img, lam)
            res.append(to_blocks((pixels_of(img) - base).astype(np.float64)))
            act.append(activity(base))
        layer = ResidualLayer(np.concatenate(res), np.concatenate(act))
        share = float(layer.energy[:96].sum() / layer.energy.sum())
        per = {d: [] for d in [None, *deltas]}
        for p in kodak:
            img = read_image(p)
            x = pixels_of(img)
            n_base, base = coded_base(codec, img, lam)
            pixels = x.shape[0] * x.shape[1]
            per[None].append((8 * n_base / pixels, psnr(base, x)))
            for d in deltas:
                n_layer, out = layer.code(x, base, d)
                per[d].append((8 * (n_base + n_layer) / pixels, psnr(out, x)))
        for d, v in per.items():
            bpp, db = np.mean(v, 0)
            leads = {c: db - interpolate_metric(*curves[c], bpp) for c in against}
            rows.append({"base_lambda": lam, "delta": d, "bpp": float(bpp), "psnr": float(db),
                         "lead_db": {c: None if np.isnan(v) else float(v) for c, v in leads.items()},
                         "energy_in_96": share})
            print(f"base lambda {lam:g} step {d}: {bpp:.3f} bpp {db:.2f} dB, leads "
                  + ", ".join(f"{c} {v:+.2f}" for c, v in leads.items()) + f" dB ({time.time() - t0:.0f} s)",
                  flush=True)
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"command": command, "images": names, "curves": curves,
                                                         "rows": rows}, indent=1) + "\n")
    lines = [f"# Residual layer study\n\nCommand: `{command}`; {len(names)} Kodak images, real bytes (base file + "
             f"the layer's rANS stream), mean over images. PSNR lead over each codec at equal bpp (dB; – where "
             f"its curve does not reach the rate; `plic:hyperprior` is the shipped ladder alone).\n",
             "| base lambda | step | bpp | PSNR | " + " | ".join(against) + " |",
             "|---|---|---|---|" + "---|" * len(against)]
    for r in rows:
        leads = ["–" if r["lead_db"][c] is None else f"{r['lead_db'][c]:+.2f}" for c in against]
        step = "base alone" if r["delta"] is None else f"{r['delta']:g}"
        lines.append(f"| {r['base_lambda']:g} | {step} | {r['bpp']:.3f} | {r['psnr']:.2f} | " + " | ".join(leads) + " |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
