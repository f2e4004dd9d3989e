"""The mean-scale hyperprior with a checkerboard spatial context (He et al., CVPR 2021).

y is coded in two passes: the anchors (half of the positions, in a
checkerboard) from the hyperprior alone, then the other half with the decoded
anchors around them as context. The transforms and the hyperprior are
:class:`plic.models.hyperprior.MeanScaleHyperprior`'s, parameter for parameter,
so a trained hyperprior becomes this model by adding the context
(``scripts/add_context.py``; at that point it reconstructs every image exactly
as before, at the same rate) and then training. Measured on the shipped
default (benchmarks/rd_per_cpu_hour/README.md): the entropy model alone
(``--recipe-arg train_only=latent_codec``, which also moves the hyperprior's
means, so the pixels change a little) gains only 0.2 % BD-rate, since
transforms trained without a context leave little for it; with every
parameter training, the context adds about 0.8 points to what the same steps
give without it.

The entropy parameters are the hyperprior's means and scales plus a learned
correction from the context whose last layer starts at zero
(:class:`ResidualEntropyParameters`): before it learns anything, the model
codes exactly as the hyperprior it came from did. Decoding y takes two
passes, one after the other (anchors, then the rest, each with its own
payload), with the context convolution and a second entropy-parameter pass
between them.
"""

from __future__ import annotations

from compressai.latent_codecs import CheckerboardLatentCodec, GaussianConditionalLatentCodec
from compressai.layers import CheckerboardMaskedConv2d
from torch import Tensor, nn

from plic.models.hyperprior import MeanScaleHyperprior
from plic.registry import register_model


class ResidualEntropyParameters(nn.Module):
    """Means and scales from ``[context (2M), hyperprior's (2M)]``: the hyperprior's plus a pointwise
    correction (1x1 convolutions, as the checkerboard codec needs) whose last layer starts at zero."""

    def __init__(self, M: int):
        super().__init__()
        self.M = int(M)
        self.net = nn.Sequential(
            nn.Conv2d(4 * M, 10 * M // 3, 1), nn.LeakyReLU(inplace=True),
            nn.Conv2d(10 * M // 3, 8 * M // 3, 1), nn.LeakyReLU(inplace=True),
            nn.Conv2d(8 * M // 3, 2 * M, 1),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: Tensor) -> Tensor:
        return x[:, 2 * self.M:] + self.net(x)


@register_model("hyperprior-checkerboard")
class CheckerboardHyperprior(MeanScaleHyperprior):
    """Arguments as :class:`MeanScaleHyperprior`'s."""

    def y_codec(self) -> nn.Module:
        M = self.M
        return CheckerboardLatentCodec(
            latent_codec={"y": GaussianConditionalLatentCodec(quantizer="ste")},
            entropy_parameters=ResidualEntropyParameters(M),
            context_prediction=CheckerboardMaskedConv2d(M, 2 * M, kernel_size=5, stride=1, padding=2),
            # the STE rounding of the anchors around their means, as the decoder will see them
            forward_method="twopass",
        )

    def symbols_per_payload(self, shapes) -> list:
        # payloads: y's anchors, y's non-anchors (each bounded by the whole of y), z
        (c, hy, wy), (hz, wz) = shapes["y"], shapes["hyper"]
        return [c * hy * wy, c * hy * wy, self.N * hz * wz]
