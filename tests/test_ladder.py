"""A shipped name that codes as a ladder (``plic.zoo.LOW_RATE``): the rung by rate, any decoder by fingerprint."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from plic import bitstream, zoo
from plic.cli import main
from plic.encode import Rate, Refinement, encode_image
from plic.errors import PlicError
from plic.image_io import read_image
from plic.ladder import CodecLadder, shipped_codec


@pytest.fixture(scope="module")
def rung_files(tmp_path_factory, save_rate_following_model):
    folder = tmp_path_factory.mktemp("rungs")
    # as the perceptual ladder: the low rung finetuned on the bottom of the range, reaching below the high
    # rung's, with the same QVRF steps
    _save = save_rate_following_model
    return {"tiny-low": _save(folder / "low.safetensors", 3, lambda_min=0.001, lambda_max=0.006,
                                  lambda_ref=0.0932),
            "tiny": _save(folder / "high.safetensors", 4, lambda_min=0.0018, lambda_max=0.0932)}


@pytest.fixture
def shipped_ladder(rung_files, monkeypatch):
    """``tiny`` shipped with its low-rate rung ``tiny-low`` up to lambda 0.006 (besides the real shipped names)."""
    real = zoo.shipped_path
    monkeypatch.setattr(zoo, "PRETRAINED", {**zoo.PRETRAINED, **{n: p.name for n, p in rung_files.items()}})
    monkeypatch.setattr(zoo, "shipped_path", lambda name: rung_files.get(name) or real(name))
    monkeypatch.setattr(zoo, "LOW_RATE", {"tiny": ("tiny-low", 0.006)})
    monkeypatch.setattr(zoo, "_CACHE", {})
    return shipped_codec("tiny")


def test_a_shipped_name_with_a_low_rate_rung_codes_as_a_ladder(shipped_ladder, sample_image):
    ladder = shipped_ladder
    assert isinstance(ladder, CodecLadder) and ladder.label == "tiny"
    assert (ladder.low.label, ladder.high.label, ladder.switch) == ("tiny-low", "tiny", pytest.approx(0.006))
    # --quality spans both rungs' range: 1 is the low rung's bottom, 8 the high rung's top
    assert ladder.lambda_range == (pytest.approx(0.001), pytest.approx(0.0932))
    assert ladder.resolve_lambda(quality=1) == pytest.approx(0.001, rel=1e-6)
    assert ladder.resolve_lambda(quality=8) == pytest.approx(0.0932, rel=1e-6)
    assert ladder.resolve_lambda() == pytest.approx(0.001 ** (4 / 7) * 0.0932 ** (3 / 7), rel=1e-6)
    assert ladder.resolve_lambda(lmbda=0.0012) == pytest.approx(0.0012)  # below the high rung's range
    for lam in (0.1, 0.0009):
        with pytest.raises(PlicError, match=r"outside this model's range \[0.001, 0.0932\]"):
            ladder.resolve_lambda(lmbda=lam)
    img = read_image(sample_image)
    for rate, rung in ((Rate(quality=1), ladder.low), (Rate(lmbda=0.006), ladder.low),
                       (Rate(lmbda=0.0061), ladder.high), (Rate(quality=8), ladder.high)):
        enc = encode_image(ladder, img, rate)
        f = bitstream.parse(enc.result.data)
        assert enc.codec is rung and f.header.fingerprint == rung.model.fingerprint
        assert ladder.for_file(f) is rung


def test_bpp_targets_cross_the_seam(shipped_ladder, sample_image):
    ladder, img = shipped_ladder, read_image(sample_image)
    at_switch = ladder.low.encode(img, lmbda=ladder.switch).bpp
    top = ladder.high.encode(img, lmbda=0.0932).bpp
    assert 0.05 < at_switch < top  # the rate follows lambda: the targets below are real searches
    for target, rung in ((at_switch * 0.7, ladder.low), ((at_switch + top) / 2, ladder.high)):
        enc = encode_image(ladder, img, Rate(bpp=target))
        assert enc.codec is rung
        assert enc.result.bpp == pytest.approx(target, rel=0.01)


def test_the_cli_codes_with_either_rung_and_decodes_without_being_told_which(shipped_ladder, sample_image, tmp_path,
                                                                           monkeypatch):
    runner = CliRunner()
    loaded = []
    real_load = zoo.load_model
    monkeypatch.setattr(zoo, "load_model", lambda name, *a, **k: loaded.append(name) or real_load(name, *a, **k))
    for quality, rung in (("1", "tiny-low"), ("8", "tiny")):
        out, png = tmp_path / f"q{quality}.plic", tmp_path / f"q{quality}.png"
        r = runner.invoke(main, ["compress", str(sample_image), "-o", str(out), "-m", "tiny", "-q", quality],
                          catch_exceptions=False)
        assert r.exit_code == 0 and f"({rung}, lambda" in r.output, r.output
        r = runner.invoke(main, ["info", str(out)], catch_exceptions=False)
        assert f"(the shipped weights: {rung})" in r.output, r.output
        loaded.clear()
        r = runner.invoke(main, ["decompress", str(out), "-o", str(png)], catch_exceptions=False)
        assert r.exit_code == 0 and png.is_file(), r.output
        assert loaded == [rung]  # the rung that wrote the file, not the whole ladder


def test_bench_names_the_rung_it_timed(shipped_ladder, sample_image):
    for quality, rung in (("1", shipped_ladder.low), ("8", shipped_ladder.high)):
        r = CliRunner().invoke(main, ["bench", str(sample_image), "-m", "tiny", "-q", quality, "--repeat", "1",
                                      "--warmup", "0", "--devices", "cpu"], catch_exceptions=False)
        assert r.exit_code == 0 and f"({rung.label} {rung.model.fingerprint.hex()[:16]})" in r.output, r.output


def test_a_refinement_optimises_for_the_rung_that_codes(shipped_ladder, sample_image):
    ladder, img = shipped_ladder, read_image(sample_image)
    for rate, rung in ((Rate(quality=1), ladder.low), (Rate(quality=8), ladder.high)):
        enc = encode_image(ladder, img, rate, Refinement("sga+", steps=2))
        assert enc.codec is rung and enc.before is not None
        for coded in (enc.before, enc.result):
            assert bitstream.parse(coded.data).header.fingerprint == rung.model.fingerprint


def test_a_ladder_needs_rungs_that_fit(rung_files):
    from plic.codec import Codec

    low, high = (Codec(zoo.load_weights(rung_files[n])) for n in ("tiny-low", "tiny"))
    with pytest.raises(ValueError, match="overlap"):
        CodecLadder(low, high, switch=0.01)  # above the low rung's top
    with pytest.raises(ValueError, match="at or below"):
        CodecLadder(high, low, switch=0.005)  # the rungs the wrong way round
