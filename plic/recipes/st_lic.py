"""ST-LIC: a post-filter after the decoder and a semi-decoupled perceptual objective.

The codec (variable rate, QVRF) keeps learning from distortion alone, on the
main decoder's output ``x_hat``: ``lambda * (255^2 * MSE + w_l1 * 255 * L1) + R``.
A UNet post-filter turns ``x_hat`` into ``x_post``; the perceptual terms on
``x_post`` -- LPIPS-VGG, Wasserstein distortion, non-saturating BCE adversarial
(discriminator without spectral norm, conditioned on the latent) -- train
the post-filter fully but reach the codec only through ``codec_share`` (a
gradient scale on ``x_hat`` at the post-filter's input; the forward value is
unchanged). Coefficients are meant to come from ``--analyze-gradients``.

Two additions outside the paper, both off by default:
``freeze_codec=1`` trains the post-filter alone behind a fixed codec (its
bitstreams, and so its rate control, stay those of the MSE model; the
backward pass skips the codec, which makes CPU training affordable), and
``c_mse`` adds HiFiC's pixel term ``c_mse * 255^2 * MSE(x_post, x)`` on the
refined output (HiFiC's k_M = 0.075 * 2^-5), which keeps a post-filter trained
without the codec's distortion loss from drifting in colour.
The discriminator steps alternate with the codec's; ``d_loss`` and ``g_loss``
are logged, and at the equilibrium both BCE terms approach log 2 = 0.693.
"""

from __future__ import annotations

from typing import Any, Dict

import torch

from plic.losses.wasserstein import WassersteinDistortion
from plic.recipes.adversary import Adversary
from plic.train.loss import bpp_per_item
from plic.train.recipe import Recipe


def scale_gradient(x: torch.Tensor, factor: float) -> torch.Tensor:
    """``x`` forward; its gradient multiplied by ``factor`` backward."""
    return x.detach() + factor * (x - x.detach())


class STLIC(Recipe):
    name = "st-lic"

    def __init__(self, post_filter: int = 32, w_l1: float = 0.0, c_lpips: float = 1.0, c_wd: float = 0.1,
                 c_adv: float = 0.01, codec_share: float = 0.05, wd_log2_sigma: float = 2.0, d_lr: float = 1e-4,
                 freeze_codec: int = 0, c_mse: float = 0.0, refiner: int | None = None):
        # refiner: the post-filter's width under its old name (runs and commands from before the rename)
        self.post_filter_channels = int(post_filter if refiner is None else refiner)
        self.w_l1 = float(w_l1)
        self.weights = {"lpips": float(c_lpips), "wasserstein": float(c_wd), "adversarial": float(c_adv)}
        self.codec_share = float(codec_share)
        self.wd_log2_sigma = float(wd_log2_sigma)
        self.d_lr = float(d_lr)
        self.freeze_codec = bool(int(freeze_codec))
        self.c_mse = float(c_mse)

    def trains(self, name: str) -> bool:
        return not self.freeze_codec or name.startswith("post_filter.")

    def model_args(self) -> Dict[str, Any]:
        return {"post_filter": self.post_filter_channels}

    def setup(self, trainer) -> None:
        from plic.losses.distortion import distortion_fn

        super().setup(trainer)
        device = trainer.device
        with torch.random.fork_rng(devices=[]):  # keep the run's random stream independent of caches
            self.lpips = distortion_fn("lpips", device)  # LPIPS-VGG, per image
            self.wd = WassersteinDistortion().to(device)
        self.adversary = Adversary(trainer.model.M, device, "bce", spectral_norm=False, lr=self.d_lr)

    def codec_loss(self, out, x, lmbda) -> Dict[str, torch.Tensor]:
        n, _, h, w = x.shape
        model = self.trainer.model
        x_hat = out["x_hat"]
        bpp = bpp_per_item(out["likelihoods"], h * w)
        mse = ((x_hat - x) ** 2).flatten(1).mean(1)
        l1 = (x_hat - x).abs().flatten(1).mean(1)
        lmbda = lmbda.to(x).reshape(-1)
        distortion = (lmbda * (255**2 * mse + self.w_l1 * 255 * l1)).mean()
        x_post = model.post_filter(scale_gradient(x_hat, self.codec_share))
        out["x_post"] = x_post
        raw = {
            "lpips": self.lpips(x_post, x).mean(),
            "wasserstein": self.wd(x_post, x, self.wd_log2_sigma),
            "adversarial": self.adversary.generator_loss(x_post, out["y_hat"]),
        }
        terms = {k: self.weights[k] * v for k, v in raw.items()}
        if self.c_mse:
            terms["mse_refined"] = self.c_mse * 255**2 * ((x_post - x) ** 2).mean()
        loss = bpp.mean() + distortion + sum(terms.values())
        return {"loss": loss, "bpp": bpp.mean(), "mse": mse.mean(),
                "terms": {"rate": bpp.mean(), "distortion": distortion, **terms}}

    def after_step(self, out, x, lmbda) -> Dict[str, float]:
        loss, real, fake = self.adversary.step(x, out["x_post"], out["y_hat"])
        g = self.adversary.g_loss(fake)
        # per BCE term: both -> 0.693 at equilibrium
        return {"d_loss": float(loss) / 2, "g_loss": float(g), **self.adversary.accuracy(real, fake)}

    def state(self):
        return self.adversary.state()

    def load_state(self, tensors: Dict[str, torch.Tensor], meta: Dict[str, Any]) -> None:
        self.adversary.load_state(tensors, meta)
