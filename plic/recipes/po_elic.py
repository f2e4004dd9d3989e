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

from plic.losses.adversarial import ADVERSARIAL
from plic.losses.discriminator import ConditionalDiscriminator
from plic.losses.pixel import charbonnier
from plic.losses.rate_target import rate_weight
from plic.losses.style import PatchedStyleLoss
from plic.recipes.base import Recipe, optimizer_state
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
        self.d_loss, self.g_loss = ADVERSARIAL["hinge"]

    def setup(self, trainer) -> None:
        from plic.metrics.lpips import lpips_network

        super().setup(trainer)
        device = trainer.device
        # building the frozen loss networks draws random initial weights (then
        # replaced): keep those draws out of the run's random stream, or a
        # resumed run (networks cached) would initialise its discriminator differently
        with torch.random.fork_rng(devices=[]):
            self.lpips = lpips_network("vgg16", str(device))
            self.style = PatchedStyleLoss().to(device)
        self.disc = ConditionalDiscriminator(trainer.model.M, spectral_norm=True).to(device)
        self.d_opt = torch.optim.Adam(self.disc.parameters(), lr=self.d_lr, betas=(0.5, 0.999))

    def terms(self, out, x) -> Dict[str, torch.Tensor]:
        """The weighted distortion terms, by name (also what --analyze-gradients splits)."""
        x_hat = out["x_hat"]
        for p in self.disc.parameters():
            p.requires_grad_(False)
        fake = self.disc(x_hat, out["y_hat"])
        for p in self.disc.parameters():
            p.requires_grad_(True)
        raw = {
            "lpips": self.lpips(x_hat.clamp(0, 1) * 2 - 1, x * 2 - 1).mean(),
            "charbonnier": charbonnier(x_hat, x),
            "adversarial": self.g_loss(fake),
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
        y_hat = out["y_hat"].detach()
        real = self.disc(x, y_hat)
        fake = self.disc(out["x_hat"].detach().clamp(0, 1), y_hat)
        loss = self.d_loss(real, fake)
        self.d_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.d_opt.step()
        with torch.no_grad():
            g = self.g_loss(fake)
        return {"d_loss": float(loss), "g_loss": float(g), "d_real": float(real.mean()), "d_fake": float(fake.mean())}

    def state(self):
        tensors = {f"disc.{k}": v for k, v in self.disc.state_dict().items()}
        t_opt, m_opt = optimizer_state(self.d_opt, "disc_opt")
        return {**tensors, **t_opt}, {"optim": m_opt}

    def load_state(self, tensors: Dict[str, torch.Tensor], meta: Dict[str, Any]) -> None:
        from plic.train.trainer import _optimizer_from_tensors

        self.disc.load_state_dict({k[len("disc."):]: v for k, v in tensors.items() if k.startswith("disc.")})
        _optimizer_from_tensors(self.d_opt, "disc_opt", tensors, meta["optim"])
