"""Widen a trained hyperprior's latent y (M channels) without retraining it from scratch.

    python scripts/widen_latent.py plic/weights/hyperprior-mse-vr.safetensors runs/widened.safetensors --M 192

Why: the shipped N=64/M=96 model saturates at high rates. Its transforms
without any quantization reach only 33.03 dB on Kodak
(benchmarks/transform_ceiling/transform_ceiling.md), so past lambda 0.08 extra bits buy almost
nothing and JPEG overtakes it above ~1 bpp. More latent channels lift that
ceiling; training a wider model from scratch costs more CPU steps than a session
has, so the new channels are grafted onto the trained one (Net2Net-style) and
the whole model is finetuned with ``plic train --recipe grow-latent
--recipe-arg free_from=<old M> --init <this file>``.

What stays exactly as it was: the hyper latent z (the new y channels enter h_a
through zero weights), the predicted means and scales of the old channels
(new hidden units of h_s feed the old outputs through zero weights), and the
reconstruction (the new channels enter the synthesis through zero weights).
Each new channel starts as a scaled-down copy of an old one, with the copied
channel's predicted mean and scale scaled alike: it rounds to zero at low rates
and carries a coarse copy at high rates, which gives the zero synthesis weights
a gradient. (New channels that always round to zero, the first attempt, get no
gradient through the rounding: they stayed unused after 3,500 steps.)

A ``hyperprior-checkerboard`` model (the shipped default) is widened alike: the
new channels enter the context's old features and the entropy parameters' old
hidden units through zero weights, and the new channels' means and scales are
the copied channels' times the copy gain in both checkerboard passes.
"""

from __future__ import annotations

import argparse

import torch

from plic import zoo
from plic.errors import exit_in_one_line
from plic.models import CheckerboardHyperprior, MeanScaleHyperprior
from plic.registry import build_model


@torch.no_grad()
def widen(old: torch.nn.Module, M: int, copy_gain: float = 0.1, seed: int = 0) -> torch.nn.Module:
    """``old`` with M latent channels; new channel m + k starts as ``copy_gain`` times old channel k."""
    if not isinstance(old, MeanScaleHyperprior):
        raise ValueError(f"only hyperprior models (with or without the checkerboard context) can be widened, "
                         f"not {old.registry_name}")
    if old.shortcut:
        raise ValueError("a model with the wavelet shortcut is not widened here (its shortcut maps are M wide)")
    m = old.M
    if not m < M <= 2 * m:
        raise ValueError(f"--M {M} must lie in ({m}, {2 * m}]: each new channel copies an old one")
    torch.manual_seed(seed)
    new = build_model(old.registry_name, **dict(old.config(), M=M))
    src, dst = old.state_dict(), new.state_dict()
    k = M - m  # new channels; they copy old channels 0..k-1
    h = 3 * m // 2  # h_s's middle width (M * 3 // 2)
    for key, t in src.items():
        if dst[key].shape == t.shape:
            dst[key].copy_(t)
    # analysis: new channels are scaled copies of old ones. Scaled down, they
    # round to zero at low rates (no bits) and to a coarse second description
    # at high rates, where the synthesis then has a nonzero input to learn from.
    # (Channels that always round to zero would get no gradient and stay dead.)
    for name in ("g_a.6.weight", "g_a.6.bias"):
        dst[name][:m] = src[name]
        dst[name][m:] = copy_gain * src[name][:k]
    # synthesis (ConvTranspose: weight is [in, out, k, k]): new inputs enter through
    # zero weights, so the reconstruction is unchanged until training uses them
    dst["g_s.0.weight"][:m] = src["g_s.0.weight"]
    dst["g_s.0.weight"][m:] = 0
    # hyper analysis: likewise, so z is unchanged
    dst["latent_codec.hyper.h_a.0.weight"][:, :m] = src["latent_codec.hyper.h_a.0.weight"]
    dst["latent_codec.hyper.h_a.0.weight"][:, m:] = 0
    # hyper synthesis: deconv(N, M), deconv(M, 3M/2), conv(3M/2, 2M) -> [scales | means].
    # Its new hidden units keep random inputs and start with zero outputs; the
    # new channels' means and scales are the copied channels' times copy_gain,
    # the exact distribution of a scaled copy.
    w0 = "latent_codec.hyper.h_s.0"
    dst[f"{w0}.weight"][:, :m] = src[f"{w0}.weight"]
    dst[f"{w0}.bias"][:m] = src[f"{w0}.bias"]
    w2 = "latent_codec.hyper.h_s.2"
    dst[f"{w2}.weight"][:m, :h] = src[f"{w2}.weight"]
    dst[f"{w2}.weight"][m:, :h] = 0
    dst[f"{w2}.bias"][:h] = src[f"{w2}.bias"]
    _widen_params(src, dst, "latent_codec.hyper.h_s.4", m, M, h, copy_gain)
    if isinstance(old, CheckerboardHyperprior):
        _widen_context(src, dst, m, M, copy_gain)
    new.load_state_dict(dst)
    return new


def _widen_params(src: dict, dst: dict, name: str, m: int, M: int, h: int, copy_gain: float) -> None:
    """Layer ``name``, which outputs [scales | means] from its first ``h`` inputs (the old hidden units),
    widened from m to M channels each: the old channels' rows as they were, new channel m + k's the
    copied channel k's times ``copy_gain``, and zero weights from the new hidden units."""
    k = M - m
    dst[f"{name}.weight"].zero_()
    dst[f"{name}.bias"].zero_()
    for part in (0, 1):  # scales, then means
        rows = slice(part * m, (part + 1) * m)
        dst[f"{name}.weight"][part * M: part * M + m, :h] = src[f"{name}.weight"][rows]
        dst[f"{name}.bias"][part * M: part * M + m] = src[f"{name}.bias"][rows]
        dst[f"{name}.weight"][part * M + m: (part + 1) * M, :h] = copy_gain * src[f"{name}.weight"][rows][:k]
        dst[f"{name}.bias"][part * M + m: (part + 1) * M] = copy_gain * src[f"{name}.bias"][rows][:k]


def _widen_context(src: dict, dst: dict, m: int, M: int, copy_gain: float) -> None:
    """The checkerboard context of a ``hyperprior-checkerboard`` model, widened as the hyperprior is:
    the old channels' means and scales stay as they were in both passes, the new channels' are the
    copied channels' times ``copy_gain``."""
    # context (masked 5x5 conv, y_hat -> 2M features): the new channels of y enter the old features
    # through zero weights, so the old features are unchanged. The new features keep their random
    # weights: they feed only new hidden units of the entropy parameters, whose outputs start at zero.
    c = "latent_codec.y.context_prediction"
    dst[f"{c}.weight"][:2 * m, :m] = src[f"{c}.weight"]
    dst[f"{c}.weight"][:2 * m, m:] = 0
    dst[f"{c}.bias"][:2 * m] = src[f"{c}.bias"]
    # entropy parameters: 1x1 convs [context (2M) | hyperprior's scales (M) | means (M)] -> 10M/3 -> 8M/3
    # -> [scales | means], added to the hyperprior's (ResidualEntropyParameters). The old hidden units
    # see the old inputs at their new places and nothing else; the new ones keep random inputs and
    # feed the old hidden units and the outputs through zero weights. The new channels' outputs, the
    # copied ones' times copy_gain, add to their hyperprior part (already times copy_gain, above), so
    # their means and scales are the copied channels' times copy_gain in both passes.
    e = "latent_codec.y.entropy_parameters.net"
    h1, h2 = 10 * m // 3, 8 * m // 3
    dst[f"{e}.0.weight"][:h1] = 0
    for at, to, n in ((0, 0, 2 * m), (2 * m, 2 * M, m), (3 * m, 3 * M, m)):  # context, scales, means
        dst[f"{e}.0.weight"][:h1, to: to + n] = src[f"{e}.0.weight"][:, at: at + n]
    dst[f"{e}.0.bias"][:h1] = src[f"{e}.0.bias"]
    dst[f"{e}.2.weight"][:h2, :h1] = src[f"{e}.2.weight"]
    dst[f"{e}.2.weight"][:h2, h1:] = 0
    dst[f"{e}.2.bias"][:h2] = src[f"{e}.2.bias"]
    _widen_params(src, dst, f"{e}.4", m, M, h2, copy_gain)


def run() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights")
    ap.add_argument("out")
    ap.add_argument("--M", type=int, required=True, help="new number of latent channels")
    ap.add_argument("--copy-gain", type=float, default=0.1,
                    help="new channels start as this multiple of the old channels they copy")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    old = zoo.load_weights(args.weights)
    try:
        new = widen(old, args.M, args.copy_gain, args.seed)
    except ValueError as exc:
        raise SystemExit(f"{args.weights}: {exc}") from None
    stage = {"steps": 0, "recipe": "widen", "note": f"latent channels M {old.M} -> {args.M} "
             f"(scripts/widen_latent.py, copy gain {args.copy_gain:g}, seed {args.seed})"}
    fp = zoo.save_derived_weights(new, args.out, args.weights, stage)
    print(f"{args.out}: M {old.M} -> {args.M}, fingerprint {fp.hex()}")


def main() -> None:
    exit_in_one_line(run)


if __name__ == "__main__":
    main()
