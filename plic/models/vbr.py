"""CompressAI's variable-bitrate models: ``bmshj2018-hyperprior-vbr`` and ``mbt2018-mean-vbr``.

Kamisli, Racapé, Choi (DCC 2024) make one model cover all rates with a learned
gain per rate level (the latent is multiplied by it before rounding),
quantization-reconstruction offsets (a small network of the predicted scale
and the gain moves each nonzero symbol's reconstruction towards zero) and, in
the zoo's models, a hyper-latent whose quantization step follows the gain too
(``EntropyBottleneckVbr``).

plic keeps CompressAI's modules and its order of operations. What changes is
where the rate lives: plic's :class:`plic.codec.Codec` divides y by a step
``a(lambda)`` and codes the result, so here ``a = 1 / gain``, the gain being
interpolated log-linearly between the levels' gains at the levels' lambdas
(what CompressAI's ``inputscale`` does between levels). The hyper-latent's step
is not interpolated: another z step would need CDF tables computed at decode
time, which plic never does (floats that differ in the last bit between
machines would pick other tables; see :mod:`plic.codec`). So z takes the
nearest level's step, whose tables are built once and frozen in the weight
file. At the eight trained lambdas a file codes what CompressAI's
``compress(s=level)`` codes.

CompressAI's ``mbt2018-vbr`` (autoregressive context with offsets) is not
here: its recursive offset reconstruction has no counterpart in plic's
raster-scan coder yet.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Sequence

import torch
from compressai.entropy_models import EntropyBottleneckVbr
from compressai.ops import quantize_ste
from torch import Tensor, nn

from plic.models.base import COMPRESSAI_MSE_LAMBDAS, VariableRateCodec, resize_buffers_like
from plic.registry import register_model

#: plic's per-level table buffers (``{name}_{level}``) -> the bottleneck's buffer each is loaded into
_Z_TABLES = (("z_cdf", "_quantized_cdf"), ("z_offset", "_offset"), ("z_cdf_length", "_cdf_length"))


class VbrHyper(nn.Module):
    """The hyper path's modules, under the names plic's latent hooks look for (``h_a``, ``h_s``)."""

    def __init__(self, h_a: nn.Module, h_s: nn.Module, entropy_bottleneck: nn.Module, abs_input: bool):
        super().__init__()
        self.h_a, self.h_s, self.entropy_bottleneck = h_a, h_s, entropy_bottleneck
        self.abs_input = abs_input

    def analysis(self, y: Tensor) -> Tensor:
        return self.h_a(torch.abs(y) if self.abs_input else y)


class VbrLatentCodec(nn.Module):
    """Codes ``y * gain`` (what plic's Codec hands over: ``y / a``) at the lambda set by :meth:`bind`.

    Payloads ``[y, z]`` and shapes ``{"y": (H, W), "hyper": (h, w)}``, like
    compressai's hyperprior latent codecs, so plic's header and padding rules
    apply unchanged.
    """

    def __init__(self, twin, lambdas: Sequence[float], with_means: bool):
        super().__init__()
        self.hyper = VbrHyper(twin.h_a, twin.h_s, twin.entropy_bottleneck, abs_input=not with_means)
        self.gaussian_conditional = twin.gaussian_conditional
        self.Gain = twin.Gain
        self.QuantABCD = twin.QuantABCD
        self.z_variable = isinstance(twin.entropy_bottleneck, EntropyBottleneckVbr)
        if self.z_variable:
            self.gayn2zqstep, self.lower_bound_zqstep = twin.gayn2zqstep, twin.lower_bound_zqstep
        self.with_means = with_means
        # float32, as weight files keep buffers (and as the header keeps lambda)
        self.register_buffer("lambdas", torch.tensor(list(lambdas), dtype=torch.float32))
        levels = len(lambdas)
        # per level: z's quantization step and its CDF tables (built by update(), frozen in the file)
        self.register_buffer("z_steps", torch.ones(levels))
        for i in range(levels):
            for name, _ in _Z_TABLES:
                self.register_buffer(f"{name}_{i}", torch.zeros(0, dtype=torch.int32))
        self._bound = float(lambdas[0])

    def __getitem__(self, key: str) -> nn.Module:
        if key != "hyper":
            raise KeyError(key)
        return self.hyper

    # ---------------------------------------------------------------- rate
    def gain(self, lmbda: Tensor) -> Tensor:
        """The gain at each lambda (float64): a level's own at its lambda, log-linear between levels."""
        lam = torch.as_tensor(lmbda, dtype=torch.float64).reshape(-1)
        log_l = self.lambdas.to(lam.device, torch.float64).log()
        log_g = self.Gain.abs().to(lam.device, torch.float64).log()
        t = lam.log().clamp(log_l[0], log_l[-1])
        i = torch.searchsorted(log_l, t).clamp(1, len(log_l) - 1)
        w = (t - log_l[i - 1]) / (log_l[i] - log_l[i - 1])
        g = torch.exp(log_g[i - 1] * (1 - w) + log_g[i] * w)
        # exactly the level's gain at its lambda (the header stores lambda as float32)
        level = self.level(lam)
        exact = (lam / self.lambdas.to(lam.device, torch.float64)[level] - 1).abs() < 1e-6
        return torch.where(exact, self.Gain.abs().to(lam.device, torch.float64)[level], g)

    def level(self, lmbda: Tensor) -> Tensor:
        """The level nearest each lambda (log scale): whose z step and tables code z."""
        lam = torch.as_tensor(lmbda, dtype=torch.float64).reshape(-1)
        return (lam.log()[:, None] - self.lambdas.to(lam.device, torch.float64).log()[None]).abs().argmin(1)

    def bind(self, lmbda: float) -> None:
        """Code at ``lmbda`` from now on (the gain and z's level)."""
        self._bound = float(lmbda)

    def _rate(self):
        """The bound lambda's gain (detached, as CompressAI trains it) and z's level."""
        lam = torch.tensor([self._bound], dtype=torch.float64)
        return self.gain(lam).detach().to(self.Gain.dtype), int(self.level(lam))

    def _z_step(self, level: int) -> Tensor:
        return self.z_steps[level].to(self.Gain.dtype)

    @torch.no_grad()
    def update(self, force: bool = False) -> bool:
        """Build the Gaussian conditional's table and z's tables at every level's step."""
        from compressai.models.base import get_scale_table

        self.gaussian_conditional.update_scale_table(get_scale_table(), force=True)
        eb = self.hyper.entropy_bottleneck
        for i in range(len(self.lambdas)):
            if self.z_variable:
                # CompressAI's own computation of the step, in its precision (float32)
                step = self.lower_bound_zqstep(self.gayn2zqstep(1.0 / self.Gain.abs()[i].float().view(1)))
                self.z_steps[i] = step.reshape(())
                eb.update_variable(force=True, qs=self.z_steps[i].float())
            else:
                eb.update(force=True)
            for name, attr in _Z_TABLES:
                table = getattr(eb, attr).detach().clone().to(torch.int32)
                getattr(self, f"{name}_{i}").resize_(table.shape).copy_(table)
        self._use_tables(0)  # the bottleneck's own buffers: level 0's (a fixed state, fingerprinted)
        return True

    def _use_tables(self, level: int) -> None:
        eb = self.hyper.entropy_bottleneck
        for name, attr in _Z_TABLES:
            table = getattr(self, f"{name}_{level}")
            buf = getattr(eb, attr)
            buf.resize_(table.shape).copy_(table)

    # --------------------------------------------------------------- coding
    def _gaussian_params(self, z_hat: Tensor):
        params = self.hyper.h_s(z_hat)
        if self.with_means:
            scales, means = params.chunk(2, 1)
            return scales, means
        return params, torch.zeros_like(params)

    def _offsets(self, q_abs: Tensor, scales: Tensor, gain: Tensor) -> Tensor:
        """CompressAI's reconstruction offsets (towards zero), zero where the symbol is zero."""
        stdev = self.gaussian_conditional.lower_bound_scale(scales * gain)
        both = torch.stack((stdev, gain.to(stdev).expand_as(stdev)), dim=4)
        offsets = -self.QuantABCD(both).squeeze(4)
        return torch.where(q_abs < 0.0001, torch.zeros_like(offsets), offsets)

    def _z_code(self, level: int):
        self._use_tables(level)
        return {"qs": self._z_step(level)} if self.z_variable else {}

    def compress(self, y_scaled: Tensor) -> Dict[str, Any]:
        gain, level = self._rate()
        gain = gain.to(y_scaled)
        y = y_scaled / gain
        z = self.hyper.analysis(y)
        eb, kw = self.hyper.entropy_bottleneck, self._z_code(level)
        z_strings = eb.compress(z, **kw)
        z_hat = eb.decompress(z_strings, z.shape[-2:], **kw).to(y)
        scales, means = self._gaussian_params(z_hat)
        indexes = self.gaussian_conditional.build_indexes(scales * gain)
        y_strings = self.gaussian_conditional.compress(y_scaled, indexes, means=means * gain)
        return {"strings": [y_strings, z_strings], "shape": {"y": tuple(y.shape[-2:]), "hyper": tuple(z.shape[-2:])}}

    def decompress(self, strings, shape, **kwargs) -> Dict[str, Any]:
        gain, level = self._rate()
        eb, kw = self.hyper.entropy_bottleneck, self._z_code(level)
        dtype = self.Gain.dtype
        z_hat = eb.decompress(strings[1], tuple(shape["hyper"]), **kw).to(dtype)
        gain = gain.to(dtype)
        scales, means = self._gaussian_params(z_hat)
        indexes = self.gaussian_conditional.build_indexes(scales * gain)
        q = self.gaussian_conditional.decompress(strings[0], indexes, dtype).to(dtype)
        q_abs = q.abs()
        y_hat_scaled = torch.sign(q) * (q_abs + self._offsets(q_abs, scales, gain)) + means * gain
        return {"y_hat": y_hat_scaled}

    def forward(self, y_scaled: Tensor) -> Dict[str, Any]:
        """Training surrogate at the bound lambda (CompressAI's stage 2): STE with offsets, noisy likelihoods."""
        gain, level = self._rate()
        gain = gain.to(y_scaled)
        y = y_scaled / gain
        z = self.hyper.analysis(y)
        eb = self.hyper.entropy_bottleneck
        if self.z_variable:
            z_hat, z_likelihoods = eb(z, qs=self._z_step(level).to(z), training=None, ste=False)
        else:
            _, z_likelihoods = eb(z)
            medians = eb._get_medians().reshape(1, -1, 1, 1)
            z_hat = quantize_ste(z - medians) + medians
        scales, means = self._gaussian_params(z_hat)
        centred = (y - means) * gain
        signs = torch.sign(centred).detach()
        q_abs = quantize_ste(centred.abs())
        y_hat_scaled = signs * (q_abs + self._offsets(q_abs, scales, gain)) + means * gain
        _, y_likelihoods = self.gaussian_conditional(y_scaled, scales * gain, means=means * gain)
        return {"y_hat": y_hat_scaled, "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}


class Vbr(VariableRateCodec):
    """Args: N, M as in the CompressAI class; ``z_variable``: the zoo's variable-step hyper-latent
    (``vr_entbttlnck``). The rate range is the levels' lambdas (CompressAI's eight)."""

    compressai_class = "?"
    with_means = False
    #: why SGA+ / SNIC refuse this model (plic.refine.problem.check_refinable)
    not_refinable = ("its variable-rate entropy models quantize outside the hooks encode-time refinement "
                     "replaces (CompressAI's vbr classes)")

    def __init__(self, N: int = 192, M: int = 320, z_variable: bool = True,
                 lambda_min: float = COMPRESSAI_MSE_LAMBDAS[0], lambda_max: float = COMPRESSAI_MSE_LAMBDAS[-1],
                 lambda_ref: float | None = None):
        import compressai.models.vbr as vbr

        twin = getattr(vbr, self.compressai_class)(N, M, vr_entbttlnck=bool(z_variable))
        lambdas = [lam for lam in twin.lmbda if lambda_min * (1 - 1e-6) <= lam <= lambda_max * (1 + 1e-6)]
        if len(lambdas) != len(twin.lmbda):
            raise ValueError(f"{self.compressai_class} covers lambda {twin.lmbda[0]:g}..{twin.lmbda[-1]:g}")
        super().__init__(lambda_min, lambda_max, lambda_ref)
        self.N, self.M, self.z_variable = int(N), int(M), bool(z_variable)
        self.y_stride, self.stride = 16, 64
        self.g_a, self.g_s = twin.g_a, twin.g_s
        self.latent_codec = VbrLatentCodec(twin, twin.lmbda, with_means=self.with_means)
        self.latent_codec.bind(lambdas[0])

    def config(self) -> Dict[str, Any]:
        return {"N": self.N, "M": self.M, "z_variable": self.z_variable, **self.rate_config()}

    def update(self, scale_table=None, force: bool = False) -> bool:
        return self.latent_codec.update(force=force)

    def aux_loss(self) -> Tensor:
        # compressai's sums EntropyBottleneck modules only; the vbr bottleneck is another class
        return self.latent_codec.hyper.entropy_bottleneck.loss()

    def quant_step(self, lmbda: Tensor) -> Tensor:
        return (1.0 / self.latent_codec.gain(lmbda)).reshape(-1, 1, 1, 1)

    def quality_to_lambda(self, quality: float) -> float:
        """Quality 1..8 are the eight levels (CompressAI's ``s`` = quality - 1); log-linear between them."""
        if not 1 <= quality <= 8:
            raise ValueError("quality must be between 1 and 8")
        lambdas = [float(v) for v in self.latent_codec.lambdas]
        i = min(int(math.floor(quality)), 7)
        t = quality - i
        return math.exp(math.log(lambdas[i - 1]) * (1 - t) + math.log(lambdas[i]) * t)

    def load_state_dict(self, state_dict, strict: bool = True, **kwargs):
        # the per-level CDF tables' lengths come with the weights (compressai resizes only its own classes' tables)
        resize_buffers_like(self, state_dict)
        return nn.Module.load_state_dict(self, state_dict, strict=strict, **kwargs)

    def latent_pass(self, y: Tensor, lmbda) -> Dict[str, Any]:
        lam = torch.as_tensor(lmbda, dtype=torch.float64).reshape(-1)
        if lam.numel() == 1:
            lam = lam.expand(y.shape[0])
        a = self.quant_step(lam).to(y)
        outs = []
        for i in range(y.shape[0]):  # z's step is one scalar per call: one item at a time
            self.latent_codec.bind(float(lam[i]))
            outs.append(self.latent_codec(y[i:i + 1] / a[i:i + 1]))
        likelihoods = {k: torch.cat([o["likelihoods"][k] for o in outs]) for k in ("y", "z")}
        return {"y_hat": torch.cat([o["y_hat"] for o in outs]), "likelihoods": likelihoods}

    def forward(self, x: Tensor, lmbda, autocast_dtype=None) -> Dict[str, Any]:
        y = self.g_a(x)
        out = self.latent_pass(y, lmbda)
        y_hat = out["y_hat"] * self.quant_step(torch.as_tensor(lmbda)).to(y)
        return {"x_hat": self.g_s(y_hat), "likelihoods": out["likelihoods"], "y": y, "y_hat": y_hat}


@register_model("scale-hyperprior-vbr")
class ScaleHyperpriorVbr(Vbr):
    compressai_class = "ScaleHyperpriorVbr"


@register_model("hyperprior-vbr")
class MeanScaleHyperpriorVbr(Vbr):
    compressai_class = "MeanScaleHyperpriorVbr"
    with_means = True
