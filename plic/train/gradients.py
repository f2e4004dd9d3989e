"""Gradient-contribution analysis (ST-LIC, Table I): which loss term drives which module.

For a recipe whose codec loss names its weighted terms (``losses["terms"]``),
the gradient of each term is taken separately with respect to each module of
the codec (analysis, synthesis, entropy model, and a post-filter where there is
one). The table gives, per module, each term's share of the summed gradient
norms, averaged over a few batches; the suggested coefficients would give
every distortion term the same gradient norm on the synthesis transform.
"""

from __future__ import annotations

import math
from typing import Dict, List

import torch


def module_groups(model: torch.nn.Module) -> Dict[str, List[torch.nn.Parameter]]:
    groups = {}
    for name in ("g_a", "g_s", "latent_codec", "post_filter"):
        module = getattr(model, name, None)
        if module is not None:
            params = [p for p in module.parameters() if p.requires_grad]
            if params:
                groups[name] = params
    return groups


def analyze(trainer, steps: int = 10) -> Dict[str, Dict[str, float]]:
    """Mean gradient norm of every term on every module over ``steps`` batches (no update is made)."""
    model = trainer.model
    groups = module_groups(model)
    sums: Dict[str, Dict[str, float]] = {}
    for _ in range(steps):
        x, lmbda = trainer.next_batch()
        x, lmbda = x.to(trainer.device), lmbda.to(trainer.device)
        out = model(x, lmbda)
        losses = trainer.recipe.codec_loss(out, x, lmbda)
        terms = losses.get("terms")
        if not terms:
            from plic.errors import PlicError

            raise PlicError(f"the {trainer.cfg.recipe} recipe does not split its loss into terms")
        for term, value in terms.items():
            row = sums.setdefault(term, {g: 0.0 for g in groups})
            for g, params in groups.items():
                grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
                squares = sum(float((gr.double() ** 2).sum()) for gr in grads if gr is not None)
                row[g] += math.sqrt(squares) / steps
    return sums


def report(norms: Dict[str, Dict[str, float]], weights: Dict[str, float]) -> str:
    groups = list(next(iter(norms.values())))
    totals = {g: sum(row[g] for row in norms.values()) or 1.0 for g in groups}
    lines = ["term           " + "".join(f"{g:>16}" for g in groups)]
    for term, row in norms.items():
        lines.append(f"{term:<15}" + "".join(f"{100 * row[g] / totals[g]:>15.1f}%" for g in groups))
    distortion = {t: r["g_s"] for t, r in norms.items() if t in weights and r.get("g_s", 0) > 0}
    if distortion:
        target = sum(distortion.values()) / len(distortion)
        lines.append("")
        lines.append("suggested coefficients (equal gradient norm on g_s): " + ", ".join(
            f"{t}={weights[t] * target / n:.4g}" for t, n in distortion.items()))
    return "\n".join(lines)
