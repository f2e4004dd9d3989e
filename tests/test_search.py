"""plic.search: the bisection behind every target-rate and target-quality search."""

from __future__ import annotations

import math

import pytest

from plic.search import bisect, midpoint


def test_midpoints():
    assert midpoint(1e-4, 1e-2, "log") == pytest.approx(1e-3)
    assert midpoint(2.0, 4.0, "linear") == 3.0
    assert midpoint(10, 20, "integer") == 15
    assert midpoint(20, 10, "integer") == 15  # either order
    assert midpoint(7, 8, "integer") is None  # nothing left between them
    with pytest.raises(ValueError, match="unknown search space"):
        midpoint(1, 2, "cubic")


def test_bisect_finds_a_log_spaced_setting():
    tried = []

    def measure(lam):  # a rate that grows with log(lambda), like a codec's
        tried.append(lam)
        return math.log10(lam) + 5

    hit, below, above = bisect(measure, 1e-4, 1e-1, 2.5, 40, "log", done=lambda v: abs(v - 2.5) < 1e-6)
    assert hit == pytest.approx(10 ** -2.5)
    assert below <= hit <= above
    assert len(tried) < 40


def test_bisect_without_a_stop_narrows_the_bracket_to_the_target():
    hit, below, above = bisect(lambda x: x * x, 0.0, 10.0, 2.0, 30, "linear")
    assert hit is None
    assert below == pytest.approx(math.sqrt(2), abs=1e-6) and above == pytest.approx(math.sqrt(2), abs=1e-6)


def test_bisect_on_a_knob_that_gives_more_when_lower():
    # JPEG XL's distance: more bits at a lower distance; below/above name the measure, not the number line
    hit, below, above = bisect(lambda d: 10 - d, 9, 1, 6.0, 20, "integer", done=lambda v: v == 6)
    assert hit == 4
    hit, below, above = bisect(lambda d: 10 - d, 9, 1, 6.5, 20, "integer")
    assert hit is None and {below, above} == {4, 3}  # exhausted between two integers
