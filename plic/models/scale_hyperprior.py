"""Scale hyperprior (Balle, Minnen, Singh, Hwang, Johnston, ICLR 2018): CompressAI's ``bmshj2018-hyperprior``.

The hyperprior predicts only the scale of each latent (the mean is zero);
the hyper-analysis sees ``|y|`` and uses ReLUs, as in CompressAI's
``ScaleHyperprior``, whose layer names this model keeps so that its
checkpoints load as they are (``plic import compressai:bmshj2018-hyperprior``).
Entropy coding is compressai's ``HyperpriorLatentCodec`` with a scale-only
Gaussian conditional, and variable rate comes from plic's QVRF step like
every plic model.
"""

from __future__ import annotations

from typing import Any, Dict

import torch
from compressai.entropy_models import EntropyBottleneck
from compressai.latent_codecs import GaussianConditionalLatentCodec, HyperLatentCodec, HyperpriorLatentCodec
from compressai.layers import GDN
from compressai.models.utils import conv, deconv
from torch import nn

from plic.models.base import COMPRESSAI_MSE_LAMBDAS, VariableRateCodec
from plic.registry import register_model


class AbsThen(nn.Sequential):
    """The layers applied to ``|x|`` (the scale hyperprior's hyper-analysis)."""

    def forward(self, x):
        return super().forward(torch.abs(x))


@register_model("scale-hyperprior")
class ScaleHyperprior(VariableRateCodec):
    """Args: N, M as in CompressAI's ``ScaleHyperprior``; lambda_min, lambda_max, lambda_ref as in every plic model."""

    def __init__(self, N: int = 128, M: int = 192, lambda_min: float = COMPRESSAI_MSE_LAMBDAS[0],
                 lambda_max: float = COMPRESSAI_MSE_LAMBDAS[6], lambda_ref: float | None = None,
                 post_filter: int | None = None):
        super().__init__(lambda_min, lambda_max, lambda_ref)
        self.N, self.M = int(N), int(M)
        self.y_stride, self.stride = 16, 64
        self.g_a = nn.Sequential(conv(3, N), GDN(N), conv(N, N), GDN(N), conv(N, N), GDN(N), conv(N, M))
        self.g_s = nn.Sequential(deconv(M, N), GDN(N, inverse=True), deconv(N, N), GDN(N, inverse=True),
                                 deconv(N, N), GDN(N, inverse=True), deconv(N, 3))
        h_a = AbsThen(conv(M, N, stride=1, kernel_size=3), nn.ReLU(inplace=True), conv(N, N), nn.ReLU(inplace=True),
                      conv(N, N))
        h_s = nn.Sequential(deconv(N, N), nn.ReLU(inplace=True), deconv(N, N), nn.ReLU(inplace=True),
                            conv(N, M, stride=1, kernel_size=3), nn.ReLU(inplace=True))
        self.latent_codec = HyperpriorLatentCodec(latent_codec={
            "y": GaussianConditionalLatentCodec(quantizer="ste", chunks=("scales",)),
            "hyper": HyperLatentCodec(entropy_bottleneck=EntropyBottleneck(N), h_a=h_a, h_s=h_s, quantizer="ste"),
        })
        self.add_post_filter(post_filter)

    def config(self) -> Dict[str, Any]:
        return {"N": self.N, "M": self.M, **self.rate_config()}
