"""PO-ELIC (He et al., CVPR 2022 workshop, "PO-ELIC: Perception-Oriented Efficient Learned Image Coding").

Finetunes an MSE codec at one rate point with

    L = w_rate(R) * R + l_lpips * LPIPS-VGG + l_charb * Charbonnier + l_adv * G_hinge + l_style * PatchedStyle
        [+ l_lowpass * MSE of 16x16 block means + l_grid * periodic MSE, plic's, off by default]

where ``w_rate`` is HiFiC's rate-target multiplexer (``lambda_above`` when the
batch item's rate is above ``target_bpp``, ``lambda_below`` otherwise), and
the adversary is HiFiC's conditional discriminator with spectral
normalisation, trained with the hinge loss on raw logits, one step after
every codec step (alternating). The codec trains at one QVRF step: the
model becomes fixed-rate at ``--lambda``, whose step it keeps from ``--init``.

Variable rate (plic's extension, ``--lambda-range``): with ``target_bpp=0``
each batch item's rate target is the ``--init`` model's own rate on that crop
at that item's lambda (times ``target_scale``), from a frozen copy of its
analysis and entropy model. The multiplexer then holds every lambda near the
MSE model's rate while the perceptual terms decide how those bits are spent,
so one set of weights covers the whole range and ``--quality`` keeps its
meaning; the paper trains one model per rate point instead.

LPIPS-VGG and the style loss share one VGG16 pass
(:class:`plic.losses.perceptual.LPIPSAndStyle`): the same numbers for a
third less time per step.

Discriminator warm-up (``d_warmup``, plic's addition): a discriminator that
starts from random weights gives the codec no useful gradient; on this CPU a
finetune is a few thousand steps, too short for the two to find their
balance from scratch. So the discriminator first trains alone for
``d_warmup`` steps on the init codec's reconstructions (fresh crops, no
codec update, about a sixth of a full step each), then both alternate.

A discriminator on VGG16 features (``discriminator=vgg16``, plic's, after
Projected GANs): HiFiC's pixel discriminator needs thousands of steps from
random weights before it tells this codec's reconstructions apart; small
heads on the VGG16 maps the LPIPS/style pass has already computed do it in
about a hundred (benchmarks/perceptual/discriminator_features.txt), with no
extra VGG pass. Same condition (the latent), same hinge loss, spectral norm.

Colour anchor (``l_lowpass``, plic's): with the feature discriminator at
l_adv 0.15 the codec drifted by up to 4.4 levels in one channel over flat
regions (kodim20's sky lost its yellow); an MSE on 16x16 block means
(:func:`plic.losses.pixel.lowpass_mse`) holds colour and brightness and
leaves texture to the perceptual terms.

Grid penalty (``l_grid``, plic's): the GAN-finetuned models print a faint
16-pixel dot grid on flat areas (the synthesis transform's period;
benchmarks/perceptual/artefacts.md). :func:`plic.losses.pixel.periodic_mse`
is the mean square of the error's part that repeats with that period in
every crop, which leaves texture free.

Rate-dependent adversary (``adv_slope``, plic's, for variable rate): each
crop's adversarial weight is ``l_adv * (lambda_mid / lambda) ** adv_slope``,
lambda_mid the geometric middle of ``--lambda-range``: a strong adversary
where the bitstream leaves texture to synthesise, a weaker one where it
carries it (at l_adv 0.3 for every rate, 0.075 bpp gained on LPIPS-Alex and
DISTS and 0.30 bpp lost). Measured (benchmarks/perceptual/README.md): with
adv_slope 0.6 the lowest rate gained most and 0.30 bpp lost even more,
through the transforms all rates share.

Encoder-only finetune (``train_only=g_a,latent_codec``, plic's): the synthesis, and so the
decoder users already have, stays as it is; only what the encoder sends changes. Per image,
SGA+ with LPIPS-VGG moved DISTS by 21 % at equal rate through the latents alone
(benchmarks/perceptual/README.md), so part of that seemed there for an encoder to learn;
measured with l_lpips 2 and no adversary, 600 steps, it was worse on LPIPS-Alex and DISTS.

Cheaper variants (plic's, measured in benchmarks/perceptual/README.md):
``lpips_net=alexnet`` puts LPIPS-Alex in the loss instead of LPIPS-VGG
(17x cheaper on this CPU; the style loss reads VGG16 features, so it must be
off, ``l_style=0``), and ``l_adv=0`` builds no discriminator at all (a step
then skips the discriminator's update, 0.3 s of one thread).
"""

from __future__ import annotations

import copy
import math
from typing import Any, Dict

import torch

from plic.errors import PlicError
from plic.losses.discriminator import FeatureDiscriminator
from plic.losses.distortion import distortion_fn
from plic.losses.perceptual import LPIPSAndStyle
from plic.losses.pixel import charbonnier, lowpass_mse, periodic_mse
from plic.losses.rate_target import rate_weight
from plic.recipes.adversary import Adversary
from plic.train.loss import bpp_per_item
from plic.train.recipe import Recipe, TrainOptions, parameter_prefixes


class POELIC(Recipe):
    name = "po-elic"

    @classmethod
    def from_options(cls, options: TrainOptions):
        super().from_options(options)  # refuses --metric
        if options.variable_rate and not (options.target_bpp or options.init):
            raise PlicError("--recipe po-elic --lambda-range holds each crop at the --init model's rate: give --init")
        # variable rate without --target-bpp: per-crop targets from the init model (0)
        return {"target_bpp": options.target_bpp or (0.0 if options.variable_rate else 0.15)}, "mse"

    def __init__(self, target_bpp: float = 0.15, lambda_above: float = 4.0, lambda_below: float = 0.5,
                 l_lpips: float = 1.0, l_charb: float = 1.0, l_adv: float = 0.008, l_style: float = 100.0,
                 d_lr: float = 1e-4, target_scale: float = 1.0, d_warmup: int = 0, lpips_net: str = "vgg16",
                 discriminator: str = "pixels", l_lowpass: float = 0.0, l_grid: float = 0.0,
                 adv_slope: float = 0.0, train_only: str = ""):
        if lpips_net not in ("vgg16", "alexnet"):
            raise PlicError(f"po-elic: lpips_net must be vgg16 or alexnet, not {lpips_net!r}")
        if discriminator not in ("pixels", "vgg16"):
            raise PlicError(f"po-elic: discriminator must be pixels or vgg16, not {discriminator!r}")
        if discriminator == "vgg16" and lpips_net != "vgg16":
            raise PlicError("po-elic: discriminator=vgg16 reads the LPIPS-VGG pass; it needs lpips_net=vgg16")
        self.discriminator = discriminator
        if lpips_net == "alexnet" and l_style:
            raise PlicError("po-elic: the style loss reads VGG16 features; with lpips_net=alexnet set l_style=0")
        self.lpips_net = lpips_net
        self.target_bpp = float(target_bpp)
        self.target_scale = float(target_scale)
        self.lambda_above, self.lambda_below = float(lambda_above), float(lambda_below)
        self.weights = {"lpips": l_lpips, "charbonnier": l_charb, "adversarial": l_adv, "style": l_style,
                        "lowpass": l_lowpass, "grid": l_grid}
        self.adv_slope = float(adv_slope)
        self.train_only = parameter_prefixes(train_only)
        self.d_lr = float(d_lr)
        self.d_warmup = int(d_warmup)
        self.warmed = 0

    def setup(self, trainer) -> None:
        super().setup(trainer)
        device = trainer.device
        # building the frozen loss networks draws random initial weights (then
        # replaced): keep those draws out of the run's random stream, or a
        # resumed run (networks cached) would initialise its discriminator differently
        with torch.random.fork_rng(devices=[]):
            if self.lpips_net == "vgg16":
                self.features = LPIPSAndStyle(device)
            else:
                alex = distortion_fn("lpips-alex", device)
                self.features = lambda x_hat, x: {"lpips": alex(x_hat, x)}
        self.anchor = None
        if self.target_bpp <= 0:
            if not trainer.cfg.init:
                raise PlicError("--recipe po-elic with per-crop rate targets (target_bpp=0) needs --init")
            # the trainer has just loaded --init into the model (a resume loads
            # the checkpoint later), so this copy is the init model
            self.anchor = copy.deepcopy(trainer.model).requires_grad_(False)
            self.anchor.g_s, self.anchor.post_filter = None, None  # only its rate is needed
        self.adversary = None
        if self.weights["adversarial"]:
            self.adversary = Adversary(trainer.model.M, device, "hinge", spectral_norm=True, lr=self.d_lr,
                                       on=self.discriminator)
        self.d_inputs = None  # (real, fake) of the last codec step, for the feature discriminator's update
        # the lambda whose crops get l_adv itself under adv_slope: the range's geometric middle
        self.lambda_mid = math.sqrt(trainer.cfg.lambda_min * trainer.cfg.lambda_max)

    #: the VGG16 stages the feature discriminator reads: relu2_2, relu3_3, relu4_3
    D_STAGES = slice(1, 4)

    def vgg_inputs(self, maps_hat, maps):
        """The feature discriminator's (real, fake) inputs from the LPIPS pass' maps."""
        real = list(maps[self.D_STAGES])
        scales = FeatureDiscriminator.scales(real)
        return (real, scales), (list(maps_hat[self.D_STAGES]), scales)

    def adversarial_item_weights(self, lmbda):
        """Each crop's share of l_adv under ``adv_slope``: (lambda_mid / lambda) ** adv_slope; None when flat."""
        if not self.adv_slope or lmbda is None:
            return None
        return (self.lambda_mid / lmbda.reshape(-1)) ** self.adv_slope

    def terms(self, out, x, lmbda=None) -> Dict[str, torch.Tensor]:
        """The weighted distortion terms, by name (also what --analyze-gradients splits); ``lmbda``, each
        crop's lambda, matters only under ``adv_slope``."""
        x_hat = out["x_hat"]
        vgg_d = self.adversary is not None and self.discriminator == "vgg16"
        feats = self.features(x_hat, x, maps=True) if vgg_d else self.features(x_hat, x)
        raw = {"lpips": feats["lpips"].mean(), "charbonnier": charbonnier(x_hat, x)}
        if self.adversary is not None:
            fake = x_hat
            if vgg_d:
                real, fake = self.vgg_inputs(*feats["maps"])
                self.d_inputs = (real, fake)
            raw["adversarial"] = self.adversary.generator_loss(fake, out["y_hat"], self.adversarial_item_weights(lmbda))
        if "style" in feats:
            raw["style"] = feats["style"]
        if self.weights["lowpass"]:
            raw["lowpass"] = lowpass_mse(x_hat, x)
        if self.weights["grid"]:
            raw["grid"] = periodic_mse(x_hat, x)
        return {k: self.weights[k] * v for k, v in raw.items()}

    def warm_up_discriminator(self) -> None:
        """Discriminator-only steps on the codec's reconstructions until ``d_warmup`` are done."""
        # a generator of its own: the training stream (and a prefetcher drawing from it) stays untouched
        gen = torch.Generator().manual_seed(self.trainer.cfg.seed + 7_000_003)
        while self.adversary is not None and self.warmed < self.d_warmup:
            warm_x, warm = self.fresh_reconstructions(gen)
            self.adversary.step(*self.discriminator_inputs(warm_x, warm["x_hat"]), warm["y_hat"])
            self.warmed += 1

    def codec_loss(self, out, x, lmbda) -> Dict[str, torch.Tensor]:
        self.warm_up_discriminator()
        n, _, h, w = x.shape
        bpp = bpp_per_item(out["likelihoods"], h * w)
        target = self.target_bpp if self.anchor is None else self.anchor_bpp(x, lmbda)
        rate = (rate_weight(bpp, target, self.lambda_above, self.lambda_below) * bpp).mean()
        terms = self.terms(out, x, lmbda)
        mse = ((out["x_hat"] - x) ** 2).mean()
        loss = rate + sum(terms.values())
        return {"loss": loss, "bpp": bpp.mean(), "mse": mse, "terms": {"rate": rate, **terms}}

    @torch.no_grad()
    def anchor_bpp(self, x, lmbda) -> torch.Tensor:
        """The init model's rate on each crop at its lambda (same noise surrogate), times ``target_scale``."""
        model = self.anchor.train()  # the noise surrogate, like the model it anchors
        out = model.latent_pass(model.g_a(x), lmbda)
        return self.target_scale * bpp_per_item(out["likelihoods"], x.shape[-2] * x.shape[-1])

    def discriminator_inputs(self, x, x_hat):
        """(real, fake) for the discriminator: the images, or their VGG16 maps (computed here, no graph)."""
        if self.discriminator == "pixels":
            return x, x_hat
        with torch.no_grad():
            maps = self.features(x_hat.detach(), x, maps=True)["maps"]
        return self.vgg_inputs(*maps)

    def after_step(self, out, x, lmbda) -> Dict[str, float]:
        if self.adversary is None:
            return {}
        if self.discriminator == "vgg16" and self.d_inputs is not None:
            real_in, fake_in = self.d_inputs  # the maps this codec step's loss has computed
        else:
            real_in, fake_in = self.discriminator_inputs(x, out["x_hat"])
        self.d_inputs = None
        loss, real, fake = self.adversary.step(real_in, fake_in, out["y_hat"])
        g = self.adversary.g_loss(fake)
        return {"d_loss": float(loss), "g_loss": float(g), "d_real": float(real.mean()), "d_fake": float(fake.mean()),
                **self.adversary.accuracy(real, fake)}

    def state(self):
        tensors, meta = self.adversary.state() if self.adversary is not None else ({}, {})
        return tensors, {**meta, "warmed": self.warmed}

    def load_state(self, tensors: Dict[str, torch.Tensor], meta: Dict[str, Any]) -> None:
        if self.adversary is not None:
            self.adversary.load_state(tensors, meta)
        # runs from before the warm-up had none, and must not start one on resume
        self.warmed = int(meta.get("warmed", self.d_warmup))
