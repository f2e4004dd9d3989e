"""FID, KID and a Fréchet distance over VGG16 features, on 256x256 patches.

A dataset of a few dozen images is too small for FID, so, as HiFiC (Mentzer et
al. 2020) and the CLIC challenge do, each image is cut into non-overlapping
256x256 patches, and again into 256x256 patches shifted by 128 pixels in both
directions; the statistics are taken over all patches of all images (Kodak:
24 images of 768x512 -> 24 x (6 + 2) = 192 patches).

* ``fid``/``kid``: pytorch-fid's Inception-v3 (the TF FID graph's weights,
  2048-d pool features). Those weights cannot be downloaded here: give their
  file with ``PLIC_INCEPTION_WEIGHTS`` or put ``pt_inception-2015-12-05-6726825d.pth``
  in the torch hub cache; otherwise these metrics say so and stop.
* ``fd-vgg16``: the same Fréchet distance over VGG16 (ImageNet, torchvision)
  conv5_3 features averaged over space (512-d). Not FID, and not comparable to
  published FIDs, but it always works offline and ranks like it.
* KID is the unbiased MMD² with the cubic polynomial kernel of Binkowski et al.
  2018, averaged over random subsets of at most 1000 samples.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch

from plic.errors import PlicError
from plic.metrics.pixel import to_tensor
from plic.metrics.pretrained import torch_hub_checkpoint
from plic.metrics.vgg import VGGFeatures

PATCH = 256
INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"


def patches(rgb: np.ndarray, size: int = PATCH) -> Iterator[np.ndarray]:
    """Non-overlapping size x size patches, then the same grid shifted by size/2."""
    h, w = rgb.shape[:2]
    for offset in (0, size // 2):
        for y in range(offset, h - size + 1, size):
            for x in range(offset, w - size + 1, size):
                yield rgb[y:y + size, x:x + size]


def inception_weights_path() -> Optional[Path]:
    env = os.environ.get("PLIC_INCEPTION_WEIGHTS")
    if env:
        return Path(env)
    return torch_hub_checkpoint(INCEPTION_FILE)


@functools.lru_cache(maxsize=None)
def inception_network(device: str = "cpu") -> torch.nn.Module:
    path = inception_weights_path()
    if path is None or not path.is_file():
        raise PlicError(f"FID/KID need the FID Inception weights ({INCEPTION_FILE}), which cannot be downloaded here: "
                        "set PLIC_INCEPTION_WEIGHTS to the file or put it in the torch hub cache; fd-vgg16 works without it")
    from pytorch_fid import inception as pf

    # pytorch-fid fetches the file by URL; hand it the local file instead, read without unpickling code
    original = pf.load_state_dict_from_url
    pf.load_state_dict_from_url = lambda *a, **k: torch.load(path, map_location="cpu", weights_only=True)
    try:
        net = pf.InceptionV3([pf.InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=True, normalize_input=True,
                             use_fid_inception=True)
    finally:
        pf.load_state_dict_from_url = original
    return net.eval().requires_grad_(False).to(device)


class VGG16Pool(VGGFeatures):
    """VGG16 conv5_3 (after ReLU) averaged over space: a 512-d descriptor."""

    def __init__(self):
        super().__init__(layers=(29,))  # conv5_3's ReLU, without the last max-pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)[0].mean([2, 3])


@functools.lru_cache(maxsize=None)
def vgg16_pool_network(device: str = "cpu") -> torch.nn.Module:
    return VGG16Pool().eval().requires_grad_(False).to(device)


def patch_features(rgb: np.ndarray, extractor: str, device: str = "cpu", batch: int = 8) -> np.ndarray:
    """Features (n_patches x d, float64) of all 256x256 patches of one image.

    ``extractor`` is "inception" (2048-d) or "vgg16" (512-d). Images smaller
    than a patch give no rows.
    """
    net = inception_network(device) if extractor == "inception" else vgg16_pool_network(device)
    tiles = list(patches(rgb))
    rows = []
    with torch.no_grad():
        for i in range(0, len(tiles), batch):
            x = torch.cat([to_tensor(t) for t in tiles[i:i + batch]]).to(device)
            out = net(x)
            out = out[0] if isinstance(out, list) else out
            rows.append(out.reshape(out.shape[0], -1).double().cpu().numpy())
    dim = 2048 if extractor == "inception" else 512
    return np.concatenate(rows) if rows else np.zeros((0, dim))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance of Gaussians fitted to two feature sets (rows are samples)."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    if len(a) < 2 or len(b) < 2:
        return float("nan")
    return float(calculate_frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)))


def kernel_inception_distance(a: np.ndarray, b: np.ndarray, subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> float:
    """Unbiased MMD² with k(x, y) = (x.y / d + 1)^3, averaged over random subsets."""
    n = min(len(a), len(b), subset_size)
    if n < 2:
        return float("nan")
    d = a.shape[1]
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(subsets):
        x = a[rng.choice(len(a), n, replace=False)]
        y = b[rng.choice(len(b), n, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        total += ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (n * (n - 1)) - 2 * kxy.mean()
    return float(total / subsets)
