"""Rate-distortion training of a model whose latent was just widened.

``scripts/widen_latent.py`` grafts new latent channels onto a trained
hyperprior; their synthesis weights start at zero. Under the plain R-D loss
the rate term shrinks the new channels at once, while the distortion term can
only pull on them once the synthesis has learnt to use them: measured on the
default model, the new channels carried 0.015-0.025 bpp at lambda 0.45 after
2,000-3,500 steps and zeroing them changed nothing
(``benchmarks/transform_ceiling/transform_ceiling.md``). This recipe lets them in for free
first: the rate of channels ``free_from`` and up is left out of the loss for
``hold`` steps, then phased in linearly over ``ramp`` steps. The logged bpp is
always the full rate.
"""

from __future__ import annotations

from plic.errors import PlicError
from plic.train.loss import RateDistortionLoss, bpp_per_item
from plic.train.recipe import Recipe, TrainOptions, training_distortion


class GrowLatent(Recipe):
    name = "grow-latent"

    @classmethod
    def from_options(cls, options: TrainOptions):
        metric = training_distortion(options)
        return {"metric": metric}, metric

    def __init__(self, free_from: int, hold: int = 1000, ramp: int = 3000, metric: str = "mse"):
        self.free_from, self.hold, self.ramp = int(free_from), int(hold), int(ramp)
        if self.free_from < 1 or self.hold < 0 or self.ramp < 0:
            raise PlicError("grow-latent needs free_from >= 1, hold >= 0 and ramp >= 0")
        self.loss_fn = RateDistortionLoss(metric)

    def setup(self, trainer) -> None:
        super().setup(trainer)
        if self.free_from >= trainer.model.M:
            raise PlicError(f"free_from={self.free_from} leaves no channel of the model's M={trainer.model.M} free")

    def rate_weight(self, step: int) -> float:
        """Weight of the new channels' rate at ``step``: 0 while held, then a linear ramp to 1."""
        if step < self.hold:
            return 0.0
        return 1.0 if self.ramp == 0 else min(1.0, (step - self.hold) / self.ramp)

    def codec_loss(self, out, x, lmbda):
        losses = self.loss_fn(out, x, lmbda)
        w = self.rate_weight(self.trainer.step)
        if w < 1:
            new_bpp = bpp_per_item({"y": out["likelihoods"]["y"][:, self.free_from:]}, x.shape[2] * x.shape[3])
            losses["loss"] = losses["loss"] - (1 - w) * new_bpp.mean()
        return {**losses, "terms": {"new_rate_weight": w}}
