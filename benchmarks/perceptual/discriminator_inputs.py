"""Why the PO-ELIC discriminator did not learn, and what the fix buys: its input scaling.

Discriminator-only training (hinge, Adam 1e-4, betas 0.5/0.999, one thread) on 20 fixed
batches (4 crops of 128x128) of the shipped perceptual model's reconstructions at lambda
0.002, scored on 4 held-out batches every 100 steps (mean logit gap, originals minus
reconstructions). Variants of the input, all else equal:

* ``raw``: image in [0, 1], latent as the codec gives it (values up to ~100): the old discriminator;
* ``nocond``: latent condition zeroed (an unconditional discriminator);
* ``rms``: latent divided by its per-image RMS, image in [0, 1];
* ``rms+pm1``: that and the image in [-1, 1]: plic's discriminator now.

    python benchmarks/perceptual/discriminator_inputs.py raw:sn raw:nosn nocond:sn rms+pm1:sn
    python benchmarks/perceptual/discriminator_inputs.py rms+pm1:sn:600

(each argument ``VARIANT:sn|nosn[:STEPS]``, 300 steps unless given; the ``rms`` variant was not run.)

Run from the repository root (reads ../shared/datasets/train). Results: discriminator_inputs.txt.
"""
import sys
import time

import torch
import torch.nn.functional as F

from plic import zoo
from plic.losses.adversarial import ADVERSARIAL
from plic.losses.discriminator import ConditionalDiscriminator
from plic.train.data import RandomCrops, find_images

torch.set_num_threads(1)
model = zoo.load_weights("plic/weights/hyperprior-perceptual-vr.safetensors").eval()
data = RandomCrops(find_images(["../shared/datasets/train"]), crop=128)
g = torch.Generator().manual_seed(0)
batches = []
with torch.no_grad():
    for _ in range(24):
        x = data.sample(4, g)
        out = model(x, torch.full((4,), 0.002))
        batches.append((x, out["x_hat"].clamp(0, 1), out["y_hat"]))
train, test = batches[:20], batches[20:]


def logits(disc, variant, x, y):
    """The discriminator's body on the variant's inputs (bypassing the library's own scaling)."""
    y = y.detach()
    if variant == "nocond":
        y = torch.zeros_like(y)
    if variant.startswith("rms"):
        y = y * torch.rsqrt(y.pow(2).mean(dim=(1, 2, 3), keepdim=True))
    if variant.endswith("pm1"):
        x = x * 2 - 1
    c = F.interpolate(F.leaky_relu(disc.condition(y), 0.2), size=x.shape[-2:], mode="nearest")
    return disc.body(torch.cat([x, c], dim=1))


def run(variant, sn, steps=300, lr=1e-4):
    torch.manual_seed(0)
    disc = ConditionalDiscriminator(model.M, spectral_norm=sn)
    opt = torch.optim.Adam(disc.parameters(), lr=lr, betas=(0.5, 0.999))
    d_loss = ADVERSARIAL["hinge"][0]
    t0 = time.time()
    for i in range(steps):
        x, xh, y = train[i % len(train)]
        loss = d_loss(logits(disc, variant, x, y), logits(disc, variant, xh, y))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (i + 1) % 100 == 0:
            with torch.no_grad():
                gap = sum(float((logits(disc, variant, x, y) - logits(disc, variant, xh, y)).mean())
                          for x, xh, y in test) / len(test)
            print(f"{variant:8s} sn={sn!s:5s} step {i + 1:4d}  train hinge {float(loss.detach()):.3f}  "
                  f"held-out logit gap {gap:+.4f}  {time.time() - t0:.0f}s", flush=True)


for spec in sys.argv[1:]:
    variant, sn, *steps = spec.split(":")
    run(variant, sn == "sn", int(steps[0]) if steps else 300)
