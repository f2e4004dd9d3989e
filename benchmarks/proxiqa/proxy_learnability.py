"""Can a ProxIQA proxy learn its metric? Trained alone (no codec updates), scored on held-out pairs.

    python benchmarks/proxiqa/proxy_learnability.py --source synthetic --metric ssim --out benchmarks/proxiqa/proxy_learnability
    python benchmarks/proxiqa/proxy_learnability.py --source codec --metric ssim --out benchmarks/proxiqa/proxy_learnability_codec

``--source synthetic``: 64x64 training crops under a blur and Gaussian noise
of random strength, whose true scores spread widely; 256 held-out pairs of
the same kind.

``--source codec``: what the ProxIQA recipe shows the proxy, the default
model's reconstructions (8-bit) of 128x128 training crops at log-uniform
lambdas over ``--lambda-range``, a pool of ``--pool`` pairs drawn once; the
held-out pairs are the 128x128 tiles of the Kodak images (never trained on)
decoded at four lambdas across that range.

Every proxy in ``--proxies`` trains from the same seed on the same batches
(Adam, ``--lr``, batch 16); Pearson correlation and RMSE on the held-out
pairs are reported every ``--every`` steps.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from plic import zoo
from plic.image_io import quantize_rgb, read_image
from plic.iqa.proxy import build_proxy
from plic.iqa.targets import get_target
from plic.train.data import RandomCrops


def synthetic_pairs(data: RandomCrops, n: int, gen: torch.Generator):
    x = data.sample(n, gen)
    sigma = torch.rand(n, 1, 1, 1, generator=gen) * 0.15
    mix = torch.rand(n, 1, 1, 1, generator=gen)
    y = mix * torch.nn.functional.avg_pool2d(x, 3, 1, 1) + (1 - mix) * x
    return x, quantize_rgb(y + sigma * torch.randn(x.shape, generator=gen))


def tiles(img: torch.Tensor, c: int) -> torch.Tensor:
    """The whole c x c tiles of a 1 x 3 x H x W image, as N x 3 x c x c (the ragged edge is left out)."""
    h, w = img.shape[-2] // c * c, img.shape[-1] // c * c
    return img[..., :h, :w].unfold(2, c, c).unfold(3, c, c).permute(0, 2, 3, 1, 4, 5).reshape(-1, 3, c, c)


@torch.no_grad()
def codec_pairs(args, gen: torch.Generator):
    model = zoo.load_model(args.model).float().eval()  # eval: rounding, as the decoder does
    lo, hi = (math.log(v) for v in args.lambda_range)
    data = RandomCrops([args.data], crop=args.crop)
    xs, ys = [], []
    for _ in range(math.ceil(args.pool / 16)):
        x = data.sample(16, gen)
        lmbda = torch.exp(torch.empty(16).uniform_(lo, hi, generator=gen))
        xs.append(x)
        ys.append(quantize_rgb(model(x, lmbda)["x_hat"]))
    kx, ky = [], []
    files = sorted(Path(args.heldout).glob("*.png"))
    if not files:
        sys.exit(f"no PNG images in {args.heldout}")
    for path in files:
        img = read_image(path).rgb
        ref = tiles(img, args.crop)
        for lmbda in np.exp(np.linspace(lo, hi, 4)):
            kx.append(ref)
            ky.append(tiles(quantize_rgb(model(img, torch.tensor([float(lmbda)]))["x_hat"]), args.crop))
    return torch.cat(xs), torch.cat(ys), torch.cat(kx), torch.cat(ky)


def batched(fn, *tensors, size: int = 64) -> torch.Tensor:
    return torch.cat([fn(*(t[i:i + size] for t in tensors)) for i in range(0, tensors[0].shape[0], size)])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", choices=["synthetic", "codec"], default="synthetic")
    ap.add_argument("--data", default="../shared/datasets/train")
    ap.add_argument("--heldout", default="../shared/datasets/kodak", help="codec source: held-out image folder")
    ap.add_argument("--model", default="hyperprior", help="codec source: shipped name or weights file")
    ap.add_argument("--lambda-range", nargs=2, type=float, default=[0.0018, 0.0932])
    ap.add_argument("--pool", type=int, default=2400, help="codec source: training pairs")
    ap.add_argument("--crop", type=int, default=None, help="patch size (64 synthetic, 128 codec)")
    ap.add_argument("--metric", default="ssim")
    ap.add_argument("--proxies", default="proxiqa,proxiqa-diff")
    ap.add_argument("--steps", type=int, default=None, help="600 synthetic, 1500 codec")
    ap.add_argument("--every", type=int, default=None, help="150 synthetic, 250 codec")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--out", default="benchmarks/proxiqa/proxy_learnability")
    args = ap.parse_args()
    codec = args.source == "codec"
    args.crop = args.crop or (128 if codec else 64)
    args.steps = args.steps or (1500 if codec else 600)
    args.every = args.every or (250 if codec else 150)

    target, scale = get_target(args.metric)
    gen = torch.Generator().manual_seed(0)
    t0 = time.time()
    if codec:
        x_pool, y_pool, xv, yv = codec_pairs(args, gen)
        t_pool = batched(target, x_pool, y_pool)
    else:
        data = RandomCrops([args.data], crop=args.crop)
        xv, yv = synthetic_pairs(data, 256, gen)
    tv = batched(target, xv, yv)
    print(f"held-out pairs {len(tv)}, true mean {tv.mean():.3f} std {tv.std():.3f} ({time.time() - t0:.0f} s)", flush=True)

    results = {}
    for name in args.proxies.split(","):
        torch.manual_seed(0)
        net = build_proxy(name, scale=scale)
        opt = torch.optim.Adam(net.parameters(), lr=args.lr)
        batch_gen = torch.Generator().manual_seed(1)  # the same batches for every proxy
        rows, t0 = [], time.time()
        for step in range(args.steps + 1):
            if codec:
                idx = torch.randint(0, len(t_pool), (16,), generator=batch_gen)
                x, y, t = x_pool[idx], y_pool[idx], t_pool[idx]
            else:
                x, y = synthetic_pairs(data, 16, batch_gen)
                t = target(x, y)
            loss = ((net(x, y) - t) / scale).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % args.every == 0:
                with torch.no_grad():
                    pv = batched(net, xv, yv)
                rows.append({"step": step, "pearson": float(np.corrcoef(pv.numpy(), tv.numpy())[0, 1]),
                             "rmse": float((pv - tv).pow(2).mean().sqrt()), "seconds": round(time.time() - t0, 1)})
                print(name, rows[-1], flush=True)
        results[name] = rows

    command = "python benchmarks/proxiqa/proxy_learnability.py " + " ".join(sys.argv[1:])
    result = {"command": command, "source": args.source, "metric": args.metric, "heldout_pairs": len(tv),
              "true_mean": float(tv.mean()), "true_std": float(tv.std()), "proxies": results}
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    what = ("the default codec's reconstructions of training crops; held out: Kodak tiles" if codec
            else "synthetic blur and noise")
    names = list(results)
    lines = [f"# ProxIQA proxies learning {args.metric} alone: {what}", "",
             f"Command: `{command}`. Held-out pairs: {len(tv)}; true score mean {result['true_mean']:.3f}, "
             f"spread (std) {result['true_std']:.3f}. Same seed and batches for every proxy; lr {args.lr}, batch 16.",
             "", "| step | " + " | ".join(f"{n} Pearson | {n} RMSE" for n in names) + " |",
             "|---|" + "---|---|" * len(names)]
    for i, row in enumerate(results[names[0]]):
        cells = [f"{results[n][i]['pearson']:.3f} | {results[n][i]['rmse']:.4f}" for n in names]
        lines.append(f"| {row['step']} | " + " | ".join(cells) + " |")
    lines += ["", "Seconds for all steps: " + ", ".join(f"{n} {results[n][-1]['seconds']}" for n in names) + "."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
