"""Run a module with its parameters frozen, restoring each one's flag afterwards."""

from __future__ import annotations

import contextlib
from typing import Iterator

from torch import nn


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """Inside the block no parameter of ``module`` collects gradients.

    Gradients still flow *through* it to its inputs: a frozen discriminator or
    proxy scores the codec's output, a frozen codec lets a latent or an image
    be optimised.
    """
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
