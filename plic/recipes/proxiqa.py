"""ProxIQA (Chen et al., IEEE TIP 2021): optimise a codec for a metric through a learned proxy.

Alternating training, as in the paper:

1. **codec step**, proxy frozen: ``lambda * 255^2 * ((1 - alpha) * MSE + alpha * k * (1 - P / s)) + R``,
   where ``P`` is the proxy's score of the reconstruction and ``s`` the
   metric's scale (100 for VMAF). ``k`` converts the proxy term to MSE units:
   it is set once, from the first batch, so that both terms start equal
   (then ``alpha`` alone sets the mix and ``lambda`` keeps its meaning);
2. **proxy step**: the metric is computed for real on this step's
   reconstructions (rounded to 8 bits) and the proxy is regressed onto it, so
   it keeps tracking the true metric on exactly the images the codec now
   produces (the paper's answer to the codec learning adversarial examples
   of a frozen proxy). ``--proxy-warmup`` proxy-only steps come first.

Both scores are logged for every step (``true``, ``proxy`` in train.csv) and
``plic curves`` draws them side by side (the paper's Fig. 7b).
"""

from __future__ import annotations

from typing import Any, Dict

import torch
import torch.nn.functional as F

from plic.errors import PlicError
from plic.iqa.proxy import build_proxy
from plic.iqa.targets import get_target
from plic.models.frozen import frozen
from plic.train.loss import bpp_per_item
from plic.train.optim_state import optimizer_from_tensors, optimizer_to_tensors
from plic.train.recipe import Recipe, TrainOptions


class ProxIQA(Recipe):
    name = "proxiqa"

    @classmethod
    def from_options(cls, options: TrainOptions):
        target = options.metric or "vmaf"
        if target == "mse":
            raise PlicError("--recipe proxiqa learns a metric other than MSE: --metric vmaf, ssim or ms-ssim")
        if target == "ms-ssim" and options.crop < 192:
            raise PlicError("MS-SSIM targets need --crop 192 or larger")
        return {"metric": target, **(options.extra or {})}, "mse"  # mse: the pixel part of the ProxIQA loss

    def __init__(self, metric: str = "vmaf", alpha: float = 0.5, proxy: str = "proxiqa-diff",
                 proxy_lr: float = 1e-3, proxy_warmup: int = 200):
        self.metric = metric
        self.target, self.scale = get_target(metric)
        self.alpha = float(alpha)
        self.proxy_name = proxy
        self.proxy_lr = float(proxy_lr)
        self.proxy_warmup = int(proxy_warmup)
        self.k = None  # set from the first batch

    def setup(self, trainer) -> None:
        super().setup(trainer)
        self.proxy = build_proxy(self.proxy_name, scale=self.scale).to(trainer.device)
        self.opt = torch.optim.Adam(self.proxy.parameters(), lr=self.proxy_lr)
        self.warmed = 0

    def _train_proxy(self, x, x_hat) -> Dict[str, float]:
        rec = (x_hat.detach().clamp(0, 1) * 255).round() / 255  # the 8-bit image a decoder outputs
        true = self.target(x.detach(), rec).to(x.device)
        self.proxy.train()
        pred = self.proxy(x.detach(), rec)
        loss = F.mse_loss(pred / self.scale, true / self.scale)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"true": float(true.mean()), "proxy": float(pred.detach().mean()), "proxy_loss": float(loss)}

    def codec_loss(self, out, x, lmbda) -> Dict[str, torch.Tensor]:
        # before the codec learns from the proxy, the proxy learns the metric on
        # the starting codec's reconstructions
        while self.warmed < self.proxy_warmup:
            # fresh crops and fresh lambdas each time: the proxy must see the codec's whole range
            warm_x, warm = self.fresh_reconstructions(self.trainer.gen)
            self._train_proxy(warm_x, warm["x_hat"])
            self.warmed += 1
        n, _, h, w = x.shape
        x_hat = out["x_hat"]
        bpp = bpp_per_item(out["likelihoods"], h * w)
        mse = ((x_hat - x) ** 2).flatten(1).mean(1)
        self.proxy.eval()
        with frozen(self.proxy):
            score = self.proxy(x, x_hat.clamp(0, 1))
        proxy_term = 1 - score / self.scale
        if self.k is None:
            self.k = float(mse.mean().detach() / proxy_term.mean().detach().clamp_min(1e-6))
        distortion = (1 - self.alpha) * mse + self.alpha * self.k * proxy_term
        lmbda = lmbda.to(x).reshape(-1)
        loss = (lmbda * 255**2 * distortion + bpp).mean()
        return {"loss": loss, "bpp": bpp.mean(), "mse": mse.mean(), "distortion": distortion.mean()}

    def after_step(self, out, x, lmbda) -> Dict[str, float]:
        return self._train_proxy(x, out["x_hat"])

    def state(self):
        tensors = {f"proxy_net.{k}": v for k, v in self.proxy.state_dict().items()}
        t_opt, m_opt = optimizer_to_tensors(self.opt, "proxy_opt")
        return {**tensors, **t_opt}, {"k": self.k, "warmed": self.warmed, "optim": m_opt, "proxy": self.proxy_name}

    def load_state(self, tensors: Dict[str, torch.Tensor], meta: Dict[str, Any]) -> None:
        # runs older than the proxy's name in their state used the stacked network; the
        # weights of one proxy would load silently into the other and compute another function
        saved = meta.get("proxy", "proxiqa")
        if saved != self.proxy_name:
            raise PlicError(f"this run trained proxy {saved!r}; resume it with --recipe-arg proxy={saved}")
        self.proxy.load_state_dict({k[len("proxy_net."):]: v for k, v in tensors.items() if k.startswith("proxy_net.")})
        optimizer_from_tensors(self.opt, "proxy_opt", tensors, meta["optim"])
        self.k, self.warmed = meta["k"], meta["warmed"]
