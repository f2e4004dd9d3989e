"""Differentiable stand-ins for rounding, used when latents are refined at encode time.

Each function maps ``v`` (a latent minus its predicted mean) to a value that
the rate and distortion terms see during refinement; at the end the codec
rounds hard. Families:

* ``ste``: hard rounding forward, identity backward (straight-through);
* ``noise``: ``v + U(-1/2, 1/2)`` (the training surrogate);
* two-class stochastic Gumbel annealing: ``v`` is rounded down or up with
  probabilities ``p(r)``, ``r = v - floor(v)``, relaxed by a Gumbel-softmax of
  temperature ``tau`` so the sample is differentiable; the soft value is
  ``floor(v) + w_up``. As in Yang et al.'s and the SGA+ authors' code, the
  logits are ``log p / tau`` and the Gumbel-softmax divides by ``tau`` again.
  The families differ only in ``p``:

  - ``atanh`` (SGA, Yang et al. 2020): unnormalised, ``p_down = exp(-atanh(r))``,
    ``p_up = exp(-atanh(1 - r))``;
  - ``linear`` (SGA+): ``p_up = r``;
  - ``cosine`` (SGA+): ``p_up = sin^2(pi r / 2)``;
  - ``ssl`` (SGA+, sigmoid scaled logit): ``p_up = sigmoid(a * logit(r))``;
    ``a = 1`` is ``linear``, larger ``a`` is closer to hard rounding; the
    paper's tables use ``a = 2.3``;

* three-class variants (``linear3``, ``cosine3``, ``ssl3``): the candidates are
  ``c = round(v) - 1, round(v), round(v) + 1`` at signed distance ``d = v - c``
  (``|d| <= 1.5``), weighted by ``f(d)``, with a scale ``r``, a power ``n`` and a
  floor ``clip`` that keeps every logit finite:

  - ``linear3``: ``max(1 - r |d|, clip) ** n``;
  - ``cosine3``: ``cos(pi/2 * clamp(r d, -1, 1)) ** n + clip``;
  - ``ssl3``: ``max(sigmoid(-a * logit(|r d| / 1.5)), clip) ** n``.

  Defaults ``r = 0.98``, ``n = 1.4`` (``cosine3``: 2) follow the SGA+ authors'
  released configuration.

``tau`` follows :func:`temperature`, ``min(exp(-rate * step), tau_max)``.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from torch import Tensor

TWO_CLASS = ("atanh", "linear", "cosine", "ssl")
THREE_CLASS = ("linear3", "cosine3", "ssl3")
BASELINES = ("ste", "noise")
METHODS = BASELINES + TWO_CLASS + THREE_CLASS

_EPS = 1e-5


def temperature(step: int, rate: float = 1e-3, tau_max: float = 0.5) -> float:
    return min(math.exp(-rate * step), tau_max)


def ste_round(v: Tensor) -> Tensor:
    return v + (torch.round(v) - v).detach()


def _p_up(r: Tensor, family: str, a: float) -> Tensor:
    """Probability of rounding up for the fractional part ``r`` in [0, 1]."""
    r = r.clamp(_EPS, 1 - _EPS)
    if family == "linear":
        return r
    if family == "cosine":
        return torch.sin(0.5 * math.pi * r) ** 2
    if family == "ssl":
        return torch.sigmoid(a * torch.logit(r))
    raise ValueError(family)


def _three_class_weight(d: Tensor, family: str, a: float, r: float, n: float, clip: float) -> Tensor:
    if family == "linear3":
        return torch.clamp(1 - r * d.abs(), min=clip) ** n
    if family == "cosine3":
        return torch.cos(0.5 * math.pi * torch.clamp(r * d, -1, 1)) ** n + clip
    if family == "ssl3":
        u = (r * d.abs() / 1.5).clamp(_EPS, 1 - _EPS)
        return torch.clamp(torch.sigmoid(-a * torch.logit(u)), min=clip) ** n
    raise ValueError(family)


def _gumbel_softmax(logits: Tensor, tau: float, generator: Optional[torch.Generator]) -> Tensor:
    u = torch.rand(logits.shape, generator=generator, device="cpu").to(logits)
    g = -torch.log(-torch.log(u.clamp(1e-10, 1 - 1e-10)))
    return torch.softmax((logits + g) / tau, dim=-1)


def soft_round(v: Tensor, method: str, tau: float, a: float = 2.3, scale: float = 0.98,
               power: Optional[float] = None, clip: float = 1e-6,
               generator: Optional[torch.Generator] = None) -> Tensor:
    """One differentiable sample of ``method``'s rounding of ``v`` (see the module doc)."""
    if method == "ste":
        return ste_round(v)
    if method == "noise":
        u = torch.rand(v.shape, generator=generator, device="cpu").to(v)
        return v + (u - 0.5)
    if method in TWO_CLASS:
        floor = torch.floor(v).detach()
        r = v - floor
        if method == "atanh":
            log_p = torch.stack([-torch.atanh(r.clamp(-1 + _EPS, 1 - _EPS)),
                                 -torch.atanh((1 - r).clamp(-1 + _EPS, 1 - _EPS))], dim=-1)
        else:
            p = _p_up(r, method, a).clamp(1e-7, 1 - 1e-7)  # finite logits and gradients
            log_p = torch.stack([torch.log1p(-p), torch.log(p)], dim=-1)
        w = _gumbel_softmax(log_p / tau, tau, generator)
        return floor + w[..., 1]
    if method in THREE_CLASS:
        n = power if power is not None else (2.0 if method == "cosine3" else 1.4)
        centre = torch.round(v).detach()
        candidates = torch.stack([centre - 1, centre, centre + 1], dim=-1)
        f = _three_class_weight(v.unsqueeze(-1) - candidates, method, a, scale, n, clip)
        w = _gumbel_softmax(torch.log(f) / tau, tau, generator)
        return (w * candidates).sum(-1)
    raise ValueError(f"unknown rounding {method!r} (known: {', '.join(METHODS)})")


def rounding_fn(method: str, **params) -> Callable[..., Tensor]:
    """``fn(v, tau, generator=None)`` for ``method`` with fixed shape parameters."""
    if method not in METHODS:
        raise ValueError(f"unknown rounding {method!r} (known: {', '.join(METHODS)})")
    return lambda v, tau, generator=None: soft_round(v, method, tau, generator=generator, **params)
