"""Widen a trained hyperprior's analysis and synthesis transforms (their hidden channels) without retraining.

    python scripts/widen_transforms.py plic/weights/hyperprior-mse-vr.safetensors runs/wide.safetensors --channels 128

Why: the shipped N=64/M=96 model saturates at high rates (33.03 dB on Kodak
with no quantization at all, benchmarks/transform_ceiling), and more latent
channels alone lifted that ceiling by 0.69 dB in 14,000 steps
(scripts/widen_latent.py). The other half of the capacity is the transforms'
width, N=64 where CompressAI's high-rate models use 192. The hyperprior's side
information is a small share of the bits at high rates, so only g_a and g_s
widen (the model's ``transform_channels``); z, its entropy model and the
latent's means and scales stay as they are.

Net2WiderNet (Chen et al., ICLR 2016): each new hidden unit copies an old one
(its incoming weights, bias and GDN row), and the copied unit's outgoing
weights are split between the two, so the widened model computes exactly what
the old one did. The split is random per weight (fractions s and 1 - s, s
uniform in [0.5 - spread, 0.5 + spread]) rather than halves: identical halves
would give the two copies identical gradients, and they would stay copies.
A copy's GDN sees each pair of copies through halved weights, so its
normalisation is the old unit's too. Finetune with ``plic train --init`` on the
rates where the ceiling binds.
"""

from __future__ import annotations

import argparse

import torch

from plic import zoo
from plic.errors import exit_in_one_line
from plic.models import MeanScaleHyperprior
from plic.registry import build_model

#: (producer, GDN, consumer) index triples of the hidden layers in g_a and in g_s
_HIDDEN = ((0, 1, 2), (2, 3, 4), (4, 5, 6))


@torch.no_grad()
def widen(old: torch.nn.Module, channels: int, spread: float = 0.25, seed: int = 0) -> torch.nn.Module:
    """``old`` with ``channels`` hidden channels in g_a and g_s; new unit ``t + k`` copies old unit ``k``."""
    if not isinstance(old, MeanScaleHyperprior):
        raise ValueError(f"only hyperprior models (with or without the checkerboard context) can be widened, "
                         f"not {old.registry_name}")
    if old.shortcut or old.rate_film:
        raise ValueError("a model with the wavelet shortcut or a rate-conditioned synthesis is not widened here")
    t = old.transform_channels
    if not t < channels <= 2 * t:
        raise ValueError(f"channels {channels} must lie in ({t}, {2 * t}]: each new unit copies an old one")
    if not 0 <= spread < 0.5:
        raise ValueError("spread must lie in [0, 0.5): both copies keep a positive share of each weight")
    generator = torch.Generator().manual_seed(seed)
    new = build_model(old.registry_name, **dict(old.config(), transform_channels=channels))
    src, dst = old.state_dict(), new.state_dict()
    source = torch.cat([torch.arange(t), torch.arange(channels - t)])  # the old unit each unit copies
    copies = torch.bincount(source, minlength=t).float()  # 2 for the copied units, 1 for the rest

    def split(weight: torch.Tensor, dim: int) -> torch.Tensor:
        """An outgoing weight tensor widened along its input dimension ``dim``: a copied unit's weights
        shared between it and its copy (s and 1 - s per weight), the others' as they were."""
        wide = weight.index_select(dim, source)
        pairs = torch.arange(channels - t)  # unit k < channels - t, whose copy is unit t + k
        shape = list(wide.shape)
        shape[dim] = len(pairs)
        s = 0.5 + spread * (2 * torch.rand(shape, generator=generator) - 1)
        share = torch.ones(wide.shape).index_copy(dim, pairs, s).index_copy(dim, pairs + t, 1 - s)
        return wide * share

    work = dict(src)  # the widened tensors replace entries; the rest are copied into dst as they are
    for transform, transposed in (("g_a", False), ("g_s", True)):
        # a Conv2d weight is (out, in, k, k), a ConvTranspose2d's (in, out, k, k)
        out_dim, in_dim = (1, 0) if transposed else (0, 1)
        for producer, gdn, consumer in _HIDDEN:
            p, c = f"{transform}.{producer}", f"{transform}.{consumer}"
            work[f"{p}.weight"] = work[f"{p}.weight"].index_select(out_dim, source)
            work[f"{p}.bias"] = work[f"{p}.bias"][source]
            old_gdn, new_gdn = getattr(old, transform)[gdn], getattr(new, transform)[gdn]
            # gamma[i, j] weighs input j's square in unit i's normalisation: each copied input is seen
            # twice, so at half weight
            beta = old_gdn.beta_reparam(old_gdn.beta)[source]
            gamma = old_gdn.gamma_reparam(old_gdn.gamma)[source][:, source] / copies[source]
            work[f"{transform}.{gdn}.beta"] = new_gdn.beta_reparam.init(beta)
            work[f"{transform}.{gdn}.gamma"] = new_gdn.gamma_reparam.init(gamma)
            work[f"{c}.weight"] = split(work[f"{c}.weight"], in_dim)
    for key, value in work.items():
        if dst[key].shape == value.shape:
            dst[key].copy_(value)
        elif key.startswith(("g_a.", "g_s.")):  # elsewhere: the entropy models' tables, rebuilt on saving
            raise ValueError(f"{key}: widened to {tuple(value.shape)}, the wide model has {tuple(dst[key].shape)}")
    new.load_state_dict(dst)
    return new


def run() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights")
    ap.add_argument("out")
    ap.add_argument("--channels", type=int, required=True, help="new hidden width of g_a and g_s")
    ap.add_argument("--spread", type=float, default=0.25,
                    help="each copied weight is split s : 1 - s with s uniform in [0.5 - spread, 0.5 + spread]")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    old = zoo.load_weights(args.weights)
    try:
        new = widen(old, args.channels, args.spread, args.seed)
    except ValueError as exc:
        raise SystemExit(f"{args.weights}: {exc}") from None
    stage = {"steps": 0, "recipe": "widen", "note": f"transform channels {old.transform_channels} -> {args.channels} "
             f"(scripts/widen_transforms.py, spread {args.spread:g}, seed {args.seed})"}
    fp = zoo.save_derived_weights(new, args.out, args.weights, stage)
    print(f"{args.out}: transform channels {old.transform_channels} -> {args.channels}, fingerprint {fp.hex()}")


def main() -> None:
    exit_in_one_line(run)


if __name__ == "__main__":
    main()
