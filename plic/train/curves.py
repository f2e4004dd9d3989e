"""Training curves of ``plic train`` runs, from their ``train.csv`` and ``eval.csv``."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from plic.errors import PlicError


def read_rows(path: Path) -> List[Dict[str, float]]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        try:
            # a blank cell: a column that a resumed run started logging later
            return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
        except (TypeError, ValueError):
            raise PlicError(f"{path}: not a plic training log") from None


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing moving average (shorter at the start), so curves are not shifted left."""
    v = np.asarray(values, dtype=np.float64)
    if window <= 1 or v.size == 0:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    idx = np.arange(1, v.size + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def plot_runs(runs: Sequence[Path], out: Path, window: int = 200) -> Path:
    """One figure: training loss, bpp and PSNR over steps, and the real-bitstream evaluations.

    Several runs (for example the stages of one model, each started from the
    previous one with ``--init``) are drawn one after another on a common step
    axis, in the order given.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trains = [read_rows(Path(run) / "train.csv") for run in runs]  # read once: they can be long
    firsts = [rows[0] for rows in trains if rows]
    proxy = any("proxy" in r for r in firsts)
    gan = any("g_loss" in r for r in firsts)
    # the discriminator's accuracy on originals and reconstructions (logged since the GAN-hygiene work)
    accuracy = gan and any("d_acc_real" in r for rows in trains for r in rows[-1:])
    panels = 4 + proxy + gan + accuracy
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4.2))
    gan_ax = axes[4 + proxy] if gan else None
    acc_ax = axes[5 + proxy] if accuracy else None
    bce = False
    offset = 0.0
    drew = False
    colours: Dict[str, str] = {}  # one colour per evaluated lambda, across stages
    labelled: set = set()
    for run, train in zip(runs, trains, strict=True):
        run = Path(run)
        evals = read_rows(run / "eval.csv")
        if not train and not evals:
            raise PlicError(f"{run}: no train.csv or eval.csv (is it a plic train run folder?)")
        label = run.name
        if train:
            steps = np.array([r["step"] for r in train]) + offset
            for ax, key in zip(axes[:3], ("loss", "bpp", "psnr"), strict=True):
                ax.plot(steps, smooth([r[key] for r in train], window), label=label, lw=1)
            if proxy and "proxy" in train[0]:  # ProxIQA: the true metric and its proxy (the paper's Fig. 7b)
                axes[4].plot(steps, smooth([r["true"] for r in train], window), label=f"{label} true", lw=1)
                axes[4].plot(steps, smooth([r["proxy"] for r in train], window), label=f"{label} proxy",
                             lw=1, ls="--")
            if gan and "g_loss" in train[0]:  # the GAN recipes: generator and discriminator losses
                gan_ax.plot(steps, smooth([r["g_loss"] for r in train], window), label=f"{label} generator", lw=1)
                gan_ax.plot(steps, smooth([r["d_loss"] for r in train], window), label=f"{label} discriminator",
                            lw=1, ls="--")
                if accuracy:
                    for key, name, ls in (("d_acc_real", "real", "-"), ("d_acc_fake", "reconstructed", "--")):
                        rows = [r for r in train if key in r]
                        if rows:
                            acc_ax.plot(np.array([r["step"] for r in rows]) + offset, smooth([r[key] for r in rows], window),
                                        label=f"{label} {name}", lw=1, ls=ls)
                config = run / "config.json"
                bce = bce or (config.is_file() and json.loads(config.read_text()).get("recipe") == "st-lic")
            drew = True
        for lam in sorted({r["lambda"] for r in evals}):
            pts = [r for r in evals if r["lambda"] == lam]
            key = f"lambda {lam:.4g}"
            if key not in colours:
                colours[key] = f"C{len(colours) % 10}"
            axes[3].plot([r["step"] + offset for r in pts], [r["psnr"] for r in pts], "o-", ms=3,
                         color=colours[key], label=None if key in labelled else key)
            labelled.add(key)
            drew = True
        offset += max([r["step"] for r in train] + [r["step"] for r in evals])
        if len(runs) > 1:
            for ax in axes:  # where the next stage starts
                ax.axvline(offset, color="0.6", ls=":", lw=0.8)
    if not drew:
        raise PlicError("nothing to plot")
    titles = [f"loss (mean of {window} steps)", "bpp (training crops)", "PSNR dB (training crops)",
              "Kodak PSNR dB (real files)"] + (["metric: true and proxy (training crops)"] if proxy else []) \
        + (["adversarial losses (per term)"] if gan else []) \
        + (["discriminator accuracy (logit sign)"] if accuracy else [])
    if proxy:
        axes[4].legend(fontsize=7)
    if gan:
        if bce:  # ST-LIC's BCE terms: both approach log 2 when the discriminator cannot tell
            gan_ax.axhline(np.log(2), color="0.4", ls=":", lw=1, label="log 2 = 0.693 (equilibrium)")
        gan_ax.legend(fontsize=7)
    if accuracy:
        acc_ax.axhline(0.5, color="0.4", ls=":", lw=1, label="0.5: cannot tell")
        acc_ax.set_ylim(0, 1)
        acc_ax.legend(fontsize=7)
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].set_yscale("log")
    if labelled:
        axes[3].legend(fontsize=7)
    else:  # runs trained with --eval-every 0: say so rather than leave an empty frame
        axes[3].text(0.5, 0.5, "no Kodak evaluations\n(trained with --eval-every 0)", ha="center", va="center",
                     transform=axes[3].transAxes, color="0.4")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".tmp" + out.suffix)
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)
    return out
