"""Common skeleton of plic's codecs: analysis, variable-rate gain, latent codec, synthesis.

Every plic model is ``x -> g_a -> y -> y / a(lambda) -> latent codec -> * a(lambda) -> g_s``.
The latent codec is one of compressai's ``LatentCodec`` modules (hyperprior,
channel groups, checkerboard...), so entropy models, the rANS coder and the
context models are compressai's.

Variable rate follows QVRF (Tong et al., ICIP 2023): one scalar quantization
step ``a`` scales the latent before quantization and back after, so one set of
weights serves a continuous range of Lagrange multipliers. We tie ``a`` to
lambda in closed form, ``a = sqrt(lambda_max / lambda)``: under the high-rate
approximation the MSE-optimal uniform quantizer step grows as
``1/sqrt(lambda)``, and a closed form keeps the rate parameter a single float
in the bitstream header with no learned table to keep in sync. A fixed-rate
model is the special case ``lambda_min == lambda_max`` (``a == 1``).

``lambda_ref`` is the lambda whose step is 1 (by default ``lambda_max``). It
is kept separate from the range so that a model can be finetuned onto a wider
range (steps below 1 for the new, higher rates) without changing the step its
weights were trained with at any lambda it already knew.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Sequence

import torch
from compressai.models import CompressionModel
from torch import Tensor

from plic.models.rate_film import synthesize

#: Lagrange multipliers of CompressAI's quality levels 1..8 (MSE models). A
#: user of CompressAI reads ``--quality 3`` as lambda 0.0067; plic keeps that.
COMPRESSAI_MSE_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800)


def quality_to_lambda(quality: float, lambda_min: float, lambda_max: float) -> float:
    """``quality`` in [1, 8] mapped log-linearly onto [lambda_min, lambda_max] (1 is lambda_min, 8 lambda_max)."""
    if not 1 <= quality <= 8:
        raise ValueError("quality must be between 1 and 8")
    t = (quality - 1) / 7
    return math.exp(math.log(lambda_min) * (1 - t) + math.log(lambda_max) * t)


def check_lambda_range(lmbda: float, lambda_min: float, lambda_max: float) -> None:
    """ValueError unless ``lmbda`` lies in [lambda_min, lambda_max]."""
    # a small tolerance: lambdas round-trip through float32 in the header
    if not lambda_min * (1 - 1e-6) <= lmbda <= lambda_max * (1 + 1e-6):
        raise ValueError(f"lambda {lmbda:g} is outside this model's range [{lambda_min:g}, {lambda_max:g}]")


def load_state_resizing(module: torch.nn.Module, state: Dict[str, Tensor]) -> None:
    """``module.load_state_dict(state)``, CDF tables of another length resized first.

    The tables' length changes as a model trains; compressai only resizes empty
    ones, and a model built here may hold tables of another length already.
    """
    resize_buffers_like(module, state)
    module.load_state_dict(state)


def resize_buffers_like(module: torch.nn.Module, state: Dict[str, Tensor]) -> None:
    """Give ``module``'s buffers the shapes they have in ``state`` (before loading it)."""
    for name, buf in module.named_buffers():
        if name in state and buf.shape != state[name].shape:
            buf.resize_(state[name].shape)


class VariableRateCodec(CompressionModel):
    """Base class: subclasses define ``g_a``, ``g_s`` and ``latent_codec``.

    Args:
        lambda_min, lambda_max: range of Lagrange multipliers the model is
            trained for (equal for a fixed-rate model).
        lambda_ref: the lambda whose quantization step is 1 (default lambda_max).
    """

    #: total down-sampling factor of the deepest latent: inputs are padded to it.
    stride: int = 64
    #: down-sampling factor of the latent y, the synthesis' input
    y_stride: int = 16
    registry_name: str = "?"

    def __init__(self, lambda_min: float, lambda_max: float, lambda_ref: float | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0 < lambda_min <= lambda_max:
            raise ValueError("need 0 < lambda_min <= lambda_max")
        if lambda_ref is not None and not lambda_ref > 0:
            raise ValueError("need lambda_ref > 0")
        self.lambda_min = float(lambda_min)
        self.lambda_max = float(lambda_max)
        self.lambda_ref = float(lambda_max if lambda_ref is None else lambda_ref)
        self.post_filter = None

    def add_post_filter(self, channels: int | None) -> None:
        """Give the model ST-LIC's post-filter (``channels`` wide; None: none)."""
        if channels:
            from plic.models.post_filter import UNetPostFilter

            self.post_filter = UNetPostFilter(int(channels))

    def rate_config(self) -> Dict[str, Any]:
        cfg: Dict[str, Any] = {"lambda_min": self.lambda_min, "lambda_max": self.lambda_max, "lambda_ref": self.lambda_ref}
        if self.post_filter is not None:
            cfg["post_filter"] = self.post_filter_channels
        return cfg

    @property
    def post_filter_channels(self) -> int | None:
        return None if self.post_filter is None else self.post_filter.inc[0].out_channels

    # ----------------------------------------------------------------- rate
    @property
    def variable_rate(self) -> bool:
        return self.lambda_min < self.lambda_max

    def config(self) -> Dict[str, Any]:
        """Constructor arguments, stored in weight files to rebuild the model."""
        raise NotImplementedError

    def regularization(self) -> Tensor | None:
        """A term the training loss adds (a model's own penalty on its weights); None: nothing."""
        return None

    def quant_step(self, lmbda: Tensor) -> Tensor:
        """QVRF quantization step for each lambda, shaped to broadcast over NCHW."""
        lmbda = torch.as_tensor(lmbda, dtype=torch.float64).reshape(-1, 1, 1, 1)
        return torch.sqrt(self.lambda_ref / lmbda)

    def quality_to_lambda(self, quality: float) -> float:
        """Map ``quality`` in [1, 8] log-linearly onto the trained lambda range.

        Fractional qualities are allowed; 1 is ``lambda_min``, 8 ``lambda_max``.
        """
        return quality_to_lambda(quality, self.lambda_min, self.lambda_max)

    def check_lambda(self, lmbda: float) -> None:
        check_lambda_range(lmbda, self.lambda_min, self.lambda_max)

    def symbols_per_payload(self, shapes) -> list:
        """Number of symbols coded in each payload, from the header's latent shapes.

        Default: a hyperprior codec whose payloads are ``[y, z]`` with shapes
        ``{"y": (H, W), "hyper": (h, w)}``.
        """
        (hy, wy), (hz, wz) = shapes["y"], shapes["hyper"]
        return [self.M * hy * wy, self.N * hz * wz]

    def synthesize(self, y_hat: Tensor, a: Tensor) -> Tensor:
        """The image from the dequantized latent ``y_hat`` (the coded symbols times the QVRF step ``a``);
        a synthesis told the rate (:mod:`plic.models.rate_film`) gets ``a`` too."""
        return synthesize(self.g_s, y_hat, a)

    # -------------------------------------------------------------- training
    def latent_pass(self, y: Tensor, lmbda) -> Dict[str, Any]:
        """The latent codec's training pass on the analysis output ``y`` at ``lmbda`` (one, or one per item).

        Its ``y_hat`` is in the coded domain (divided by the QVRF step).
        """
        a = self.quant_step(torch.as_tensor(lmbda)).to(y)
        return self.latent_codec(y / a)

    def forward(self, x: Tensor, lmbda: Tensor | float | Sequence[float],
                autocast_dtype: torch.dtype | None = None) -> Dict[str, Any]:
        """Training / evaluation pass with quantization surrogates.

        ``lmbda`` is one value or one per batch item. With ``autocast_dtype``
        (mixed precision, e.g. ``torch.bfloat16``) the analysis and synthesis
        transforms run in that precision; the latent codec always runs in
        float32, because likelihoods of a few bits each lose the rate in a
        7-bit mantissa.
        """
        with _autocast(x.device, autocast_dtype):
            y = self.g_a(x)
        y = y.float()
        a = self.quant_step(torch.as_tensor(lmbda)).to(y)
        if a.shape[0] == 1:
            a = a.expand(y.shape[0], 1, 1, 1)
        with _autocast(x.device, None):
            out = self.latent_codec(y / a)
        with _autocast(x.device, autocast_dtype):
            x_hat = self.synthesize(out["y_hat"] * a, a)
        # y_hat: the quantized latent as the synthesis sees it (a GAN discriminator's condition)
        result = {"x_hat": x_hat.float(), "likelihoods": out["likelihoods"], "y": y, "y_hat": out["y_hat"] * a}
        if self.post_filter is not None:
            with _autocast(x.device, autocast_dtype):
                result["x_post"] = self.post_filter(result["x_hat"]).float()
        return result


def _autocast(device: torch.device, dtype: torch.dtype | None):
    """Mixed precision in ``dtype``, or (None) plain float32 even inside an outer autocast."""
    if dtype is None:
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=dtype)
