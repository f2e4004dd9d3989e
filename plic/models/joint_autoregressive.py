"""Joint autoregressive and hierarchical priors: CompressAI's ``mbt2018``, ``cheng2020-anchor`` and ``cheng2020-attn``.

Minnen, Ballé, Toderici (NeurIPS 2018) add a masked-convolution context model
over the already decoded latents to the mean-scale hyperprior; Cheng, Sun,
Takeuchi, Katto (CVPR 2020) keep that entropy model and swap the transforms
for residual blocks (and attention, in ``-attn``). plic builds each from
CompressAI's own model class and reuses its modules as they are: the
transforms, the hyper networks, the entropy bottleneck, the masked
convolution and the entropy-parameter network, wired into compressai's
``HyperpriorLatentCodec`` around a ``RasterScanLatentCodec``, which codes y
position by position in raster order exactly as CompressAI's
``compress()``/``decompress()`` do. Variable rate is plic's QVRF step, as
for every plic model; an imported checkpoint is fixed-rate at its lambda.

Decoding is serial over the latent's positions (a Python loop in
compressai), so it is as slow as CompressAI's own: seconds for a Kodak image.
"""

from __future__ import annotations

from typing import Any, Dict

from compressai.latent_codecs import HyperLatentCodec, HyperpriorLatentCodec, RasterScanLatentCodec

from plic.models.base import COMPRESSAI_MSE_LAMBDAS, VariableRateCodec
from plic.registry import register_model

#: plic registry name -> (CompressAI class, whether its latent has N channels rather than M)
ARCHITECTURES = {
    "mbt2018": ("JointAutoregressiveHierarchicalPriors", False),
    "cheng2020-anchor": ("Cheng2020Anchor", True),
    "cheng2020-attn": ("Cheng2020Attention", True),
}


class JointAutoregressive(VariableRateCodec):
    """Args: N, M as in the CompressAI class (Cheng2020's latent has N channels: M is ignored);
    lambda_min, lambda_max, lambda_ref as in every plic model."""

    architecture = "?"

    def __init__(self, N: int = 192, M: int = 192, lambda_min: float = COMPRESSAI_MSE_LAMBDAS[0],
                 lambda_max: float = COMPRESSAI_MSE_LAMBDAS[6], lambda_ref: float | None = None,
                 post_filter: int | None = None):
        import compressai.models

        super().__init__(lambda_min, lambda_max, lambda_ref)
        cls_name, latent_is_n = ARCHITECTURES[self.architecture]
        cls = getattr(compressai.models, cls_name)
        twin = cls(N) if latent_is_n else cls(N, M)
        self.N, self.M = int(N), int(N if latent_is_n else M)
        self.y_stride, self.stride = 16, 64
        self.g_a, self.g_s = twin.g_a, twin.g_s
        self.latent_codec = HyperpriorLatentCodec(latent_codec={
            "y": RasterScanLatentCodec(twin.gaussian_conditional, twin.entropy_parameters, twin.context_prediction),
            "hyper": HyperLatentCodec(entropy_bottleneck=twin.entropy_bottleneck, h_a=twin.h_a, h_s=twin.h_s),
        })
        self.add_post_filter(post_filter)

    def config(self) -> Dict[str, Any]:
        cfg: Dict[str, Any] = {"N": self.N, **self.rate_config()}  # with the post-filter's width, if any
        if not ARCHITECTURES[self.architecture][1]:
            cfg["M"] = self.M
        return cfg


@register_model("mbt2018")
class Mbt2018(JointAutoregressive):
    architecture = "mbt2018"


@register_model("cheng2020-anchor")
class Cheng2020Anchor(JointAutoregressive):
    architecture = "cheng2020-anchor"


@register_model("cheng2020-attn")
class Cheng2020Attention(JointAutoregressive):
    architecture = "cheng2020-attn"
