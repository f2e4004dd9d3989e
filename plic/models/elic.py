"""ELIC (He et al., CVPR 2022): uneven channel groups (16, 16, 32, 64, M-128)
with a checkerboard (two-pass, parallel) spatial context in each group.

The transforms and the space-channel context model are compressai's
``Elic2022Official`` (built from its ``ChannelGroupsLatentCodec`` and
``CheckerboardLatentCodec``); plic adds the QVRF variable-rate step of
:class:`plic.models.base.VariableRateCodec` around it.

``elic-chandelier`` is compressai's ``Elic2022Chandelier``: the same entropy
model with residual-bottleneck transforms, whose channel context sees only
the first and the latest decoded group (Chandelier 2023). plic has it so that
checkpoints trained with CompressAI import (``plic import
compressai:elic2022-chandelier``).
"""

from __future__ import annotations

from typing import Any, Dict, Sequence

from compressai.models.sensetime import Elic2022Chandelier, Elic2022Official

from plic.models.base import COMPRESSAI_MSE_LAMBDAS, VariableRateCodec
from plic.registry import register_model


@register_model("elic")
class ELIC(VariableRateCodec):
    stride = 64
    reference_class = Elic2022Official

    def __init__(
        self,
        N: int = 192,
        M: int = 320,
        groups: Sequence[int] | None = None,
        lambda_min: float = COMPRESSAI_MSE_LAMBDAS[0],
        lambda_max: float = COMPRESSAI_MSE_LAMBDAS[6],
        lambda_ref: float | None = None,
        post_filter: int | None = None,
    ):
        super().__init__(lambda_min, lambda_max, lambda_ref)
        groups = list(groups) if groups is not None else [16, 16, 32, 64, M - 128]
        if sum(groups) != M or any(g <= 0 for g in groups):
            raise ValueError(f"channel groups {groups} must be positive and sum to M={M}")
        reference = self.reference_class(N=N, M=M, groups=groups)
        self.N, self.M, self.groups = int(N), int(M), [int(g) for g in groups]
        self.g_a = reference.g_a
        self.g_s = reference.g_s
        self.latent_codec = reference.latent_codec
        self.add_post_filter(post_filter)

    def symbols_per_payload(self, shapes) -> list:
        # payloads: for each channel group, the checkerboard's anchor and
        # non-anchor halves (each bounded by the whole group); then z
        counts = []
        for c, h, w in shapes["y"]:
            counts += [c * h * w, c * h * w]
        hz, wz = shapes["hyper"]
        return counts + [self.N * hz * wz]

    def config(self) -> Dict[str, Any]:
        return {
            "N": self.N, "M": self.M, "groups": self.groups, **self.rate_config(),
        }


@register_model("elic-chandelier")
class ELICChandelier(ELIC):
    # its channel-context shortcut is a method compressai binds to this very
    # latent codec object (kept as it is), so coding follows it too
    reference_class = Elic2022Chandelier
