"""The recipe interface the trainer drives, and the plain rate-distortion recipe.

The per-paper recipes live a layer above, in :mod:`plic.recipes`, and are
handed to the trainer (:func:`plic.recipes.make_trainer`); the trainer itself
knows only this contract and builds the default ``rd`` recipe.
"""

from __future__ import annotations

from typing import Any, Dict

from torch import Tensor

from plic.train.loss import RateDistortionLoss


class Recipe:
    """What one training step optimises.

    ``codec_loss`` returns ``{"loss": tensor, ...}`` plus float-able statistics
    for the log (``bpp`` and ``mse`` at least). ``after_step`` runs after the
    codec's update (train a proxy or a discriminator) and returns more
    statistics. ``state`` / ``load_state`` carry the recipe's own tensors and
    JSON-able settings through checkpoints, so a resumed run is exact.
    """

    name = "?"

    def model_args(self) -> Dict[str, Any]:
        """Constructor arguments the recipe needs in the model (e.g. a refiner)."""
        return {}

    def trains(self, name: str) -> bool:
        """Whether the model parameter ``name`` is trained (all are, by default)."""
        return True

    def setup(self, trainer) -> None:
        self.trainer = trainer

    def codec_loss(self, out: Dict[str, Any], x: Tensor, lmbda: Tensor) -> Dict[str, Tensor]:
        raise NotImplementedError

    def after_step(self, out: Dict[str, Any], x: Tensor, lmbda: Tensor) -> Dict[str, float]:
        return {}

    def state(self) -> tuple[Dict[str, Tensor], Dict[str, Any]]:
        return {}, {}

    def load_state(self, tensors: Dict[str, Tensor], meta: Dict[str, Any]) -> None:
        pass


class RateDistortion(Recipe):
    """``lambda * D + R`` with D = 255^2 MSE or 1 - MS-SSIM (the trainer's ``--metric``)."""

    name = "rd"

    def __init__(self, metric: str = "mse"):
        self.loss_fn = RateDistortionLoss(metric)

    def codec_loss(self, out, x, lmbda):
        return self.loss_fn(out, x, lmbda)
