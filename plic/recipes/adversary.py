"""The adversary of the GAN recipes: a conditional discriminator, its optimizer and its losses."""

from __future__ import annotations

from typing import Any, Dict, Tuple

import torch
from torch import Tensor

from plic.losses.adversarial import ADVERSARIAL
from plic.losses.discriminator import ConditionalDiscriminator
from plic.models.frozen import frozen
from plic.train.optim_state import optimizer_from_tensors, optimizer_to_tensors


class Adversary:
    """HiFiC's conditional discriminator trained with ``loss`` ("hinge", "bce", "ls").

    ``generator_loss`` scores the codec's output with the discriminator frozen
    (its gradient reaches the codec only); ``step`` is the discriminator's own
    update on originals against (detached) reconstructions, after the codec's.
    """

    def __init__(self, latent_channels: int, device, loss: str, spectral_norm: bool, lr: float = 1e-4):
        self.disc = ConditionalDiscriminator(latent_channels, spectral_norm=spectral_norm).to(device)
        self.opt = torch.optim.Adam(self.disc.parameters(), lr=lr, betas=(0.5, 0.999))
        self.d_loss, self.g_loss = ADVERSARIAL[loss]

    def generator_loss(self, image: Tensor, y_hat: Tensor) -> Tensor:
        with frozen(self.disc):
            return self.g_loss(self.disc(image, y_hat))

    def step(self, x: Tensor, fake_image: Tensor, y_hat: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """One discriminator update; returns (its loss, real logits, fake logits)."""
        y_hat = y_hat.detach()
        real = self.disc(x, y_hat)
        fake = self.disc(fake_image.detach().clamp(0, 1), y_hat)
        loss = self.d_loss(real, fake)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.detach(), real.detach(), fake.detach()

    @staticmethod
    def accuracy(real: Tensor, fake: Tensor) -> Dict[str, float]:
        """The discriminator's accuracy on originals and on reconstructions (logit sign, per position).

        Near 1 on both, the codec's output is told apart everywhere (the adversary
        has won and its gradient says little); near 0.5, they are in balance.
        """
        return {"d_acc_real": float((real > 0).float().mean()), "d_acc_fake": float((fake < 0).float().mean())}

    def state(self) -> Tuple[Dict[str, Tensor], Dict[str, Any]]:
        tensors = {f"disc.{k}": v for k, v in self.disc.state_dict().items()}
        t_opt, m_opt = optimizer_to_tensors(self.opt, "disc_opt")
        return {**tensors, **t_opt}, {"optim": m_opt}

    def load_state(self, tensors: Dict[str, Tensor], meta: Dict[str, Any]) -> None:
        self.disc.load_state_dict({k[len("disc."):]: v for k, v in tensors.items() if k.startswith("disc.")})
        optimizer_from_tensors(self.opt, "disc_opt", tensors, meta["optim"])
