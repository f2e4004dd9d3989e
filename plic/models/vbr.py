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

SGA+ and SNIC reach these models through :attr:`VbrLatentCodec.refine_quantizer`
(set by :func:`plic.models.latent_hooks.quantized_with`): CompressAI's vbr
entropy models quantize outside the ``EntropyModel.quantize`` that plic's hook
replaces, so the latent codec applies the soft rounding itself, in the same
places and steps as its coder (z in units of its level's step, y centred on its
means), with the reconstruction offset phased in as the rounded value leaves
zero.

CompressAI's ``mbt2018-vbr`` adds Minnen's masked-convolution context to the
mean-scale model, conditioned on the gain (``scale_to_context``); its context
reads the reconstructions *with* their offsets, so coding, decoding and its
training forward all go position by position in raster order
(:class:`VbrRasterScanLatentCodec`, as CompressAI's own ``compress`` does).
Encode-time refinement is refused on it, as on every autoregressive model.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Sequence

import torch
import torch.nn.functional as F
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
        #: set by plic.models.latent_hooks.quantized_with for encode-time refinement: a
        #: function of centred values (in units of the step) that forward uses to quantize
        self.refine_quantizer = None

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

    def hyper_latent(self, y_scaled: Tensor) -> Tensor:
        """The hyper-latent the coder would code for ``y_scaled`` at the bound lambda."""
        gain, _ = self._rate()
        return self.hyper.analysis(y_scaled / gain.to(y_scaled))

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
        """Training surrogate at the bound lambda (CompressAI's stage 2): STE with offsets, noisy likelihoods.

        With :attr:`refine_quantizer` set, the refinement surrogate instead (:meth:`_refined`).
        """
        gain, level = self._rate()
        gain = gain.to(y_scaled)
        y = y_scaled / gain
        z = self.hyper.analysis(y)
        if self.refine_quantizer is not None:
            return self._refined(y, z, gain, level, self.refine_quantizer)
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

    def _refined(self, y: Tensor, z: Tensor, gain: Tensor, level: int, fn) -> Dict[str, Any]:
        """``fn`` in place of rounding, where and in the units the coder rounds; likelihoods of what it gives.

        With ``fn = torch.round`` this is exactly what the file codes and the
        decoder shows. The likelihoods are those of the coder's tables: z's
        interval is its level's step wide (compressai's vbr forward passes the
        step where the interval's flag goes and prices a unit interval).
        """
        eb = self.hyper.entropy_bottleneck
        medians = eb._get_medians().reshape(1, -1, 1, 1)
        qs = self._z_step(level).to(z) if self.z_variable else torch.ones((), dtype=z.dtype, device=z.device)
        z_hat = medians + qs * fn((z - medians) / qs)
        values = z_hat.transpose(0, 1).reshape(z_hat.shape[1], 1, -1)  # compressai's (C, 1, N) layout
        if self.z_variable:
            z_lik, _, _ = eb._likelihood_variable(values, qs=qs)
        else:
            z_lik, _, _ = eb._likelihood(values)
        if eb.use_likelihood_bound:
            z_lik = eb.likelihood_lower_bound(z_lik)
        z_lik = z_lik.reshape(z_hat.shape[1], z_hat.shape[0], *z_hat.shape[2:]).transpose(0, 1)
        scales, means = self._gaussian_params(z_hat)
        q = fn((y - means) * gain)
        # the decoder moves a nonzero symbol towards zero by the offset; the gate |q| (at most 1)
        # is 0 at zero and 1 at every other integer, so hard rounding reconstructs exactly
        stdev = self.gaussian_conditional.lower_bound_scale(scales * gain)
        both = torch.stack((stdev, gain.to(stdev).expand_as(stdev)), dim=4)
        offsets = -self.QuantABCD(both).squeeze(4)
        y_hat_scaled = q + torch.sign(q) * offsets * q.abs().clamp(max=1) + means * gain
        gc = self.gaussian_conditional
        y_lik = gc._likelihood(q + means * gain, scales * gain, means * gain)
        if gc.use_likelihood_bound:
            y_lik = gc.likelihood_lower_bound(y_lik)
        return {"y_hat": y_hat_scaled, "likelihoods": {"y": y_lik, "z": z_lik}}


class VbrRasterScanLatentCodec(VbrLatentCodec):
    """CompressAI's ``mbt2018-vbr`` latent coding: the hyperprior of :class:`VbrLatentCodec` plus a 5x5
    masked context over the reconstructed latent (offsets included), shifted by a function of the gain.

    Coded position by position in raster order, as CompressAI's ``_compress_ar``
    / ``_decompress_ar`` do: the same symbols, indexes and reconstructions.
    """

    KERNEL = 5
    PAD = 2

    def __init__(self, twin, lambdas: Sequence[float]):
        super().__init__(twin, lambdas, with_means=True)
        self.context_prediction = twin.context_prediction
        self.entropy_parameters = twin.entropy_parameters
        self.scale_to_context = twin.scale_to_context

    def _gaussian_params(self, z_hat: Tensor):
        raise NotImplementedError("the context model's parameters are per position (_at)")

    def _at(self, y_hat: Tensor, params: Tensor, h: int, w: int, weight: Tensor, ctx_gain: Tensor):
        """Scales and means of position (h, w) from the causal neighbourhood of the padded ``y_hat``."""
        crop = y_hat[:, :, h: h + self.KERNEL, w: w + self.KERNEL].clone()  # y_hat changes in place later
        ctx = F.conv2d(crop, weight, bias=self.context_prediction.bias) + ctx_gain
        scales, means = self.entropy_parameters(torch.cat((params[:, :, h: h + 1, w: w + 1], ctx), 1)).chunk(2, 1)
        return scales, means

    def _reconstruct(self, q: Tensor, scales: Tensor, means: Tensor, gain: Tensor) -> Tensor:
        q_abs = q.abs()
        return torch.sign(q) * (q_abs + self._offsets(q_abs, scales, gain)) / gain + means

    def _context(self, gain: Tensor):
        weight = self.context_prediction.weight * self.context_prediction.mask
        ctx_gain = self.scale_to_context(gain.reshape(1, 1).to(weight)).view(1, -1, 1, 1)
        return weight, ctx_gain

    def _hyper(self, y: Tensor, level: int, coded: bool):
        eb, kw = self.hyper.entropy_bottleneck, self._z_code(level)
        z = self.hyper.analysis(y)
        if coded:
            z_strings = eb.compress(z, **kw)
            return z_strings, z.shape[-2:], eb.decompress(z_strings, z.shape[-2:], **kw).to(y)
        _, z_likelihoods = eb(z)
        medians = eb._get_medians().reshape(1, -1, 1, 1)
        return z_likelihoods, z.shape[-2:], quantize_ste(z - medians) + medians

    def compress(self, y_scaled: Tensor) -> Dict[str, Any]:
        from compressai.ans import BufferedRansEncoder

        gain, level = self._rate()
        gain = gain.to(y_scaled)
        y = y_scaled / gain
        z_strings, z_shape, z_hat = self._hyper(y, level, coded=True)
        params = self.hyper.h_s(z_hat)
        weight, ctx_gain = self._context(gain)
        gc = self.gaussian_conditional
        tables = gc.quantized_cdf.tolist(), gc.cdf_length.tolist(), gc.offset.tolist()
        height, width = y.shape[-2:]
        y_strings = []
        for i in range(y.shape[0]):
            y_hat = F.pad(y[i: i + 1], (self.PAD,) * 4)  # only the causal (already replaced) positions are read
            symbols, indexes = [], []
            for h in range(height):
                for w in range(width):
                    scales, means = self._at(y_hat, params[i: i + 1], h, w, weight, ctx_gain)
                    centred = (y_hat[:, :, h + self.PAD: h + self.PAD + 1, w + self.PAD: w + self.PAD + 1] - means) * gain
                    q = torch.sign(centred) * torch.round(centred.abs())
                    y_hat[:, :, h + self.PAD: h + self.PAD + 1, w + self.PAD: w + self.PAD + 1] = \
                        self._reconstruct(q, scales, means, gain)
                    symbols.extend(q.int().flatten().tolist())
                    indexes.extend(gc.build_indexes(scales * gain).flatten().tolist())
            encoder = BufferedRansEncoder()
            encoder.encode_with_indexes(symbols, indexes, *tables)
            y_strings.append(encoder.flush())
        return {"strings": [y_strings, z_strings], "shape": {"y": (height, width), "hyper": tuple(z_shape)}}

    def decompress(self, strings, shape, **kwargs) -> Dict[str, Any]:
        from compressai.ans import RansDecoder

        gain, level = self._rate()
        eb, kw = self.hyper.entropy_bottleneck, self._z_code(level)
        dtype = self.Gain.dtype
        gain = gain.to(dtype)
        z_hat = eb.decompress(strings[1], tuple(shape["hyper"]), **kw).to(dtype)
        params = self.hyper.h_s(z_hat)
        weight, ctx_gain = self._context(gain)
        gc = self.gaussian_conditional
        tables = gc.quantized_cdf.tolist(), gc.cdf_length.tolist(), gc.offset.tolist()
        height, width = shape["y"]
        y_hat = torch.zeros(len(strings[0]), self.context_prediction.in_channels, height + 2 * self.PAD,
                            width + 2 * self.PAD, dtype=dtype)
        for i, y_string in enumerate(strings[0]):
            decoder = RansDecoder()
            decoder.set_stream(y_string)
            item = y_hat[i: i + 1]
            for h in range(height):
                for w in range(width):
                    scales, means = self._at(item, params[i: i + 1], h, w, weight, ctx_gain)
                    symbols = decoder.decode_stream(gc.build_indexes(scales * gain).flatten().tolist(), *tables)
                    q = torch.tensor(symbols, dtype=dtype).view(1, -1, 1, 1)
                    item[:, :, h + self.PAD: h + self.PAD + 1, w + self.PAD: w + self.PAD + 1] = \
                        self._reconstruct(q, scales, means, gain)
        y_hat = y_hat[:, :, self.PAD: self.PAD + height, self.PAD: self.PAD + width]
        return {"y_hat": y_hat * gain}

    def forward(self, y_scaled: Tensor) -> Dict[str, Any]:
        """CompressAI's stage-2 training forward (``_stequantization``): recursive, STE with offsets."""
        if self.refine_quantizer is not None:
            raise ValueError("encode-time refinement does not reach an autoregressive context")
        gain, level = self._rate()
        gain = gain.to(y_scaled)
        y = y_scaled / gain
        z_likelihoods, _, z_hat = self._hyper(y, level, coded=False)
        params = self.hyper.h_s(z_hat)
        weight, ctx_gain = self._context(gain)
        height, width = y.shape[-2:]
        y_hat = F.pad(y, (self.PAD,) * 4)
        y_likelihoods = torch.zeros_like(y)
        for h in range(height):
            for w in range(width):
                scales, means = self._at(y_hat, params, h, w, weight, ctx_gain)
                at = (slice(None), slice(None), slice(h + self.PAD, h + self.PAD + 1), slice(w + self.PAD, w + self.PAD + 1))
                centred = (y_hat[at].clone() - means) * gain
                _, y_likelihoods[:, :, h: h + 1, w: w + 1] = self.gaussian_conditional(centred, scales * gain)
                signs = torch.sign(centred).detach()
                q_abs = quantize_ste(centred.abs())
                y_hat[at] = signs * (q_abs + self._offsets(q_abs, scales, gain)) / gain + means
        y_hat = y_hat[:, :, self.PAD: self.PAD + height, self.PAD: self.PAD + width]
        return {"y_hat": y_hat * gain, "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}


class Vbr(VariableRateCodec):
    """Args: N, M as in the CompressAI class; ``z_variable``: the zoo's variable-step hyper-latent
    (``vr_entbttlnck``). The rate range is the levels' lambdas (CompressAI's eight)."""

    compressai_class = "?"
    with_means = False

    def __init__(self, N: int = 192, M: int = 320, z_variable: bool = True,
                 lambda_min: float = COMPRESSAI_MSE_LAMBDAS[0], lambda_max: float = COMPRESSAI_MSE_LAMBDAS[-1],
                 lambda_ref: float | None = None):
        twin = self._twin(N, M, z_variable)
        lambdas = [lam for lam in twin.lmbda if lambda_min * (1 - 1e-6) <= lam <= lambda_max * (1 + 1e-6)]
        if len(lambdas) != len(twin.lmbda):
            raise ValueError(f"{self.compressai_class} covers lambda {twin.lmbda[0]:g}..{twin.lmbda[-1]:g}")
        super().__init__(lambda_min, lambda_max, lambda_ref)
        self.N, self.M, self.z_variable = int(N), int(M), bool(z_variable)
        self.y_stride, self.stride = 16, 64
        self.g_a, self.g_s = twin.g_a, twin.g_s
        self.latent_codec = self._latent_codec(twin)
        self.latent_codec.bind(lambdas[0])

    @classmethod
    def _twin(cls, N: int, M: int, z_variable: bool):
        import compressai.models.vbr as vbr

        return getattr(vbr, cls.compressai_class)(N, M, vr_entbttlnck=bool(z_variable))

    def _latent_codec(self, twin) -> VbrLatentCodec:
        return VbrLatentCodec(twin, twin.lmbda, with_means=self.with_means)

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


@register_model("mbt2018-vbr")
class Mbt2018Vbr(Vbr):
    """CompressAI's ``mbt2018-vbr``: its hyper-latent has one fixed step (no ``z_variable``)."""

    compressai_class = "JointAutoregressiveHierarchicalPriorsVbr"
    with_means = True
    #: why SGA+ / SNIC refuse this model (plic.refine.problem.check_refinable)
    not_refinable = "its autoregressive context reads reconstructions the optimisation cannot soften"

    def __init__(self, N: int = 192, M: int = 320, z_variable: bool = False, **kwargs):
        if z_variable:
            raise ValueError("mbt2018-vbr's hyper-latent has a fixed step")
        super().__init__(N, M, z_variable=False, **kwargs)

    @classmethod
    def _twin(cls, N: int, M: int, z_variable: bool):
        import compressai.models.vbr as vbr

        return vbr.JointAutoregressiveHierarchicalPriorsVbr(N, M)

    def _latent_codec(self, twin) -> VbrLatentCodec:
        return VbrRasterScanLatentCodec(twin, twin.lmbda)
