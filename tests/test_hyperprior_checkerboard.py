"""The hyperprior with a checkerboard context: grafted onto a trained hyperprior, it codes as that one did
until its context learns; then only the rate changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import load_script
from plic import zoo
from plic.codec import Codec
from plic.image_io import PlanarImage
from plic.models import MeanScaleHyperprior


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A small random hyperprior and the same with the context added, both as weight files."""
    d = tmp_path_factory.mktemp("cb")
    torch.manual_seed(3)
    old = MeanScaleHyperprior(N=16, M=24, lambda_min=0.002, lambda_max=0.05)
    zoo.save_weights(old, d / "old.safetensors")
    new = load_script("add_context").add_context(zoo.load_weights(d / "old.safetensors"))
    zoo.save_weights(new, d / "new.safetensors")
    return d / "old.safetensors", d / "new.safetensors"


def test_adding_the_context_keeps_every_reconstruction_and_about_the_rate(pair):
    old, new = (Codec(zoo.load_weights(p)) for p in pair)
    assert new.model.registry_name == "hyperprior-checkerboard"
    torch.manual_seed(0)
    img = PlanarImage(torch.rand(1, 3, 70, 90), 3, 8)
    a, b = old.encode(img, quality=4), new.encode(img, quality=4)
    (pa, fa), (pb, fb) = old.decode(a.data), new.decode(b.data)
    assert np.array_equal(np.asarray(pa), np.asarray(pb))
    assert len(fa.payloads) == 2 and len(fb.payloads) == 3  # y in two checkerboard halves, then z
    assert abs(len(b.data) - len(a.data)) <= 48  # one more payload's framing and coder flush


def test_the_graft_trains_from_where_the_hyperprior_was(pair):
    """The training pass (what the first step of a finetune sees) of the graft equals the hyperprior's."""
    old, new = (zoo.load_weights(p).eval() for p in pair)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        a, b = old(x, [0.004, 0.03]), new(x, [0.004, 0.03])
    torch.testing.assert_close(b["x_hat"], a["x_hat"])
    torch.testing.assert_close(b["likelihoods"]["y"], a["likelihoods"]["y"])
    torch.testing.assert_close(b["likelihoods"]["z"], a["likelihoods"]["z"])


def test_a_context_that_has_learned_lowers_the_rate_of_a_correlated_latent(pair):
    """A context that predicts each non-anchor from its neighbours: on a smooth latent (neighbours alike)
    the non-anchors cost fewer bits than under the hyperprior alone, and the two halves decode to what
    was coded."""
    model = zoo.load_weights(pair[1])
    codec_y = model.latent_codec["y"]
    M = model.M
    with torch.no_grad():
        ctx = codec_y.context_prediction
        ctx.weight.zero_()
        ctx.bias.zero_()
        # context channel M + c (the "means" half) = mean of the 4 anchor neighbours of channel c
        for c in range(M):
            for i, j in ((1, 2), (2, 1), (2, 3), (3, 2)):
                ctx.weight[M + c, c, i, j] = 0.25
        last = codec_y.entropy_parameters.net[-1]
        assert not last.weight.any() and not last.bias.any()  # the graft starts at no correction
        # a correction that replaces the hyperprior's means by the context's (one 1x1 layer for clarity)
        direct = torch.nn.Conv2d(4 * M, 2 * M, 1, bias=False)
        direct.weight.zero_()
        for c in range(M):
            direct.weight[M + c, M + c] = 1.0  # + the context's mean of channel c
            direct.weight[M + c, 3 * M + c] = -1.0  # - the hyperprior's mean of channel c
        codec_y.entropy_parameters.net = direct
    torch.manual_seed(0)
    y = torch.nn.functional.interpolate(torch.randn(1, M, 4, 4) * 20, size=(16, 16), mode="bilinear")
    model.update(force=True)
    with torch.no_grad():
        hyper = model.latent_codec
        side = torch.zeros(1, 2 * M, 16, 16)
        side[:, :M] = 1.0  # unit scales, zero means: the hyperprior alone knows nothing
        plain = hyper["y"].latent_codec["y"].compress(y, side)
        coded = hyper["y"].compress(y, side)
        decoded = hyper["y"].decompress(coded["strings"], coded["shape"], side)
    bytes_plain = sum(len(s) for s in plain["strings"][0])
    bytes_cb = sum(len(s) for strings in coded["strings"] for s in strings)
    assert bytes_cb < 0.8 * bytes_plain
    torch.testing.assert_close(decoded["y_hat"], coded["y_hat"])


def test_only_a_hyperprior_takes_the_context(pair, tmp_path):
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "scripts" / "add_context.py"
    r = subprocess.run([sys.executable, str(script), str(pair[1]), str(tmp_path / "x.safetensors")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "only hyperprior models take this context" in r.stderr
    assert not (tmp_path / "x.safetensors").exists()
