"""Fixtures shared by tests/ and projects/ (pytest's testpaths): each has its own conftest besides."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def save_rate_following_model():
    """``save(path, seed, scale=20, **config) -> path``: a random hyperprior whose rate follows lambda, as a weight file.

    A random model codes every lambda to about the same bytes; its analysis output scaled up makes
    the latents large enough that the quantization step, and so the rate, depends on lambda (a larger
    ``scale``: more bits at the same lambda).
    """
    import torch

    from plic import zoo
    from plic.models import MeanScaleHyperprior

    def save(path, seed, scale=20, **config):
        torch.manual_seed(seed)
        m = MeanScaleHyperprior(N=32, M=48, **config)
        with torch.no_grad():
            m.g_a[6].weight.mul_(scale)
        zoo.save_weights(m, path)
        return path

    return save
