"""Two ceilings that motivate the residual layer: a linear code of image blocks, and of the default's residual.

    python projects/residual_layer/linear_ceilings.py --train ../shared/datasets/train \
        --kodak ../shared/datasets/kodak --weights plic/weights/hyperprior-mse-vr.safetensors

1. The best K-dimensional linear code of each 16x16x3 block (its first K principal components, fitted on
   150 training images): the PSNR on Kodak with no quantization, for K = 96, 192, 320, 384.
2. The residual of ``--weights`` with no quantization (``x - g_s(g_a(x))``): the share of its energy in its
   first K principal components (fitted on one random 256x256 crop of each of 80 training images), and
   Kodak's PSNR when those K components of each block's residual are added back exactly.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from plic import zoo
from plic.image_io import read_image
from plic.residual_layer import BLOCK, to_blocks
from plic.train.data import find_images


def whole_blocks(a: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (blocks, 768) of its top-left region in whole 16x16 blocks (the rest is left out)."""
    return to_blocks(a[:a.shape[0] // BLOCK * BLOCK, :a.shape[1] // BLOCK * BLOCK])


def principal_components(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, components (columns, by falling variance) and variances."""
    values, vectors = np.linalg.eigh(np.cov(blocks.T))
    return blocks.mean(0), vectors[:, ::-1], values[::-1]


def psnr_of_error(err: np.ndarray) -> float:
    return float(10 * np.log10(255 ** 2 / np.mean(err ** 2)))


def rgb255(img) -> np.ndarray:
    return img.rgb[0].permute(1, 2, 0).numpy().astype(np.float64) * 255


@torch.no_grad()
def residual(model, x: torch.Tensor) -> np.ndarray:
    """``x - g_s(g_a(x))`` in 8-bit units, (H, W, 3)."""
    pad_h, pad_w = (-x.shape[2]) % model.stride, (-x.shape[3]) % model.stride
    xp = torch.nn.functional.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    x_hat = model.g_s(model.g_a(xp))[..., :x.shape[2], :x.shape[3]].clamp(0, 1)
    return (x - x_hat)[0].permute(1, 2, 0).numpy().astype(np.float64) * 255


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", required=True)
    ap.add_argument("--kodak", required=True)
    ap.add_argument("--weights", required=True)
    args = ap.parse_args()
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    train = find_images([args.train])
    rng.shuffle(train)
    kodak = find_images([args.kodak])

    mean, vectors, _ = principal_components(np.concatenate([whole_blocks(rgb255(read_image(p))) for p in train[:150]]))
    for k in (96, 192, 320, 384):
        db = [psnr_of_error(np.clip((b - mean) @ vectors[:, :k] @ vectors[:, :k].T + mean, 0, 255) - b)
              for b in (whole_blocks(rgb255(read_image(p))) for p in kodak)]
        print(f"linear code of 16x16x3 blocks, K={k}: Kodak {np.mean(db):.2f} dB")

    model = zoo.load_weights(args.weights).eval()
    crops = []
    for p in train[:80]:
        x = read_image(p).rgb
        i, j = rng.integers(0, max(1, x.shape[2] - 256)), rng.integers(0, max(1, x.shape[3] - 256))
        crops.append(whole_blocks(residual(model, x[..., i:i + 256, j:j + 256])))
    _, vectors, variances = principal_components(np.concatenate(crops))
    kodak_residuals = [whole_blocks(residual(model, read_image(p).rgb)) for p in kodak]
    for k in (0, 32, 96, 192):
        share = variances[:k].sum() / variances.sum()
        db = [psnr_of_error(r - r @ vectors[:, :k] @ vectors[:, :k].T) for r in kodak_residuals]
        print(f"residual of {args.weights}, K={k}: {share:.1%} of its training energy, Kodak {np.mean(db):.2f} dB")


if __name__ == "__main__":
    main()
