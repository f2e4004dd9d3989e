"""How far a training run is from the shipped default, in its own loss, in half a minute.

    python benchmarks/rd_per_cpu_hour/train_loss_probe.py runs/long/checkpoint.safetensors \\
        --append benchmarks/rd_per_cpu_hour/long_run/probe.jsonl --label "step 8500"

Coding Kodak for real takes minutes and stops a long run's progress; this takes one thread for ~20 s
per model. Every model sees the same 64 training crops at each of the same lambdas (log-spaced over
the default's range) with the same uniform noise: the training forward, bpp + lambda 255^2 MSE, the
number the run minimises. Printed per lambda and as the mean of log-ratios against the shipped
default (0 %: the default's loss; the ratio is taken per lambda so that the high-lambda end, whose
losses are a hundred times larger, does not decide alone). A proxy only: the decision to ship
comes from Kodak files (evaluate_arms.py).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from plic import zoo
from plic.train.data import RandomCrops
from plic.train.loss import RateDistortionLoss

ROOT = Path(__file__).resolve().parents[2]
LAMBDAS = (0.0001, 0.0003, 0.0009, 0.0027, 0.0081, 0.025, 0.075, 0.225, 0.45)


@torch.no_grad()
def probe(path: str | Path, crops: torch.Tensor) -> list[float]:
    model = zoo.load_weights(path).train()  # the training forward: uniform noise, not rounding
    criterion = RateDistortionLoss("mse")
    losses = []
    for lam in LAMBDAS:
        torch.manual_seed(0)  # the same noise for every model and lambda
        total = 0.0
        for batch in crops.split(8):
            lmbda = torch.full((batch.shape[0],), lam)
            total += float(criterion(model(batch, lmbda), batch, lmbda)["loss"]) * batch.shape[0]
        losses.append(total / crops.shape[0])
    return losses


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("weights", nargs="+")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "train"))
    ap.add_argument("--crops", type=int, default=64)
    ap.add_argument("--append", help="add one JSON line per model to this file")
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    torch.set_num_threads(1)
    crops = RandomCrops([args.data], crop=128).sample(args.crops, torch.Generator().manual_seed(2026))
    reference = probe(zoo.shipped_path(zoo.DEFAULT_MODEL), crops)
    print("lambda  " + "  ".join(f"{lam:>8g}" for lam in LAMBDAS))
    print("default " + "  ".join(f"{v:8.4f}" for v in reference))
    for path in args.weights:
        losses = probe(path, crops)
        gap = 100 * (math.exp(np.mean([math.log(a / b) for a, b in zip(losses, reference)])) - 1)
        print(f"{Path(path).name}: " + "  ".join(f"{v:8.4f}" for v in losses) + f"   {gap:+.1f} % vs default")
        if args.append:
            row = {"label": args.label, "weights": str(path), "fingerprint": (zoo.stored_fingerprint(path) or b"").hex(),
                   "lambdas": LAMBDAS, "loss": losses, "default_loss": reference, "vs_default_percent": gap}
            with open(args.append, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
