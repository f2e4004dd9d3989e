"""Can the PO-ELIC discriminator learn to tell this codec's reconstructions from originals on this CPU?

Discriminator-only training (no codec update) on 100 fixed batches (4 crops, 128x128, random lambdas in
0.0001..0.03) of the shipped perceptual model's reconstructions, scored on 8 held-out batches every
200 steps: accuracy on originals and on reconstructions (logit sign) and the mean logit gap.

    python benchmarks/perceptual/discriminator_learning.py hinge:sn:4e-4 hinge:nosn:4e-4

Run from the repository root (it reads ../shared/datasets/train). Results: discriminator_learning.txt.
"""
import sys
import time

import torch

from plic import zoo
from plic.recipes.adversary import Adversary
from plic.train.data import RandomCrops, find_images

torch.set_num_threads(1)
m = zoo.load_weights("plic/weights/hyperprior-perceptual-vr.safetensors").train()
files = find_images(["../shared/datasets/train"])
data = RandomCrops(files, crop=128)
g = torch.Generator().manual_seed(0)
batches = []
with torch.no_grad():
    for _ in range(108):
        x = data.sample(4, g)
        lam = torch.exp(torch.empty(4).uniform_(-9.2, -3.5, generator=g))
        out = m(x, lam)
        batches.append((x, out["x_hat"].clamp(0, 1), out["y_hat"]))
train, test = batches[:100], batches[100:]
def evaluate(adv):
    with torch.no_grad():
        acc = [adv.accuracy(adv.disc(x, y), adv.disc(xh, y)) for x, xh, y in test]
        gap = sum(float((adv.disc(x, y) - adv.disc(xh, y)).mean()) for x, xh, y in test) / len(test)
    return {k: round(sum(a[k] for a in acc) / len(acc), 3) for k in acc[0]}, round(gap, 3)
def run(loss, sn, lr, steps=2000):
    torch.manual_seed(0)
    adv = Adversary(m.M, "cpu", loss, spectral_norm=sn, lr=lr)
    t0 = time.time()
    for i in range(steps):
        x, xh, y = train[i % 100]
        d_loss, r, f = adv.step(x, xh, y)
        if (i + 1) % 200 == 0:
            print(loss, sn, lr, i + 1, round(float(d_loss), 3), *evaluate(adv), flush=True)
    with torch.no_grad():
        acc = [adv.accuracy(adv.disc(x, y), adv.disc(xh, y)) for x, xh, y in test]
        gap = sum(float((adv.disc(x, y) - adv.disc(xh, y)).mean()) for x, xh, y in test) / len(test)
    print(loss, sn, lr, f"last loss {float(d_loss):.3f}", {k: round(sum(a[k] for a in acc) / len(acc), 3) for k in acc[0]},
          f"logit gap {gap:.3f}", f"{time.time()-t0:.0f}s", flush=True)
for spec in sys.argv[1:]:
    loss, sn, lr = spec.split(":")
    run(loss, sn == "sn", float(lr))
