"""Widen a trained hyperprior's latent y (M channels) without retraining it from scratch.

    python scripts/widen_latent.py plic/weights/hyperprior-mse-vr.safetensors runs/widened.safetensors --M 192

Why: the shipped N=64/M=96 model saturates at high rates. Its transforms
without any quantization reach only about 34 dB on Kodak, so past lambda 0.08
extra bits buy almost nothing and JPEG overtakes it above ~1 bpp. More latent
channels lift that ceiling; training a wider model from scratch costs more CPU
steps than a session has, so the new channels are grafted onto the trained one
(Net2Net-style) and the whole model is finetuned with ``plic train --init``.

What stays exactly as it was: the hyper latent z (the new y channels enter h_a
through zero weights), the predicted means and scales of the old channels
(new hidden units of h_s feed the old outputs through zero weights), and the
reconstruction whenever the new channels quantize to zero. The new channels'
own weights are random and small, because an all-zero
block receives no gradient through the rounding and would never learn.
"""

from __future__ import annotations

import argparse
import json

import torch

from plic import zoo
from plic.registry import build_model


@torch.no_grad()
def widen(old: torch.nn.Module, M: int, seed: int = 0) -> torch.nn.Module:
    m = old.M
    if M <= m:
        raise SystemExit(f"--M {M} must exceed the model's M={m}")
    torch.manual_seed(seed)
    new = build_model(old.registry_name, **dict(old.config(), M=M))
    src, dst = old.state_dict(), new.state_dict()
    h = 3 * m // 2  # h_s's middle width (M * 3 // 2)
    for key, t in src.items():
        if dst[key].shape == t.shape:
            dst[key].copy_(t)
    # analysis: old output channels copied; new ones start near zero, so they
    # round to zero and cost no bits until training finds a use for them
    dst["g_a.6.weight"][:m] = src["g_a.6.weight"]
    dst["g_a.6.weight"][m:] *= 0.05
    dst["g_a.6.bias"][:m] = src["g_a.6.bias"]
    dst["g_a.6.bias"][m:] = 0
    # synthesis (ConvTranspose: weight is [in, out, k, k]): new inputs start small
    dst["g_s.0.weight"][:m] = src["g_s.0.weight"]
    dst["g_s.0.weight"][m:] *= 0.1
    # hyper analysis: new y channels enter through zero weights, so z is unchanged
    dst["latent_codec.hyper.h_a.0.weight"][:, :m] = src["latent_codec.hyper.h_a.0.weight"]
    dst["latent_codec.hyper.h_a.0.weight"][:, m:] = 0
    # hyper synthesis: deconv(N, M), deconv(M, 3M/2), conv(3M/2, 2M) -> [scales | means]
    w0 = "latent_codec.hyper.h_s.0"
    dst[f"{w0}.weight"][:, :m] = src[f"{w0}.weight"]
    dst[f"{w0}.bias"][:m] = src[f"{w0}.bias"]
    w2 = "latent_codec.hyper.h_s.2"
    dst[f"{w2}.weight"][:m, :h] = src[f"{w2}.weight"]
    dst[f"{w2}.weight"][m:, :h] = 0  # new hidden units do not reach the old ones
    dst[f"{w2}.bias"][:h] = src[f"{w2}.bias"]
    w4 = "latent_codec.hyper.h_s.4"
    for part in (0, 1):  # scales, then means
        rows_old, rows_new = slice(part * m, (part + 1) * m), slice(part * M, part * M + m)
        dst[f"{w4}.weight"][rows_new] = 0
        dst[f"{w4}.weight"][rows_new, :h] = src[f"{w4}.weight"][rows_old]
        dst[f"{w4}.bias"][rows_new] = src[f"{w4}.bias"][rows_old]
        fresh = slice(part * M + m, (part + 1) * M)
        dst[f"{w4}.weight"][fresh] *= 0.1
        dst[f"{w4}.bias"][fresh] = 0
    new.load_state_dict(dst)
    return new


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights")
    ap.add_argument("out")
    ap.add_argument("--M", type=int, required=True, help="new number of latent channels")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    old = zoo.load_weights(args.weights)
    if old.registry_name != "hyperprior":
        raise SystemExit(f"{args.weights}: only hyperprior models can be widened (got {old.registry_name})")
    new = widen(old, args.M, args.seed)
    # keep the training record, so ship_weights.py lists the stages before the widening
    earlier = json.loads(zoo.read_metadata(args.weights).get("plic_training", "{}")).get("stages", [])
    stage = {"steps": 0, "recipe": "widen", "note": f"latent channels M {old.M} -> {args.M} "
             f"(scripts/widen_latent.py, seed {args.seed})"}
    fp = zoo.save_weights(new, args.out, metadata={"plic_training": json.dumps({"stages": earlier + [stage]})})
    print(f"{args.out}: M {old.M} -> {args.M}, fingerprint {fp.hex()}")


if __name__ == "__main__":
    main()
