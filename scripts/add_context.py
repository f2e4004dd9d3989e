"""Give a trained hyperprior a checkerboard context model (``hyperprior-checkerboard``).

    python scripts/add_context.py plic/weights/hyperprior-mse-vr.safetensors runs/mse-cb.safetensors

Every parameter of the hyperprior is kept; the context starts as no correction at all
(:class:`plic.models.hyperprior_checkerboard.ResidualEntropyParameters`), so the new file
reconstructs every image exactly as the old one and at the same rate, give or take the
bytes of one more payload. Then train it, the entropy model alone first (the transforms
keep their pixels but for the means' moves), then every parameter, which is where the
context pays (benchmarks/rd_per_cpu_hour/README.md):

    plic train --init runs/mse-cb.safetensors --lambda-range MIN MAX --recipe-arg train_only=latent_codec ...
"""

from __future__ import annotations

import argparse

import torch

from plic import zoo
from plic.errors import exit_in_one_line
from plic.registry import build_model

#: where the hyperprior's Gaussian conditional sits in the checkerboard model (inside the context codec)
MOVED = ("latent_codec.y.gaussian_conditional.", "latent_codec.y.y.gaussian_conditional.")


@torch.no_grad()
def add_context(old: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)  # the context's first layers start random; the last starts at zero
    new = build_model("hyperprior-checkerboard", **old.config())
    state = {k.replace(*MOVED) if k.startswith(MOVED[0]) else k: v for k, v in old.state_dict().items()}
    missing, unexpected = new.load_state_dict(state, strict=False)
    if unexpected or not all(k.startswith(("latent_codec.y.entropy_parameters.", "latent_codec.y.context_prediction."))
                             for k in missing):
        raise SystemExit(f"unexpected parameters: missing {missing}, unexpected {unexpected}")
    return new


def run() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    old = zoo.load_weights(args.weights)
    if old.registry_name != "hyperprior":
        raise SystemExit(f"{args.weights}: only hyperprior models take this context (got {old.registry_name})")
    if old.post_filter is not None:
        raise SystemExit(f"{args.weights}: has a post-filter; add the context to the codec before it")
    new = add_context(old, args.seed)
    stage = {"steps": 0, "recipe": "add-context", "note": f"checkerboard context added to {args.weights} "
             f"(scripts/add_context.py, seed {args.seed}; starts as no correction)"}
    fp = zoo.save_derived_weights(new, args.out, args.weights, stage)
    print(f"{args.out}: hyperprior -> hyperprior-checkerboard, fingerprint {fp.hex()}")


def main() -> None:
    exit_in_one_line(run)


if __name__ == "__main__":
    main()
