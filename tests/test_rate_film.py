"""The synthesis told the rate: added to a trained hyperprior it decodes as before; once it has learned,
the decoder applies the rate of each file, and plic train adds it to an --init but never removes it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from compressai.layers import GDN

from plic import bitstream, zoo
from plic.codec import Codec
from plic.image_io import PlanarImage
from plic.models import MeanScaleHyperprior
from plic.registry import build_model


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    torch.manual_seed(5)
    path = tmp_path_factory.mktemp("film") / "plain.safetensors"
    zoo.save_weights(MeanScaleHyperprior(N=16, M=24, lambda_min=0.002, lambda_max=0.05), path)
    return path


def with_film(path, name="hyperprior"):
    old = zoo.load_weights(path)
    new = build_model(name, **old.config(), rate_film=True)
    missing, unexpected = new.load_state_dict(old.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("g_s._film.") for k in missing)
    return new


def test_the_film_is_after_each_inverse_gdn_and_the_layers_index_as_before(plain):
    m = with_film(plain)
    assert len(m.g_s) == 7 and isinstance(m.g_s[-1], torch.nn.ConvTranspose2d)
    assert all(isinstance(m.g_s[t], GDN) for t in m.g_s.taps) and len(m.g_s.taps) == len(m.g_s._film) == 3
    assert m.config()["rate_film"] is True and "rate_film" not in zoo.load_weights(plain).config()
    with pytest.raises(ValueError, match="shortcut"):
        MeanScaleHyperprior(N=16, M=24, shortcut=True, rate_film=True)


def test_added_to_a_trained_model_it_decodes_every_file_as_before(plain, tmp_path):
    zoo.save_weights(with_film(plain), tmp_path / "film.safetensors")
    old, new = Codec(zoo.load_weights(plain)), Codec(zoo.load_weights(tmp_path / "film.safetensors"))
    torch.manual_seed(0)
    img = PlanarImage(torch.rand(1, 3, 70, 90), 3, 8)
    for q in (1, 6):
        a, b = old.encode(img, quality=q), new.encode(img, quality=q)
        assert bitstream.parse(a.data).payloads == bitstream.parse(b.data).payloads  # headers: fingerprints differ
        assert np.array_equal(np.asarray(old.decode(a.data)[0]), np.asarray(new.decode(b.data)[0]))


def test_a_learned_film_decodes_each_file_at_its_own_rate(plain, tmp_path):
    """With the film's last layers random, the decoded pixels are the model's own evaluation pass at the
    file's lambda (to 8-bit rounding), and not that pass at another lambda's step."""
    m = with_film(plain)
    torch.manual_seed(1)
    with torch.no_grad():
        for film in m.g_s._film:
            film.net[-1].weight.normal_(0, 0.3)
            film.net[-1].bias.normal_(0, 0.1)
    zoo.save_weights(m, tmp_path / "learned.safetensors")
    codec = Codec(zoo.load_weights(tmp_path / "learned.safetensors"))
    model = codec.model
    x = torch.rand(1, 3, 64, 64)
    img = PlanarImage(x, 3, 8)
    for q in (2, 7):
        lmbda = model.quality_to_lambda(q)
        decoded = torch.as_tensor(np.asarray(codec.decode(codec.encode(img, quality=q).data)[0]), dtype=torch.float32)
        decoded = decoded.permute(2, 0, 1) / 255
        with torch.no_grad():
            out = model(x, lmbda)
            own = out["x_hat"].clamp(0, 1)[0]
            other_step = model.quant_step(torch.tensor([model.quality_to_lambda(9 - q)])).float()
            other = model.g_s(out["y_hat"], other_step).clamp(0, 1)[0]
        assert (decoded - own).abs().max() < 1.5 / 255
        assert (decoded - other).abs().max() > 10 / 255


def test_plic_train_adds_the_film_to_an_init_and_keeps_it(plain, tmp_path):
    from PIL import Image

    data = tmp_path / "imgs"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (80, 90, 3), dtype=np.uint8)).save(data / f"{i}.png")
    base = [sys.executable, "-m", "plic", "train", "--lambda-range", "0.002", "0.05", "--data", str(data),
            "--batch-size", "2", "--crop", "64", "--eval-every", "0", "--no-progress"]

    def train(*args):
        return subprocess.run(base + list(args), capture_output=True, text=True, timeout=300)

    r = train("--steps", "2", "--init", str(plain), "--rate-film", "--out", str(tmp_path / "ft"))
    assert r.returncode == 0, r.stderr
    assert "missing 12, unexpected 0" in r.stderr  # three films of two layers, weights and biases each
    trained = zoo.load_weights(tmp_path / "ft" / "model.safetensors")
    assert trained.rate_film and trained.g_s._film[0].net[-1].weight.abs().sum() > 0  # it learned
    r = train("--steps", "3", "--init", str(plain), "--out", str(tmp_path / "ft"))  # resumed: keeps it
    assert r.returncode == 0 and "resuming" in r.stderr, r.stderr
    assert json.loads((tmp_path / "ft" / "state.json").read_text())["config"]["model_args"]["rate_film"] is True
    film = str(tmp_path / "ft" / "model.safetensors")
    r = train("--steps", "1", "--init", film, "--no-rate-film", "--out", str(tmp_path / "ft2"))
    assert r.returncode == 1 and r.stderr.strip() == (
        f"plic: --init {film} has a rate-conditioned synthesis: it is part of its decoder (drop --no-rate-film)")
    r = train("--steps", "1", "--model", "elic", "--rate-film", "--out", str(tmp_path / "elic"))
    assert r.returncode == 1 and r.stderr.strip() == "plic: --rate-film is an option of the hyperprior models, not of 'elic'"
    assert not (tmp_path / "ft2").exists() and not (tmp_path / "elic").exists()
