"""PO-ELIC (He et al., CVPR 2022 workshop, "PO-ELIC: Perception-Oriented Efficient Learned Image Coding").

Finetunes an MSE codec at one rate point with

    L = w_rate(R) * R + l_lpips * LPIPS-VGG + l_charb * Charbonnier + l_adv * G_hinge + l_style * PatchedStyle

where ``w_rate`` is HiFiC's rate-target multiplexer (``lambda_above`` when the
batch item's rate is above ``target_bpp``, ``lambda_below`` otherwise), and
the adversary is HiFiC's conditional discriminator with spectral
normalisation, trained with the hinge loss on raw logits, one step after
every codec step (alternating). The codec trains at one QVRF step: the
model becomes fixed-rate at ``--lambda``, whose step it keeps from ``--init``.
"""

from __future__ import annotations

from typing import Any, Dict

import torch

from plic.losses.pixel import charbonnier
from plic.losses.rate_target import rate_weight
from plic.losses.style import PatchedStyleLoss
from plic.recipes.adversary import Adversary
from plic.recipes.base import Recipe
from plic.train.loss import bpp_per_item


class POELIC(Recipe):
    name = "po-elic"

    def __init__(self, target_bpp: float = 0.15, lambda_above: float = 4.0, lambda_below: float = 0.5,
                 l_lpips: float = 1.0, l_charb: float = 1.0, l_adv: float = 0.008, l_style: float = 100.0,
                 d_lr: float = 1e-4):
        self.target_bpp = float(target_bpp)
        self.lambda_above, self.lambda_below = float(lambda_above), float(lambda_below)
        self.weights = {"lpips": l_lpips, "charbonnier": l_charb, "adversarial": l_adv, "style": l_style}
        self.d_lr = float(d_lr)

    def setup(self, trainer) -> None:
        from plic.refine.distortion import distortion_fn

        super().setup(trainer)
        device = trainer.device
        # building the frozen loss networks draws random initial weights (then
        # replaced): keep those draws out of the run's random stream, or a
        # resumed run (networks cached) would initialise its discriminator differently
        with torch.random.fork_rng(devices=[]):
            self.lpips = distortion_fn("lpips", device)  # LPIPS-VGG, per image
            self.style = PatchedStyleLoss().to(device)
        self.adversary = Adversary(trainer.model.M, device, "hinge", spectral_norm=True, lr=self.d_lr)

    def terms(self, out, x) -> Dict[str, torch.Tensor]:
        """The weighted distortion terms, by name (also what --analyze-gradients splits)."""
        x_hat = out["x_hat"]
        raw = {
            "lpips": self.lpips(x_hat, x).mean(),
            "charbonnier": charbonnier(x_hat, x),
            "adversarial": self.adversary.generator_loss(x_hat, out["y_hat"]),
            "style": self.style(x_hat, x),
        }
        return {k: self.weights[k] * v for k, v in raw.items()}

    def codec_loss(self, out, x, lmbda) -> Dict[str, torch.Tensor]:
        n, _, h, w = x.shape
        bpp = bpp_per_item(out["likelihoods"], h * w)
        rate = (rate_weight(bpp, self.target_bpp, self.lambda_above, self.lambda_below) * bpp).mean()
        terms = self.terms(out, x)
        mse = ((out["x_hat"] - x) ** 2).mean()
        loss = rate + sum(terms.values())
        return {"loss": loss, "bpp": bpp.mean(), "mse": mse, "terms": {"rate": rate, **terms}}

    def after_step(self, out, x, lmbda) -> Dict[str, float]:
        loss, real, fake = self.adversary.step(x, out["x_hat"], out["y_hat"])
        g = self.adversary.g_loss(fake)
        return {"d_loss": float(loss), "g_loss": float(g), "d_real": float(real.mean()), "d_fake": float(fake.mean())}

    def state(self):
        return self.adversary.state()

    def load_state(self, tensors: Dict[str, torch.Tensor], meta: Dict[str, Any]) -> None:
        self.adversary.load_state(tensors, meta)
