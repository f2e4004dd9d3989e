"""The metrics a proxy learns, computed for real on each (reference, distorted) pair.

Each target maps two batches of patches (N x 3 x H x W floats in [0, 1]) to
N scores, higher is better. VMAF runs libvmaf through ffmpeg, all pairs of a
batch in one process (:func:`plic.metrics.vmaf.vmaf_batch`); SSIM and MS-SSIM
are pytorch-msssim's. Any callable with that signature can be a target.
"""

from __future__ import annotations

from typing import Callable, Dict

import numpy as np
import torch
from torch import Tensor

from plic.errors import PlicError

Target = Callable[[Tensor, Tensor], Tensor]


def _to_uint8(x: Tensor) -> np.ndarray:
    return (x.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def vmaf_target(reference: Tensor, distorted: Tensor) -> Tensor:
    from plic.metrics.vmaf import vmaf_batch

    # the distorted patch is scored as the 8-bit image a decoder would output
    return torch.from_numpy(vmaf_batch(_to_uint8(reference), _to_uint8(distorted))).float()


def ssim_target(reference: Tensor, distorted: Tensor) -> Tensor:
    from pytorch_msssim import ssim

    with torch.no_grad():
        return ssim(distorted.clamp(0, 1), reference, data_range=1.0, size_average=False).float().cpu()


def ms_ssim_target(reference: Tensor, distorted: Tensor) -> Tensor:
    from pytorch_msssim import ms_ssim

    if min(reference.shape[-2:]) < 161:
        raise PlicError("MS-SSIM targets need patches of at least 161x161 (use --crop 192 or more)")
    with torch.no_grad():
        return ms_ssim(distorted.clamp(0, 1), reference, data_range=1.0, size_average=False).float().cpu()


#: name -> (metric, the scale of its scores)
TARGETS: Dict[str, tuple] = {
    "vmaf": (vmaf_target, 100.0),
    "ssim": (ssim_target, 1.0),
    "ms-ssim": (ms_ssim_target, 1.0),
}


def get_target(name: str):
    if name not in TARGETS:
        raise PlicError(f"unknown proxy target {name!r} (known: {', '.join(TARGETS)})")
    if name == "vmaf":
        from plic.metrics.vmaf import ffmpeg_with_vmaf

        ffmpeg_with_vmaf()  # no libvmaf: say so before training starts
    return TARGETS[name]
