"""Image quality metrics by name, as ``plic eval --metrics`` takes them.

Full-reference metrics compare one decoded image with its original; set
metrics (FID, KID, FD-VGG16) compare the patch-feature distributions of all
decoded images of one rate point with those of the originals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional

import numpy as np

from plic.errors import PlicError


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    higher_is_better: bool
    #: full reference: (ref, dist) -> float; None for set metrics
    pair: Optional[Callable[[np.ndarray, np.ndarray], float]] = None
    #: set metrics: the patch feature extractor, "inception" or "vgg16"
    features: Optional[str] = None


def _psnr(ref, dist):
    from plic.metrics.pixel import psnr_rgb
    return psnr_rgb(ref, dist)


def _psnr_y(ref, dist):
    from plic.metrics.pixel import psnr_y
    return psnr_y(ref, dist)


def _ssim(ref, dist):
    from plic.metrics.pixel import ssim
    return ssim(ref, dist)


def _ms_ssim(ref, dist):
    from plic.metrics.pixel import ms_ssim
    return ms_ssim(ref, dist)


def _lpips(net):
    def fn(ref, dist):
        from plic.metrics.lpips import lpips_distance
        return lpips_distance(ref, dist, net)
    return fn


def _dists(ref, dist):
    from plic.metrics.dists import dists_distance
    return dists_distance(ref, dist)


def _vmaf(ref, dist):
    from plic.metrics.vmaf import vmaf
    return vmaf(ref, dist)


METRICS: Dict[str, Metric] = {m.name: m for m in [
    Metric("psnr", "PSNR RGB (dB)", True, _psnr),
    Metric("psnr-y", "PSNR Y (dB)", True, _psnr_y),
    Metric("ssim", "SSIM", True, _ssim),
    Metric("ms-ssim", "MS-SSIM", True, _ms_ssim),
    Metric("lpips-alex", "LPIPS AlexNet", False, _lpips("alexnet")),
    Metric("lpips-vgg", "LPIPS VGG16", False, _lpips("vgg16")),
    Metric("dists", "DISTS", False, _dists),
    Metric("vmaf", "VMAF", True, _vmaf),
    Metric("fd-vgg16", "Fréchet distance, VGG16 features", False, features="vgg16"),
    Metric("fid", "FID (256px patches)", False, features="inception"),
    Metric("kid", "KID (256px patches)", False, features="inception"),
]}

#: short names users type
ALIASES = {"lpips": "lpips-alex", "msssim": "ms-ssim", "ms_ssim": "ms-ssim", "lpips-vgg16": "lpips-vgg", "lpips-alexnet": "lpips-alex"}


def get_metric(name: str) -> Metric:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in METRICS:
        raise PlicError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
    return METRICS[key]
