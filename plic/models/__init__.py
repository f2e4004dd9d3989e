"""plic's codec architectures; importing this module registers them by name."""

from plic.models.base import COMPRESSAI_MSE_LAMBDAS, VariableRateCodec
from plic.models.elic import ELIC
from plic.models.hyperprior import MeanScaleHyperprior

__all__ = ["COMPRESSAI_MSE_LAMBDAS", "ELIC", "MeanScaleHyperprior", "VariableRateCodec"]
