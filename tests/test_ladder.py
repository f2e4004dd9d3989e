"""A low-rate model and its high-rate partner coding as one codec."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plic import bitstream, zoo
from plic.codec import Codec
from plic.errors import PlicError
from plic.image_io import read_image
from plic.ladder import CodecLadder


def _model(path, seed, **config):
    """A random model whose latents are large enough that its rate follows lambda."""
    from plic.models import MeanScaleHyperprior

    torch.manual_seed(seed)
    m = MeanScaleHyperprior(N=32, M=48, **config)
    with torch.no_grad():
        m.g_a[6].weight.mul_(20)
    zoo.save_weights(m, path)
    return Codec(zoo.load_weights(path))


@pytest.fixture(scope="module")
def ladder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ladder")
    low = _model(folder / "low.safetensors", 1, lambda_min=0.0018, lambda_max=0.0932)
    high = _model(folder / "high.safetensors", 5, levels=3, lambda_min=0.01, lambda_max=0.5)
    return CodecLadder(low, high, switch=0.03)


def test_each_lambda_is_coded_by_its_rung_and_decoded_by_the_same(ladder, sample_image):
    img = read_image(sample_image)
    for lam, rung in ((0.002, ladder.low), (0.03, ladder.low), (0.031, ladder.high), (0.5, ladder.high)):
        data = ladder.encode(img, lmbda=lam).data
        f = bitstream.parse(data)
        assert f.header.fingerprint == rung.model.fingerprint
        assert ladder.pick(f.header.lmbda) is rung
        pil, _ = ladder.decode(data)
        assert np.array_equal(np.asarray(pil), np.asarray(rung.decode(data)[0]))
    # quality keeps the low-rate model's mapping: quality 8 is its lambda_max, coded by the partner
    assert ladder.resolve_lambda(quality=8) == pytest.approx(0.0932, rel=1e-6)
    assert ladder.pick(ladder.resolve_lambda(quality=1)) is ladder.low


def test_lambdas_outside_both_ranges_are_refused(ladder, sample_image):
    img = read_image(sample_image)
    assert ladder.resolve_lambda(lmbda=0.5) == pytest.approx(0.5)  # beyond the low model, inside the partner
    for lam in (0.001, 0.6):
        with pytest.raises(PlicError, match=r"outside this model's range \[0.0018, 0.5\]"):
            ladder.encode(img, lmbda=lam)
    with pytest.raises(ValueError, match="overlap"):
        CodecLadder(ladder.low, ladder.high, switch=0.2)


def test_rate_targets_search_the_rung_that_reaches_them(ladder, sample_image):
    img = read_image(sample_image)
    at_switch = ladder.low.encode(img, lmbda=ladder.switch).bpp
    assert 0.1 < at_switch < 3  # the rate follows lambda: the targets below are real searches
    for target, rung in ((at_switch * 0.5, ladder.low), (ladder.high.encode(img, lmbda=0.2).bpp, ladder.high)):
        enc = ladder.encode_to_bpp(img, target)
        f = bitstream.parse(enc.data)
        assert f.header.fingerprint == rung.model.fingerprint
        assert enc.bpp == pytest.approx(target, rel=0.01)


def test_shipped_name_with_a_partner_loads_as_a_ladder(monkeypatch, ladder):
    from plic import ladder as ladder_mod

    # absolute paths: the shipped folder joined with them gives them back
    monkeypatch.setitem(zoo.PRETRAINED, "tiny-low", ladder.low.model.weights_path)
    monkeypatch.setitem(zoo.PRETRAINED, "tiny-high", ladder.high.model.weights_path)
    assert isinstance(ladder_mod.shipped_codec("tiny-low"), Codec)  # no partner: a plain codec
    monkeypatch.setitem(zoo.HIGH_RATE, "tiny-low", ("tiny-high", 0.03))
    pair = ladder_mod.shipped_codec("tiny-low")
    assert isinstance(pair, CodecLadder)
    assert (pair.low.label, pair.high.label, pair.switch) == ("tiny-low", "tiny-high", pytest.approx(0.03))


def test_compress_codes_high_lambdas_with_the_partner_and_decompress_finds_it(monkeypatch, ladder, sample_image,
                                                                              tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    from plic.cli import main

    monkeypatch.setitem(zoo.PRETRAINED, "tiny-low", ladder.low.model.weights_path)
    monkeypatch.setitem(zoo.PRETRAINED, "tiny-high", ladder.high.model.weights_path)
    monkeypatch.setitem(zoo.HIGH_RATE, "tiny-low", ("tiny-high", 0.03))
    runner = CliRunner()
    for lam, rung, name in ((0.01, ladder.low, "tiny-low"), (0.3, ladder.high, "tiny-high")):
        out = tmp_path / f"{lam}.plic"
        r = runner.invoke(main, ["compress", str(sample_image), "-o", str(out), "--model", "tiny-low",
                                 "--lambda", str(lam)], catch_exceptions=False)
        assert r.exit_code == 0, r.output
        assert f"({name}, lambda" in r.output
        assert bitstream.parse(out.read_bytes()).header.fingerprint == rung.model.fingerprint
        r = runner.invoke(main, ["info", str(out)], catch_exceptions=False)
        assert r.exit_code == 0 and name in r.output, r.output
        png = tmp_path / f"{lam}.png"
        r = runner.invoke(main, ["decompress", str(out), "-o", str(png), "--exact"], catch_exceptions=False)
        assert r.exit_code == 0, r.output
        assert np.array_equal(np.asarray(Image.open(png).convert("RGB")), np.asarray(rung.decode(out.read_bytes())[0]))


def test_benchmark_codec_of_a_shipped_name_is_the_ladder(monkeypatch, ladder, sample_image):
    from plic.eval import learned

    monkeypatch.setitem(zoo.PRETRAINED, "tiny-low", ladder.low.model.weights_path)
    monkeypatch.setitem(zoo.PRETRAINED, "tiny-high", ladder.high.model.weights_path)
    monkeypatch.setitem(zoo.HIGH_RATE, "tiny-low", ("tiny-high", 0.03))
    learned._load_codec.cache_clear()
    c = learned.make_codec("plic:tiny-low")
    version = c.version()
    # new weights on either rung must invalidate cached benchmark points
    assert ladder.low.model.fingerprint.hex()[:16] in version and ladder.high.model.fingerprint.hex()[:16] in version
    rgb = np.asarray(read_image(sample_image).rgb[0].permute(1, 2, 0).mul(255).round().byte())
    data = c.encode(rgb, 8.0)  # quality 8: lambda 0.0932, above the switch
    assert bitstream.parse(data).header.fingerprint == ladder.high.model.fingerprint
    assert c.decode(data).shape == rgb.shape
    learned._load_codec.cache_clear()
