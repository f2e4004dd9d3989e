"""Mean-scale hyperprior (Minnen, Ballé, Toderici, NeurIPS 2018) without the
autoregressive context: the base model of SGA+.

Transforms as in compressai's ``MeanScaleHyperprior``; the entropy coding is a
compressai ``HyperpriorLatentCodec`` (EntropyBottleneck for z, Gaussian
conditional with mean and scale for y).
"""

from __future__ import annotations

from typing import Any, Dict

from compressai.entropy_models import EntropyBottleneck
from compressai.latent_codecs import (
    GaussianConditionalLatentCodec,
    HyperLatentCodec,
    HyperpriorLatentCodec,
)
from compressai.layers import GDN
from compressai.models.utils import conv, deconv
from torch import nn

from plic.models.base import COMPRESSAI_MSE_LAMBDAS, VariableRateCodec
from plic.models.rate_film import RateConditionedSynthesis
from plic.models.shortcut import (
    ORTHO_WEIGHT,
    InverseWaveletShortcut,
    WaveletShortcut,
    WithShortcuts,
    orthogonality_penalty,
)
from plic.registry import register_model


@register_model("hyperprior")
class MeanScaleHyperprior(VariableRateCodec):
    """Args:
    N: channels of the transforms (unless transform_channels is given), of the
        hyper transforms and of the hyper latent z; M: channels of the latent y.
    lambda_min, lambda_max: trained Lagrange multiplier range (QVRF).
    levels: stride-2 stages of the analysis transform: 4 (y at 1/16 of the
        image side, as in the paper), 3 (1/8) or 2 (1/4); the innermost stages
        then keep the resolution. A finer latent has 4 or 16 times the
        elements: more bits go to side information at low rates, but a narrow
        model is no longer squeezed through 0.375 latent values per pixel at
        high rates (benchmarks/README.md, "Where the default model saturates").
    shortcut: a linear wavelet path beside both transforms (AuxT,
        :mod:`plic.models.shortcut`), trained with an orthogonality penalty;
        4 levels only.
    rate_film: the synthesis told the rate, a FiLM from the QVRF step after each
        of its GDNs (:mod:`plic.models.rate_film`); starts as no change.
    transform_channels: channels of g_a and g_s alone, where N is too narrow for
        high rates while the hyperprior's side information is not
        (scripts/widen_transforms.py widens a trained model's; None: N).
    """

    def __init__(
        self,
        N: int = 128,
        M: int = 192,
        lambda_min: float = COMPRESSAI_MSE_LAMBDAS[0],
        lambda_max: float = COMPRESSAI_MSE_LAMBDAS[6],
        lambda_ref: float | None = None,
        post_filter: int | None = None,
        levels: int = 4,
        shortcut: bool = False,
        rate_film: bool = False,
        transform_channels: int | None = None,
    ):
        super().__init__(lambda_min, lambda_max, lambda_ref)
        if levels not in (2, 3, 4):
            raise ValueError("levels must be 2, 3 or 4")
        if shortcut and levels != 4:
            raise ValueError("the wavelet shortcut halves every stage: it needs levels=4")
        if shortcut and rate_film:
            raise ValueError("a rate-conditioned synthesis with the wavelet shortcut is not built")
        self.N, self.M, self.levels, self.shortcut = int(N), int(M), int(levels), bool(shortcut)
        self.rate_film = bool(rate_film)
        self.transform_channels = int(transform_channels or N)
        T = self.transform_channels
        # y is 2**levels smaller than the image, z another 4 times (h_a's two stride-2 stages)
        self.y_stride = 2**levels
        self.stride = self.y_stride * 4
        # the four stages halve the resolution from the outside in; the innermost
        # 4 - levels stages keep it
        s = [2 if i < levels else 1 for i in range(4)]
        self.g_a = nn.Sequential(
            conv(3, T, stride=s[0]), GDN(T), conv(T, T, stride=s[1]), GDN(T),
            conv(T, T, stride=s[2]), GDN(T), conv(T, M, stride=s[3]),
        )
        self.g_s = nn.Sequential(
            deconv(M, T, stride=s[3]), GDN(T, inverse=True),
            deconv(T, T, stride=s[2]), GDN(T, inverse=True),
            deconv(T, T, stride=s[1]), GDN(T, inverse=True),
            deconv(T, 3, stride=s[0]),
        )
        if shortcut:
            # taps after each stage's GDN (and the last convolution), where AuxT adds its path
            self.g_a = WithShortcuts(list(self.g_a), [WaveletShortcut(3, T), WaveletShortcut(T, T),
                                                      WaveletShortcut(T, T), WaveletShortcut(T, M)], (1, 3, 5, 6))
            self.g_s = WithShortcuts(list(self.g_s), [InverseWaveletShortcut(M, T), InverseWaveletShortcut(T, T),
                                                      InverseWaveletShortcut(T, T), InverseWaveletShortcut(T, 3)],
                                     (1, 3, 5, 6))
        if rate_film:
            self.g_s = RateConditionedSynthesis(list(self.g_s), (T, T, T), (1, 3, 5))  # after each inverse GDN
        h_a = nn.Sequential(
            conv(M, N, stride=1, kernel_size=3), nn.LeakyReLU(inplace=True),
            conv(N, N, stride=2, kernel_size=5), nn.LeakyReLU(inplace=True),
            conv(N, N, stride=2, kernel_size=5),
        )
        h_s = nn.Sequential(
            deconv(N, M, stride=2, kernel_size=5), nn.LeakyReLU(inplace=True),
            deconv(M, M * 3 // 2, stride=2, kernel_size=5), nn.LeakyReLU(inplace=True),
            conv(M * 3 // 2, M * 2, stride=1, kernel_size=3),
        )
        self.latent_codec = HyperpriorLatentCodec(
            latent_codec={
                "y": self.y_codec(),
                "hyper": HyperLatentCodec(
                    entropy_bottleneck=EntropyBottleneck(N), h_a=h_a, h_s=h_s, quantizer="ste"
                ),
            }
        )
        self.add_post_filter(post_filter)

    def y_codec(self) -> nn.Module:
        """The latent codec of y given the hyper-synthesis' means and scales."""
        # The decoder sees y rounded around its predicted mean (STE) while the
        # rate uses additive noise: the "mixed" quantization surrogate that
        # trains better than noise alone.
        return GaussianConditionalLatentCodec(quantizer="ste")

    def config(self) -> Dict[str, Any]:
        cfg: Dict[str, Any] = {"N": self.N, "M": self.M, **self.rate_config()}
        if self.levels != 4:  # files of 4-level models keep the config they always had
            cfg["levels"] = self.levels
        if self.shortcut:
            cfg["shortcut"] = True
        if self.rate_film:
            cfg["rate_film"] = True
        if self.transform_channels != self.N:  # likewise
            cfg["transform_channels"] = self.transform_channels
        return cfg

    def regularization(self):
        return ORTHO_WEIGHT * orthogonality_penalty(self) if self.shortcut else None
