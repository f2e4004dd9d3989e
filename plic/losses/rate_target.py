"""HiFiC's rate-target multiplexer: one rate weight above the target bpp, another below."""

from __future__ import annotations

from torch import Tensor


def rate_weight(bpp: Tensor, target_bpp: float | Tensor, lambda_above: float, lambda_below: float) -> Tensor:
    """Per-item weight of the rate term: ``lambda_above`` where ``bpp > target``, else ``lambda_below``.

    With ``lambda_above >> lambda_below`` training settles just under the
    target rate, whatever the other loss terms pull towards (HiFiC's
    ``lambda_a`` / ``lambda_b``). ``target_bpp`` may be one value per item.
    """
    return bpp.detach().gt(target_bpp).to(bpp.dtype) * (lambda_above - lambda_below) + lambda_below
