"""Adversarial losses on raw discriminator logits (real: originals, fake: reconstructions).

* hinge (PO-ELIC eq. 8; SAGAN/BigGAN form): D minimises
  ``E[relu(1 - D(x))] + E[relu(1 + D(x_hat))]``, G minimises ``-E[D(x_hat)]``;
* non-saturating BCE (ST-LIC eqs. 7-8; HiFiC): D minimises
  ``BCE(D(x), 1) + BCE(D(x_hat), 0)``, G minimises ``BCE(D(x_hat), 1)``; at the
  equilibrium both sides sit at ``log 2 = 0.693`` per term;
* least squares (LSGAN): D minimises ``(D(x) - 1)^2 + D(x_hat)^2``, G ``(D(x_hat) - 1)^2``.
"""

from __future__ import annotations

from typing import Callable, Dict, Tuple

import torch.nn.functional as F
from torch import Tensor


def hinge(real: Tensor, fake: Tensor) -> Tensor:
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def hinge_generator(fake: Tensor) -> Tensor:
    return -fake.mean()


def bce(real: Tensor, fake: Tensor) -> Tensor:
    return (F.binary_cross_entropy_with_logits(real, real.new_ones(real.shape))
            + F.binary_cross_entropy_with_logits(fake, fake.new_zeros(fake.shape)))


def bce_generator(fake: Tensor) -> Tensor:
    return F.binary_cross_entropy_with_logits(fake, fake.new_ones(fake.shape))


def least_squares(real: Tensor, fake: Tensor) -> Tensor:
    return ((real - 1) ** 2).mean() + (fake**2).mean()


def least_squares_generator(fake: Tensor) -> Tensor:
    return ((fake - 1) ** 2).mean()


#: name -> (discriminator loss(real, fake), generator loss(fake))
ADVERSARIAL: Dict[str, Tuple[Callable[[Tensor, Tensor], Tensor], Callable[[Tensor], Tensor]]] = {
    "hinge": (hinge, hinge_generator),
    "bce": (bce, bce_generator),
    "ls": (least_squares, least_squares_generator),
}
