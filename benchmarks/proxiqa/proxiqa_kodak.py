"""ProxIQA on Kodak: how well the trained proxy follows the true metric on held-out images.

    python benchmarks/proxiqa/proxiqa_kodak.py --run runs/proxiqa-vmaf --data ../shared/datasets/kodak \
        --out benchmarks/proxiqa/proxiqa_kodak

The proxy (its weights are in the run's optimizer.safetensors) scores 128x128
crops of Kodak images -- never seen in training -- decoded by the run's
finetuned codec at several lambdas; the true metric is computed on the same
8-bit crops. Reports Pearson and Spearman correlations and the mean absolute
error. The R-D side (VMAF, PSNR and MS-SSIM BD-rates against the starting
model) comes from ``plic eval``; its summary is copied next to this report.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from proxy_learnability import tiles  # benchmarks/ is on the path of a script run from it
from safetensors import safe_open

from plic import bitstream, zoo
from plic.codec import Codec
from plic.image_io import quantize_rgb, read_image
from plic.iqa.proxy import build_proxy
from plic.iqa.targets import get_target


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True, help="plic train --recipe proxiqa run folder")
    ap.add_argument("--data", default="../shared/datasets/kodak")
    ap.add_argument("--out", default="benchmarks/proxiqa/proxiqa_kodak")
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--qualities", default="1,3,5,7")
    args = ap.parse_args()

    run = Path(args.run)
    state = json.loads((run / "state.json").read_text())
    recipe = state["config"]["recipe_args"]
    metric, scale_fn = recipe["metric"], get_target(recipe["metric"])
    target, scale = scale_fn
    # the recipe records its proxy in the run state; runs from before that used the stacked network
    proxy = build_proxy(state.get("recipe", {}).get("proxy", "proxiqa"), scale=scale)
    with safe_open(str(run / "optimizer.safetensors"), framework="pt") as f:
        proxy.load_state_dict({k[len("proxy_net."):]: f.get_tensor(k) for k in f.keys() if k.startswith("proxy_net.")})
    proxy.eval()
    codec = Codec(zoo.load_weights(run / "model.safetensors"))
    files = sorted(Path(args.data).glob("*.png"))[: args.images]
    if not files:
        sys.exit(f"no PNG images in {args.data}")
    true_all, proxy_all = [], []
    c = args.crop
    for path in files:
        img = read_image(path)
        ref = tiles(img.rgb, c)
        for q in [float(v) for v in args.qualities.split(",")]:
            enc = codec.encode(img, quality=q)
            dis = tiles(quantize_rgb(codec.decode_file(bitstream.parse(enc.data))).cpu(), c)
            true_all.append(target(ref, dis).numpy())
            with torch.no_grad():
                proxy_all.append(proxy(ref, dis).numpy())
        print(path.name, flush=True)
    t, p = np.concatenate(true_all), np.concatenate(proxy_all)
    summary = {
        "command": "python benchmarks/proxiqa/proxiqa_kodak.py " + " ".join(sys.argv[1:]),
        "run": str(run), "metric": metric, "steps": state["step"], "crops": int(t.size),
        "pearson": float(np.corrcoef(t, p)[0, 1]), "spearman": spearman(t, p),
        "mean_abs_error": float(np.abs(t - p).mean()), "true_mean": float(t.mean()), "proxy_mean": float(p.mean()),
    }
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1))
    lines = [f"# ProxIQA proxy vs true {metric} on held-out Kodak crops", "",
             f"Command: `{summary['command']}`; run {run} at step {summary['steps']}.", "",
             "| crops | Pearson | Spearman | mean abs. error | true mean | proxy mean |", "|---|---|---|---|---|---|",
             f"| {summary['crops']} | {summary['pearson']:.3f} | {summary['spearman']:.3f} | "
             f"{summary['mean_abs_error']:.3f} | {summary['true_mean']:.3f} | {summary['proxy_mean']:.3f} |", ""]
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
