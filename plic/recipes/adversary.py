"""The adversary of the GAN recipes: a conditional discriminator, its optimizer and its losses."""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from plic.losses.adversarial import ADVERSARIAL
from plic.losses.discriminator import ConditionalDiscriminator, FeatureDiscriminator
from plic.models.frozen import frozen
from plic.train.optim_state import optimizer_from_tensors, optimizer_to_tensors

#: what a discriminator reads: an image, or a feature discriminator's (maps, their scales)
Inputs = Union[Tensor, Tuple[Sequence[Tensor], Sequence[Tensor]]]


class Adversary:
    """A conditional discriminator trained with ``loss`` ("hinge", "bce", "ls").

    ``on="pixels"``: HiFiC's discriminator on images; ``on="vgg16"``:
    :class:`FeatureDiscriminator` on VGG16 maps, given as ``(maps, scales)``.
    ``generator_loss`` scores the codec's output with the discriminator frozen
    (its gradient reaches the codec only); ``step`` is the discriminator's own
    update on originals against (detached) reconstructions, after the codec's.
    """

    def __init__(self, latent_channels: int, device, loss: str, spectral_norm: bool, lr: float = 1e-4,
                 on: str = "pixels"):
        if on == "pixels":
            self.disc = ConditionalDiscriminator(latent_channels, spectral_norm=spectral_norm).to(device)
        else:
            self.disc = FeatureDiscriminator(latent_channels, spectral_norm=spectral_norm).to(device)
        self.on = on
        self.opt = torch.optim.Adam(self.disc.parameters(), lr=lr, betas=(0.5, 0.999))
        self.d_loss, self.g_loss = ADVERSARIAL[loss]

    def logits(self, inputs: Inputs, y_hat: Tensor) -> Tensor:
        if self.on == "pixels":
            return self.disc(inputs, y_hat)
        maps, scales = inputs
        return self.disc(maps, y_hat, scales)

    def generator_loss(self, fake: Inputs, y_hat: Tensor, item_weights: Optional[Tensor] = None) -> Tensor:
        """The codec's adversarial loss; with ``item_weights`` (one per batch item), their weighted mean
        of each item's own loss."""
        with frozen(self.disc):
            logits = self.logits(fake, y_hat)
        if item_weights is None:
            return self.g_loss(logits)
        per_item = torch.stack([self.g_loss(item) for item in logits.split(1)])
        return (item_weights.to(per_item) * per_item).mean()

    def step(self, real_in: Inputs, fake_in: Inputs, y_hat: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """One discriminator update; returns (its loss, real logits, fake logits)."""
        y_hat = y_hat.detach()
        if self.on == "pixels":
            fake_in = fake_in.detach().clamp(0, 1)
        else:
            fake_in = ([m.detach() for m in fake_in[0]], fake_in[1])
        real = self.logits(real_in, y_hat)
        fake = self.logits(fake_in, y_hat)
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
