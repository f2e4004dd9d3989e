"""Start a hyperprior with a finer latent (stride 8 or 4) from a trained stride-16 one.

    python scripts/init_finer_latent.py plic/weights/hyperprior-mse-vr.safetensors runs/s8/init.safetensors \
        --levels 3 --lambda-range 0.008 1.0

Why: the shipped N=64/M=96 model's transforms reach only 33.03 dB on Kodak even
without quantization (benchmarks/transform_ceiling/transform_ceiling.md): 96 latent values per
16x16x3 pixels is too tight a bottleneck for such narrow transforms, and
widening the latent to 192 channels lifted the ceiling by only 0.7 dB. Taking
one stride-2 stage out (``levels=3``) gives the latent four times the values at
the same width, two (``levels=2``) sixteen times. The outer stages of each
transform that keep their stride operate at the same resolutions as before, so
they are copied and keep what they learnt; every other tensor whose shape still
fits is copied too (the stages now at stride 1 get the old kernels only as a
starting point), the rest starts fresh.
"""

from __future__ import annotations

import argparse

import torch

from plic import zoo
from plic.errors import exit_in_one_line
from plic.registry import build_model


@torch.no_grad()
def finer_from(old: torch.nn.Module, M: int, levels: int, lambda_min: float, lambda_max: float,
               seed: int = 0) -> tuple[torch.nn.Module, list[str]]:
    """A model with ``levels`` stride-2 stages and ``old``'s weights where shapes allow; returns it and the fresh keys."""
    if getattr(old, "levels", 4) != 4:
        raise SystemExit("the source model must be a 4-level (stride-16) hyperprior")
    torch.manual_seed(seed)
    cfg = dict(old.config(), M=M, levels=levels, lambda_min=lambda_min, lambda_max=lambda_max)
    new = build_model(old.registry_name, **cfg)
    src, dst = old.state_dict(), new.state_dict()
    params = {k for k, _ in new.named_parameters()}
    fresh = []  # parameters left at their fresh initialisation (CDF tables are recomputed anyway)
    for key, t in dst.items():
        if key in src and src[key].shape == t.shape:
            t.copy_(src[key])
        elif key in params:
            fresh.append(key)
    new.load_state_dict(dst)
    return new, fresh


def run() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights")
    ap.add_argument("out")
    ap.add_argument("--M", type=int, help="latent channels (default: the source model's)")
    ap.add_argument("--levels", type=int, choices=(2, 3), default=3, help="stride-2 stages left (latent stride 2**levels)")
    ap.add_argument("--lambda-range", nargs=2, type=float, required=True, metavar=("MIN", "MAX"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    old = zoo.load_weights(args.weights)
    if old.registry_name != "hyperprior":
        raise SystemExit(f"{args.weights}: only hyperprior models (got {old.registry_name})")
    M = args.M or old.M
    new, fresh = finer_from(old, M, args.levels, *args.lambda_range, seed=args.seed)
    stage = {"steps": 0, "recipe": "finer-latent", "note": f"levels 4 -> {args.levels}, M {old.M} -> {M}, lambda "
             f"{args.lambda_range[0]:g}..{args.lambda_range[1]:g} (scripts/init_finer_latent.py, seed {args.seed}); "
             f"{len(fresh)} tensors fresh"}
    fp = zoo.save_derived_weights(new, args.out, args.weights, stage)
    print(f"{args.out}: stride {old.stride} -> {new.stride}, M {old.M} -> {M}, "
          f"{len(fresh)} tensors fresh: {', '.join(fresh) or 'none'}; fingerprint {fp.hex()}")


def main() -> None:
    exit_in_one_line(run)


if __name__ == "__main__":
    main()
