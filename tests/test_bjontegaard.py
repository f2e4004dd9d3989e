"""BD-rate against values that follow from its definition."""

import numpy as np
import pytest

from plic.eval.bjontegaard import bd_metric, bd_rate, interpolate_metric

RATES = [0.1, 0.2, 0.4, 0.8]
PSNR = [28.0, 30.5, 33.0, 35.5]


def test_identical_curves_give_zero():
    assert bd_rate(RATES, PSNR, RATES, PSNR) == pytest.approx(0, abs=1e-9)
    assert bd_metric(RATES, PSNR, RATES, PSNR) == pytest.approx(0, abs=1e-9)


def test_a_constant_rate_factor_is_recovered():
    # the same quality at 20% fewer bits everywhere is a BD-rate of exactly -20%
    assert bd_rate(RATES, PSNR, [r * 0.8 for r in RATES], PSNR) == pytest.approx(-20, abs=1e-6)
    # +1 dB everywhere is a BD-PSNR of +1
    assert bd_metric(RATES, PSNR, RATES, [p + 1 for p in PSNR]) == pytest.approx(1, abs=1e-9)


def test_lower_is_better_metrics():
    lpips = [0.5, 0.35, 0.2, 0.1]
    # same LPIPS at half the rate: -50% whichever direction the metric runs
    assert bd_rate(RATES, lpips, [r / 2 for r in RATES], lpips, higher_is_better=False) == pytest.approx(-50, abs=1e-6)


def test_interpolation_and_errors():
    assert interpolate_metric(RATES, PSNR, 0.2) == pytest.approx(30.5)
    assert np.isnan(interpolate_metric(RATES, PSNR, 5.0))
    with pytest.raises(ValueError):
        bd_rate([0.1, 0.2], [20, 21], [0.1, 0.2], [30, 31])
