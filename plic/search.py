"""Bisection of a setting for a target measurement: the one search behind ``--bpp``, ``--target-psnr``,
``plic train --target-bpp`` and the benchmark's equal-rate points.

A codec's knob (a lambda, a JPEG quality, a JPEG XL distance) moves its file
size or quality monotonically, often over decades: lambdas are bisected on
their logarithm, small integer knobs on integers. Callers keep their own
record of what they tried (to return the closest file, or to refuse a target
out of reach); this module only narrows the bracket.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Tuple

#: how the middle of a bracket is taken
SPACES = ("log", "linear", "integer")


def midpoint(a: float, b: float, space: str = "log") -> Optional[float]:
    """The middle of [a, b] (either order) in ``space``; None when an integer bracket has nothing left inside."""
    if space == "integer":
        a, b = int(a), int(b)
        return None if abs(b - a) <= 1 else (a + b) // 2
    if space == "log":
        return math.exp((math.log(a) + math.log(b)) / 2)
    if space == "linear":
        return 0.5 * (a + b)
    raise ValueError(f"unknown search space {space!r} (known: {', '.join(SPACES)})")


def bisect(measure: Callable[[float], float], below: float, above: float, target: float, max_iter: int,
           space: str = "log", done: Callable[[float], bool] = lambda v: False) -> Tuple[Optional[float], float, float]:
    """Narrow the bracket between ``below`` (measures under ``target``) and ``above`` (measures over it).

    ``measure`` need only grow from ``below`` towards ``above``: the two may be
    in either order on the number line (a knob that gives more bits when lower).
    Stops after ``max_iter`` measurements, when an integer bracket is
    exhausted, or at the first setting whose measurement is ``done``.
    Returns ``(that setting or None, below, above)``.
    """
    for _ in range(max_iter):
        mid = midpoint(below, above, space)
        if mid is None:
            break
        value = measure(mid)
        if done(value):
            return mid, below, above
        below, above = (mid, above) if value < target else (below, mid)
    return None, below, above


__all__ = ["SPACES", "bisect", "midpoint"]
