"""Shared fixtures: a tiny random model (fast), the sample image, Kodak if present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "assets" / "chelsea.png"
KODAK = Path(os.environ.get("PLIC_KODAK", ROOT.parent / "shared" / "datasets" / "kodak"))
TRAIN = Path(os.environ.get("PLIC_TRAIN", ROOT.parent / "shared" / "datasets" / "train"))

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """A small random-weight variable-rate hyperprior, saved as a plic weight file."""
    from plic import zoo
    from plic.models import MeanScaleHyperprior

    torch.manual_seed(1234)
    model = MeanScaleHyperprior(N=32, M=48, lambda_min=0.0018, lambda_max=0.0932)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    zoo.save_weights(model, path)
    return path


@pytest.fixture(scope="session")
def tiny_codec(tiny_model_path):
    from plic import zoo
    from plic.codec import Codec

    return Codec(zoo.load_weights(tiny_model_path))


@pytest.fixture(scope="session")
def sample_image() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def sample_plic(tiny_codec, sample_image) -> bytes:
    from plic.image_io import read_image

    return tiny_codec.encode(read_image(sample_image), quality=3).data


def load_script(name: str):
    """A module of ``scripts/`` (not a package), loaded from its file."""
    import importlib.util

    path = ROOT / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
