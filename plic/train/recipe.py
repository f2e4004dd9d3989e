"""The recipe interface the trainer drives, and the plain rate-distortion recipe.

The per-paper recipes live a layer above, in :mod:`plic.recipes`, and are
handed to the trainer (:func:`plic.recipes.make_trainer`); the trainer itself
knows only this contract and builds the default ``rd`` recipe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from torch import Tensor

from plic.errors import PlicError
from plic.train.loss import RateDistortionLoss

#: the distortions a codec trains on directly (others go through a learned proxy)
TRAINING_DISTORTIONS = ("mse", "ms-ssim")


@dataclass(frozen=True)
class TrainOptions:
    """What ``plic train`` says beside ``--recipe-arg``, for the recipe to read and check."""

    metric: Optional[str] = None
    crop: int = 128
    variable_rate: bool = False
    target_bpp: Optional[float] = None
    init: Optional[str] = None
    extra: Dict[str, Any] = None  # recipe-specific options of the command line (proxiqa: alpha, ...)


def training_distortion(options: TrainOptions) -> str:
    """``--metric`` as a training distortion: mse (default) or ms-ssim, with the crop MS-SSIM needs."""
    metric = options.metric or "mse"
    if metric not in TRAINING_DISTORTIONS:
        raise PlicError(f"--metric {metric} is not a training distortion; use --recipe proxiqa --metric {metric}")
    if metric == "ms-ssim" and options.crop < 256:
        raise PlicError("MS-SSIM (5 scales) needs --crop 256 or larger")
    return metric


def parameter_prefixes(train_only: str) -> Tuple[str, ...]:
    """The recipe argument ``train_only`` (comma-separated parameter-name prefixes) as a tuple."""
    return tuple(p.strip() for p in str(train_only).split(",") if p.strip())


class Recipe:
    """What one training step optimises.

    ``codec_loss`` returns ``{"loss": tensor, ...}`` plus float-able statistics
    for the log (``bpp`` and ``mse`` at least). ``after_step`` runs after the
    codec's update (train a proxy or a discriminator) and returns more
    statistics. ``state`` / ``load_state`` carry the recipe's own tensors and
    JSON-able settings through checkpoints, so a resumed run is exact.
    """

    name = "?"

    @classmethod
    def from_options(cls, options: TrainOptions) -> Tuple[Dict[str, Any], str]:
        """This recipe's settings from the command line's shared options, checked, and the
        trainer's pixel distortion. Recipes with a distortion of their own refuse ``--metric``."""
        metric = options.metric or "mse"
        if metric not in TRAINING_DISTORTIONS:
            raise PlicError(f"--metric {metric} is not a training distortion; use --recipe proxiqa --metric {metric}")
        if metric != "mse":
            raise PlicError(f"--recipe {cls.name} has its own distortion; drop --metric")
        return {}, "mse"

    def model_args(self) -> Dict[str, Any]:
        """Constructor arguments the recipe needs in the model (e.g. a post-filter)."""
        return {}

    #: parameter-name prefixes, the only parameters trained; empty: all (see :func:`parameter_prefixes`)
    train_only: Tuple[str, ...] = ()

    def trains(self, name: str) -> bool:
        """Whether the model parameter ``name`` is trained (all, unless ``train_only`` names prefixes)."""
        return not self.train_only or name.startswith(self.train_only)

    def setup(self, trainer) -> None:
        self.trainer = trainer

    def codec_loss(self, out: Dict[str, Any], x: Tensor, lmbda: Tensor) -> Dict[str, Tensor]:
        raise NotImplementedError

    def fresh_reconstructions(self, gen) -> tuple[Tensor, Dict[str, Any]]:
        """Crops and lambdas drawn from ``gen`` and the codec's output on them, without gradient:
        what a recipe's own network (a proxy, a discriminator) warms up on before the codec learns from it."""
        import torch

        trainer = self.trainer
        with torch.no_grad():
            x, lmbda = trainer.draw_batch(gen)
            x = x.to(trainer.device)
            return x, trainer.model(x, lmbda.to(trainer.device))

    def after_step(self, out: Dict[str, Any], x: Tensor, lmbda: Tensor) -> Dict[str, float]:
        return {}

    def state(self) -> tuple[Dict[str, Tensor], Dict[str, Any]]:
        return {}, {}

    def load_state(self, tensors: Dict[str, Tensor], meta: Dict[str, Any]) -> None:
        pass


class RateDistortion(Recipe):
    """``lambda * D + R`` with D = 255^2 MSE or 1 - MS-SSIM (the trainer's ``--metric``); with
    ``balance_rates=P`` each item weighed by its rate's running mean loss to the power -P
    (:mod:`plic.train.rate_balance`)."""

    name = "rd"

    @classmethod
    def from_options(cls, options: TrainOptions) -> Tuple[Dict[str, Any], str]:
        return {}, training_distortion(options)  # the trainer builds this recipe from its --metric

    def __init__(self, metric: str = "mse", train_only: str = "", balance_rates: float = 0):
        """``train_only``: comma-separated parameter-name prefixes, the only parameters trained (e.g.
        ``latent_codec``: the entropy model learns, the transforms keep their reconstructions).
        ``balance_rates=1``: every rate of a variable-rate run weighs alike, 0 (the default) the plain
        batch mean, a power between them in between (:mod:`plic.train.rate_balance`)."""
        try:
            power = float(balance_rates)
        except (TypeError, ValueError):  # --recipe-arg hands over what does not parse as text
            power = math.nan  # refused just below, in the words of any other bad power
        if not 0 <= power <= 1:
            raise PlicError(f"--recipe-arg balance_rates takes a power from 0 to 1, not {balance_rates!r}")
        self.loss_fn = RateDistortionLoss(metric)
        self.train_only = parameter_prefixes(train_only)
        self.balance_rates = power
        self.balance = None

    def setup(self, trainer) -> None:
        super().setup(trainer)
        if self.balance_rates:
            from plic.train.rate_balance import RateBalance

            if trainer.cfg.lambda_min == trainer.cfg.lambda_max:
                raise PlicError("--recipe-arg balance_rates needs a variable-rate run (--lambda-range)")
            if trainer.world.distributed:
                # each process would keep its own running means from its own crops, and a resumed run
                # would hand every process the first one's
                raise PlicError("--recipe-arg balance_rates trains in one process (no torchrun)")
            self.balance = RateBalance(trainer.cfg.lambda_min, trainer.cfg.lambda_max, power=self.balance_rates)

    def codec_loss(self, out, x, lmbda):
        losses = self.loss_fn(out, x, lmbda)
        if self.balance is not None:
            # the log's loss column is then the weighted one; the plain R + lambda D goes beside it (term_rd)
            losses["terms"] = {"rd": losses["loss"].detach()}
            losses["loss"] = self.balance.loss(lmbda.reshape(-1), losses["items"])
        return losses

    def state(self):
        return (self.balance.state() if self.balance is not None else {}), {"balance_rates": self.balance_rates}

    def load_state(self, tensors, meta) -> None:
        # a run's objective stays what it started with (runs from before the option had none; runs from
        # before the power stored the flag as 0 or 1, the same objectives as those powers)
        started = float(meta.get("balance_rates", 0))
        if started != self.balance_rates:
            raise PlicError(f"this run was started with --recipe-arg balance_rates={started:g}; "
                            "resume it as it was started")
        if self.balance is not None:
            self.balance.load_state(tensors)
