"""Bjontegaard delta rate and delta metric (VCEG-M33), piecewise-cubic form.

Curves are interpolated with monotone piecewise-cubic Hermite polynomials
(PCHIP) over log-rate, as in the JVET/AOM common test conditions, rather than
the original cubic polynomial fit that misbehaves on sparse points. Metrics
where lower is better (LPIPS, DISTS, FID) pass ``higher_is_better=False``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.interpolate import PchipInterpolator


def _prepare(rate: Sequence[float], metric: Sequence[float], higher_is_better: bool):
    r = np.log(np.asarray(rate, dtype=np.float64))
    m = np.asarray(metric, dtype=np.float64)
    if not higher_is_better:
        m = -m
    if len(r) < 2:
        raise ValueError("need at least two rate points per curve")
    order = np.argsort(m)
    return r[order], m[order]


def bd_rate(rate_anchor, metric_anchor, rate_test, metric_test, higher_is_better: bool = True) -> float:
    """Average rate difference (percent) of test against anchor at equal quality.

    Negative: the test codec needs fewer bits.
    """
    ra, ma = _prepare(rate_anchor, metric_anchor, higher_is_better)
    rt, mt = _prepare(rate_test, metric_test, higher_is_better)
    lo, hi = max(ma.min(), mt.min()), min(ma.max(), mt.max())
    if lo >= hi:
        raise ValueError("the curves' quality ranges do not overlap")
    grid = np.linspace(lo, hi, 200)
    fa = PchipInterpolator(ma, ra)(grid)
    ft = PchipInterpolator(mt, rt)(grid)
    avg = np.trapezoid(ft - fa, grid) / (hi - lo) if hasattr(np, "trapezoid") else np.trapz(ft - fa, grid) / (hi - lo)
    return float((np.exp(avg) - 1) * 100)


def bd_metric(rate_anchor, metric_anchor, rate_test, metric_test, higher_is_better: bool = True) -> float:
    """Average metric difference of test against anchor at equal rate (test - anchor)."""
    def prep(r, m):
        r = np.log(np.asarray(r, dtype=np.float64))
        m = np.asarray(m, dtype=np.float64)
        o = np.argsort(r)
        return r[o], m[o]

    ra, ma = prep(rate_anchor, metric_anchor)
    rt, mt = prep(rate_test, metric_test)
    lo, hi = max(ra.min(), rt.min()), min(ra.max(), rt.max())
    if lo >= hi:
        raise ValueError("the curves' rate ranges do not overlap")
    grid = np.linspace(lo, hi, 200)
    diff = PchipInterpolator(rt, mt)(grid) - PchipInterpolator(ra, ma)(grid)
    trap = np.trapezoid if hasattr(np, "trapezoid") else np.trapz
    return float(trap(diff, grid) / (hi - lo))


def interpolate_metric(rate, metric, at_rate: float) -> float:
    """Metric of a curve at ``at_rate`` (PCHIP over log-rate); NaN outside its range."""
    r = np.log(np.asarray(rate, dtype=np.float64))
    m = np.asarray(metric, dtype=np.float64)
    o = np.argsort(r)
    x = np.log(at_rate)
    if x < r[o][0] or x > r[o][-1]:
        return float("nan")
    return float(PchipInterpolator(r[o], m[o])(x))
