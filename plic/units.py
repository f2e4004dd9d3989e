"""PSNR and MSE, one from the other: written once, since every report, target and log converts them."""

from __future__ import annotations

import math


def psnr_from_mse(mse: float, peak: float = 1.0) -> float:
    """PSNR in dB of a mean squared error on a ``peak`` scale (inf for a perfect match)."""
    mse = float(mse)
    return math.inf if mse <= 0 else 10 * math.log10(peak**2 / mse)


def mse_from_psnr(db: float, peak: float = 1.0) -> float:
    return peak**2 * 10 ** (-float(db) / 10)


__all__ = ["mse_from_psnr", "psnr_from_mse"]
