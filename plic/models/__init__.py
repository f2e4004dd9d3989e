"""plic's codec architectures; importing this module registers them by name."""

import torch  # noqa: F401  (first: see plic._compressai.defer_scipy_stats)

from plic import _compressai

_compressai.defer_scipy_stats()

from plic.models.base import COMPRESSAI_MSE_LAMBDAS, VariableRateCodec  # noqa: E402
from plic.models.elic import ELIC  # noqa: E402
from plic.models.hyperprior import MeanScaleHyperprior  # noqa: E402
from plic.models.hyperprior_checkerboard import CheckerboardHyperprior  # noqa: E402
from plic.models.joint_autoregressive import Cheng2020Anchor, Cheng2020Attention, Mbt2018  # noqa: E402
from plic.models.scale_hyperprior import ScaleHyperprior  # noqa: E402
from plic.models.vbr import MeanScaleHyperpriorVbr, ScaleHyperpriorVbr  # noqa: E402

__all__ = ["COMPRESSAI_MSE_LAMBDAS", "CheckerboardHyperprior",
           "Cheng2020Anchor", "Cheng2020Attention", "ELIC", "MeanScaleHyperprior", "Mbt2018",
           "MeanScaleHyperpriorVbr", "ScaleHyperprior", "ScaleHyperpriorVbr", "VariableRateCodec"]
