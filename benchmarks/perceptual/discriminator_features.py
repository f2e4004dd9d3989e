"""Does a discriminator on frozen VGG16 features learn faster than HiFiC's on pixels?

The same test as discriminator_inputs.py (discriminator alone, hinge, Adam betas 0.5/0.999,
one thread, 20 fixed batches of 4 crops of 128x128 reconstructed by the shipped perceptual
model at lambda 0.002, mean logit gap originals minus reconstructions on 4 held-out batches
every 100 steps), for HiFiC's pixel discriminator as plic has it (spectral norm, image in
[-1, 1], latent / RMS) against :class:`plic.losses.discriminator.FeatureDiscriminator` on the
relu2_2 / relu3_3 / relu4_3 maps of LPIPS' VGG16.

    python benchmarks/perceptual/discriminator_features.py pixel:300 features:300

(each argument ``KIND:STEPS[:LR]``, lr 1e-4 unless given.) Run from the repository root
(reads ../shared/datasets/train). Results: discriminator_features.txt.
"""
import sys
import time

import torch

from plic import zoo
from plic.losses.adversarial import ADVERSARIAL
from plic.losses.discriminator import ConditionalDiscriminator, FeatureDiscriminator
from plic.losses.perceptual import LPIPSAndStyle
from plic.train.data import RandomCrops, find_images

torch.set_num_threads(1)
model = zoo.load_weights("plic/weights/hyperprior-perceptual-vr.safetensors").eval()
vgg = LPIPSAndStyle()
STAGES = slice(1, 4)
data = RandomCrops(find_images(["../shared/datasets/train"]), crop=128)
g = torch.Generator().manual_seed(0)
batches = []
with torch.no_grad():
    for _ in range(24):
        x = data.sample(4, g)
        out = model(x, torch.full((4,), 0.002))
        xh = out["x_hat"].clamp(0, 1)
        batches.append((x, xh, out["y_hat"], vgg._features(x)[STAGES], vgg._features(xh)[STAGES]))
train, test = batches[:20], batches[20:]


def logits(disc, kind, batch):
    x, xh, y, fx, fxh = batch
    if kind == "pixel":
        return disc(x, y), disc(xh, y)
    s = FeatureDiscriminator.scales(fx)
    return disc(fx, y, s), disc(fxh, y, s)


def run(kind, steps=300, lr=1e-4):
    torch.manual_seed(0)
    disc = ConditionalDiscriminator(model.M) if kind == "pixel" else FeatureDiscriminator(model.M)
    opt = torch.optim.Adam(disc.parameters(), lr=lr, betas=(0.5, 0.999))
    d_loss = ADVERSARIAL["hinge"][0]
    t0 = time.time()
    for i in range(steps):
        loss = d_loss(*logits(disc, kind, train[i % len(train)]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (i + 1) % 100 == 0:
            with torch.no_grad():
                pairs = [logits(disc, kind, b) for b in test]
            gap = sum(float((r - f).mean()) for r, f in pairs) / len(pairs)
            acc = sum(float(((r > 0).float().mean() + (f < 0).float().mean()) / 2) for r, f in pairs) / len(pairs)
            print(f"{kind:8s} lr {lr:g} step {i + 1:4d}  train hinge {float(loss.detach()):.3f}  "
                  f"held-out logit gap {gap:+.4f}  accuracy {acc:.3f}  {time.time() - t0:.0f}s", flush=True)


for spec in sys.argv[1:]:
    kind, steps, *lr = spec.split(":")
    run(kind, int(steps), float(lr[0]) if lr else 1e-4)
