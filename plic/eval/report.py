"""Summaries of a benchmark folder: mean R-D points, BD-rates, interpolated metrics, plots.

A codec's curve is the mean over images of bpp and of each metric at each of
its settings (CompressAI's convention); set metrics (FID, KID, FD-VGG16) are
computed over the patches of all images of a setting. BD-rates use only the
swept settings, reduced to their Pareto front (a point that is no better than
a cheaper one is dropped, which PCHIP needs), against the anchor codec.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from plic.errors import PlicError
from plic.eval.bjontegaard import bd_rate, interpolate_metric
from plic.image_io import atomic_write_bytes
from plic.metrics import METRICS, get_metric

REPORT_RATES = (0.075, 0.15, 0.30)
PLOT_METRICS = ("psnr", "ssim", "ms-ssim", "lpips-alex", "lpips-vgg", "dists", "vmaf", "fd-vgg16", "fid")

#: Published Kodak curves from CompressAI's results/image/kodak/*.json (MSE-trained models),
#: drawn dashed on the PSNR plot, never mixed with measured rows.
PUBLISHED_FILE = Path(__file__).with_name("published_kodak.json")


def _mean(values: List[float]) -> float:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def collect(out: Path) -> Dict:
    """codec -> setting -> {bpp, metrics..., n, encode_s, decode_s, target_bpp}."""
    points_dir = out / "points"
    if not points_dir.is_dir():
        raise PlicError(f"{out}: not a plic eval folder (no points/)")
    manifest = json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").is_file() else {}
    images = manifest.get("images")
    curves: Dict[str, Dict[str, Dict]] = {}
    for point_file in sorted(points_dir.glob("*/*/*.json")):
        p = json.loads(point_file.read_text())
        if images and p["image"] not in images:
            continue
        curves.setdefault(p["codec"], {}).setdefault(p["setting"], []).append(p)
    summary: Dict[str, Dict[str, Dict]] = {}
    for codec, settings in curves.items():
        for key, pts in settings.items():
            if images and len(pts) != len(images):
                continue  # an unfinished setting: not a fair mean
            row = {"n": len(pts), "bpp": _mean([p["bpp"] for p in pts]),
                   "encode_s": float(np.median([p["encode_s"] for p in pts])),
                   "decode_s": float(np.median([p["decode_s"] for p in pts])),
                   "target_bpp": pts[0].get("target_bpp"), "knob_value": _mean([p["knob_value"] for p in pts])}
            # a metric scored on only some images (an earlier run asked for it) would be an unfair mean
            for name in sorted(set.intersection(*(set(p["metrics"]) for p in pts))):
                row[name] = _mean([p["metrics"][name] for p in pts])
            row.update(_set_metrics(out, codec, key, [p["image"] for p in pts]))
            summary.setdefault(codec, {})[key] = row
    return {"manifest": manifest, "curves": summary}


def _set_metrics(out: Path, codec: str, key: str, images: List[str]) -> Dict[str, float]:
    """FD-VGG16 / FID / KID of one setting, cached beside its features (a sqrtm of 2048x2048 is slow)."""
    from plic.eval.runner import safe_name
    from plic.metrics.fid import frechet_distance, kernel_inception_distance

    res = {}
    for extractor in ("vgg16", "inception"):
        base = out / "features" / extractor
        stems = sorted(Path(i).stem for i in images)
        dist = [base / safe_name(codec) / key / f"{s}.npy" for s in stems]
        ref = [base / "reference" / "original" / f"{s}.npy" for s in stems]
        if not all(p.is_file() for p in dist + ref):
            continue
        stamp = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in dist + ref]
        cache = base / safe_name(codec) / key / "distances.json"
        if cache.is_file():
            cached = json.loads(cache.read_text())
            if cached.get("stamp") == stamp:
                res.update(cached["values"])
                continue
        a = np.concatenate([np.load(p, allow_pickle=False) for p in ref])
        b = np.concatenate([np.load(p, allow_pickle=False) for p in dist])
        values = {"fd-vgg16": frechet_distance(a, b)} if extractor == "vgg16" else \
            {"fid": frechet_distance(a, b), "kid": kernel_inception_distance(a, b)}
        atomic_write_bytes(cache, json.dumps({"stamp": stamp, "values": values}).encode())
        res.update(values)
    return res


def curve(rows: Dict[str, Dict], metric: str, swept_only: bool = True):
    """(bpp, metric) arrays of a codec, sorted by bpp, on the Pareto front.

    The swept settings make the curve; a codec evaluated at target rates only
    (``--no-sweep --targets``) has its target points instead.
    """
    better = get_metric(metric).higher_is_better
    scored = [r for r in rows.values() if metric in r and not math.isnan(r[metric]) and math.isfinite(r[metric])]
    swept = [r for r in scored if r.get("target_bpp") is None]
    if swept_only and len(swept) >= 2:
        scored = swept
    # else a run without a sweep (--no-sweep --targets ...): its target points are the curve
    pts = sorted((r["bpp"], r[metric]) for r in scored)
    front = []
    for bpp, value in pts:
        if not front or (value > front[-1][1] if better else value < front[-1][1]):
            if front and bpp == front[-1][0]:
                front.pop()
            front.append((bpp, value))
    return np.array([p[0] for p in front]), np.array([p[1] for p in front])


def bd_rates(summary: Dict, anchor: str, metrics: List[str]) -> Dict[str, Dict[str, Optional[float]]]:
    curves = summary["curves"]
    if anchor not in curves:
        raise PlicError(f"anchor {anchor!r} is not in this folder; codecs: {', '.join(curves)}")
    table: Dict[str, Dict[str, Optional[float]]] = {}
    for codec, rows in curves.items():
        for metric in metrics:
            ra, ma = curve(curves[anchor], metric)
            rt, mt = curve(rows, metric)
            value = None
            if len(ra) >= 2 and len(rt) >= 2:
                try:
                    value = bd_rate(ra, ma, rt, mt, higher_is_better=get_metric(metric).higher_is_better)
                except ValueError:
                    value = None  # quality ranges do not overlap
            table.setdefault(codec, {})[metric] = value
    return table


def metrics_of(summary: Dict) -> List[str]:
    present = {k for rows in summary["curves"].values() for r in rows.values() for k in r}
    return [m for m in METRICS if m in present]


def _fmt(v: Optional[float], metric: str = "") -> str:
    if v is None or (isinstance(v, float) and (math.isnan(v) or math.isinf(v))):
        return "–"
    # dB, VMAF points and Fréchet distances to 2 decimals; the unit-range metrics to 4
    return f"{v:.2f}" if metric in ("psnr", "psnr-y", "vmaf", "fd-vgg16", "fid") else f"{v:.4f}"


def markdown(summary: Dict, anchor: str, table: Dict[str, Dict[str, Optional[float]]], command: str = "") -> str:
    """The report; ``table`` is :func:`bd_rates` against ``anchor`` on every metric present."""
    man, curves = summary["manifest"], summary["curves"]
    metrics = metrics_of(summary)
    lines = ["# R-D benchmark", ""]
    if command:
        lines += ["Made by:", "", "```", command, "```", ""]
    lines += [f"Images: {len(man.get('images', []))} from `{man.get('data', '?')}`. bpp = 8 x file bytes / pixels, "
              "means over images; times are medians per image on " + man.get("machine", "?") + ".", ""]
    if man.get("skipped"):
        lines += ["Skipped (unavailable here): " + "; ".join(f"{k}: {v}" for k, v in man["skipped"].items()), ""]
    lines += [f"## BD-rate against {anchor} (%; negative = fewer bits at equal quality)", ""]
    lines += ["| codec | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for codec in curves:
        lines.append(f"| {codec} | " + " | ".join("–" if table[codec][m] is None else f"{table[codec][m]:+.1f}"
                                                  for m in metrics) + " |")
    lines += ["", "## Metrics interpolated at " + ", ".join(f"{r:g}" for r in REPORT_RATES) + " bpp", "",
              "PCHIP over log-bpp of each codec's swept curve; – where the curve does not reach that rate.", ""]
    lines += ["| codec | bpp | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 2) + "|"]
    for codec, rows in curves.items():
        for rate in REPORT_RATES:
            vals = []
            for m in metrics:
                r, v = curve(rows, m)
                vals.append(_fmt(interpolate_metric(r, v, rate), m) if len(r) >= 2 else "–")
            lines.append(f"| {codec} | {rate:g} | " + " | ".join(vals) + " |")
    lines += ["", "## Points", ""]
    for codec, rows in curves.items():
        info = man.get("codecs", {}).get(codec, {})
        lines += [f"### {codec}: {info.get('label', '')}", "", f"{info.get('version', '')}", ""]
        lines += ["| setting | bpp | " + " | ".join(metrics) + " | enc s | dec s |", "|---" * (len(metrics) + 4) + "|"]
        for key, r in sorted(rows.items(), key=lambda kv: kv[1]["bpp"]):
            lines.append(f"| {key} | {r['bpp']:.4f} | " + " | ".join(_fmt(r.get(m), m) for m in metrics)
                         + f" | {r['encode_s']:.3f} | {r['decode_s']:.3f} |")
        lines.append("")
    return "\n".join(lines)


def plot(summary: Dict, folder: Path, published: bool = True) -> List[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    # published curves are Kodak's: draw them only beside a run on the 24 Kodak images
    images = summary["manifest"].get("images", [])
    on_kodak = len(images) == 24 and all(i.startswith("kodim") for i in images)
    ref_curves = json.loads(PUBLISHED_FILE.read_text()) if published and on_kodak else {}
    written = []
    for metric in [m for m in PLOT_METRICS if m in metrics_of(summary)]:
        fig, ax = plt.subplots(figsize=(6.4, 4.8))
        for codec, rows in summary["curves"].items():
            pts = sorted((r["bpp"], r[metric]) for r in rows.values() if r.get("target_bpp") is None and metric in r)
            if pts:
                style = "-o" if codec.startswith("plic") else "-."
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, ms=3, lw=1.8 if codec.startswith("plic") else 1,
                        label=codec)
        for (name, rc), shade in zip(ref_curves.get("curves", {}).items(), ("0.25", "0.4", "0.55", "0.7")):
            if metric in rc:
                ax.plot(rc["bpp"], rc[metric], "--", lw=1, color=shade, label=f"{name} (CompressAI, published)")
        m = get_metric(metric)
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(m.label + ("" if m.higher_is_better else " (lower is better)"))
        ax.set_xlim(0, 2.0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_title(f"{m.label} vs rate")
        path = folder / f"rd-{metric}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def write_report(out: Path, anchor: str, command: str = "") -> Dict:
    summary = collect(out)
    if not summary["curves"]:
        raise PlicError(f"{out}: no finished points yet")
    if anchor not in summary["curves"]:
        anchor = next(iter(summary["curves"]))
    table = bd_rates(summary, anchor, metrics_of(summary))
    atomic_write_bytes(out / "summary.json", json.dumps({**summary, "anchor": anchor, "bd_rate": table}, indent=1).encode())
    atomic_write_bytes(out / "summary.md", markdown(summary, anchor, table, command).encode())
    plot(summary, out / "plots")
    return summary
