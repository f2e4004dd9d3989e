"""plic.units: PSNR from MSE and back."""

import math

import pytest

from plic.units import mse_from_psnr, psnr_from_mse


def test_psnr_and_mse_are_inverse():
    assert psnr_from_mse(0.0) == math.inf
    assert psnr_from_mse(1e-3) == pytest.approx(30.0)
    assert psnr_from_mse(65.025, peak=255.0) == pytest.approx(30.0)
    for db in (12.5, 30.0, 47.1):
        assert psnr_from_mse(mse_from_psnr(db)) == pytest.approx(db)
        assert psnr_from_mse(mse_from_psnr(db, 255.0), 255.0) == pytest.approx(db)
