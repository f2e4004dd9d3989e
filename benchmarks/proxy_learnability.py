"""Can the ProxIQA proxy learn its metric at all? A check on synthetic distortions.

    python benchmarks/proxy_learnability.py --data ../shared/datasets/train --metric ssim \
        --out benchmarks/proxy_learnability

The proxy is trained alone (no codec) on 64x64 training crops against a blur
and Gaussian noise of random strength, whose true scores spread widely, and
scored on 256 held-out pairs of the same kind: Pearson correlation and RMSE
every 150 steps. A proxy that learns here but not on a codec's
reconstructions is limited by the data it sees, not by its code.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from plic.iqa.proxy import build_proxy
from plic.iqa.targets import get_target
from plic.train.data import RandomCrops


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/datasets/train")
    ap.add_argument("--metric", default="ssim")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--out", default="benchmarks/proxy_learnability")
    args = ap.parse_args()

    torch.manual_seed(0)
    target, scale = get_target(args.metric)
    data = RandomCrops([args.data], crop=64)
    gen = torch.Generator().manual_seed(0)
    net = build_proxy("proxiqa", scale=scale)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)

    def batch(n: int = 16):
        x = data.sample(n, gen)
        sigma = torch.rand(n, 1, 1, 1, generator=gen) * 0.15
        mix = torch.rand(n, 1, 1, 1, generator=gen)
        y = mix * torch.nn.functional.avg_pool2d(x, 3, 1, 1) + (1 - mix) * x
        y = ((y + sigma * torch.randn(x.shape, generator=gen)).clamp(0, 1) * 255).round() / 255
        return x, y, target(x, y)

    xv, yv, tv = batch(256)
    rows, t0 = [], time.time()
    for step in range(args.steps + 1):
        x, y, t = batch()
        loss = ((net(x, y) - t) / scale).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 150 == 0:
            with torch.no_grad():
                pv = net(xv, yv)
            rows.append({"step": step, "pearson": float(np.corrcoef(pv.numpy(), tv.numpy())[0, 1]),
                         "rmse": float((pv - tv).pow(2).mean().sqrt()), "seconds": round(time.time() - t0, 1)})
            print(rows[-1], flush=True)
    result = {"command": "python benchmarks/proxy_learnability.py " + " ".join(sys.argv[1:]),
              "metric": args.metric, "true_std": float(tv.std()), "rows": rows}
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    lines = [f"# ProxIQA proxy on synthetic distortions ({args.metric})", "",
             f"Command: `{result['command']}`. Held-out pairs: 256; spread (std) of the true score: "
             f"{result['true_std']:.3f}.", "", "| step | Pearson | RMSE | s |", "|---|---|---|---|"]
    lines += [f"| {r['step']} | {r['pearson']:.3f} | {r['rmse']:.4f} | {r['seconds']} |" for r in rows]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
