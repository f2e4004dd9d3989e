"""A shipped name that codes as a ladder (``plic.zoo.LADDERS``): the rung by rate, any decoder by fingerprint."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from plic import bitstream, zoo
from plic.cli import main
from plic.encode import Rate, Refinement, encode_image
from plic.errors import OutOfReach, PlicError
from plic.image_io import read_image
from plic.ladder import CodecLadder, Rung, shipped_codec


@pytest.fixture(scope="module")
def rung_files(tmp_path_factory, save_rate_following_model):
    folder = tmp_path_factory.mktemp("rungs")
    # as the default's ladder: a low rung finetuned on the bottom of the range, reaching below the top
    # rung's, and a middle one on a part of it that starts above the top rung's bottom; same QVRF steps
    _save = save_rate_following_model
    return {"tiny-low": _save(folder / "low.safetensors", 3, lambda_min=0.001, lambda_max=0.006,
                                  lambda_ref=0.0932),
            "tiny-mid": _save(folder / "mid.safetensors", 5, lambda_min=0.003, lambda_max=0.03,
                              lambda_ref=0.0932),
            "tiny": _save(folder / "high.safetensors", 4, lambda_min=0.0018, lambda_max=0.0932)}


@pytest.fixture
def shipped_ladder(rung_files, monkeypatch):
    """``tiny`` shipped with ``tiny-low`` up to lambda 0.004 and ``tiny-mid`` up to 0.02 below it
    (besides the real shipped names)."""
    real = zoo.shipped_path
    monkeypatch.setattr(zoo, "PRETRAINED", {**zoo.PRETRAINED, **{n: p.name for n, p in rung_files.items()}})
    monkeypatch.setattr(zoo, "shipped_path", lambda name: rung_files.get(name) or real(name))
    monkeypatch.setattr(zoo, "LADDERS", {"tiny": (("tiny-low", 0.004), ("tiny-mid", 0.02))})
    monkeypatch.setattr(zoo, "_CACHE", {})
    return shipped_codec("tiny")


def test_a_shipped_name_with_rungs_below_codes_as_a_ladder(shipped_ladder, sample_image):
    ladder = shipped_ladder
    low, mid, top = ladder.rungs
    assert isinstance(ladder, CodecLadder) and ladder.label == "tiny"
    assert (low.label, mid.label, top.label) == ("tiny-low", "tiny-mid", "tiny")
    assert ladder.switches == (pytest.approx(0.004), pytest.approx(0.02))
    # --quality spans the whole ladder's range: 1 is the low rung's bottom, 8 the top rung's top
    assert ladder.lambda_range == (pytest.approx(0.001), pytest.approx(0.0932))
    assert ladder.resolve_lambda(quality=1) == pytest.approx(0.001, rel=1e-6)
    assert ladder.resolve_lambda(quality=8) == pytest.approx(0.0932, rel=1e-6)
    assert ladder.resolve_lambda() == pytest.approx(0.001 ** (4 / 7) * 0.0932 ** (3 / 7), rel=1e-6)
    assert ladder.resolve_lambda(lmbda=0.0012) == pytest.approx(0.0012)  # below the top rung's range
    for lam in (0.1, 0.0009):
        with pytest.raises(PlicError, match=r"outside this model's range \[0.001, 0.0932\]"):
            ladder.resolve_lambda(lmbda=lam)
    img = read_image(sample_image)
    for rate, rung in ((Rate(quality=1), low), (Rate(lmbda=0.004), low), (Rate(lmbda=0.0041), mid),
                       (Rate(quality=4), mid), (Rate(lmbda=0.02), mid), (Rate(lmbda=0.0201), top),
                       (Rate(quality=8), top)):
        enc = encode_image(ladder, img, rate)
        f = bitstream.parse(enc.result.data)
        assert enc.codec is rung and f.header.fingerprint == rung.model.fingerprint, rate
        assert ladder.for_file(f) is rung
    # a lambda given as a plain float picks the rung encode codes with (float32 in the header: 0.02 -> 0.0199999996)
    assert ladder.pick(0.02) is mid and ladder.pick(0.004) is low


def test_bpp_targets_cross_each_seam(shipped_ladder, sample_image):
    ladder, img = shipped_ladder, read_image(sample_image)
    low, mid, top = ladder.rungs
    at_first, at_second = (r.encode(img, lmbda=s).bpp for r, s in zip(ladder.rungs, ladder.switches))
    peak = top.encode(img, lmbda=0.0932).bpp
    assert 0.05 < at_first < at_second < peak  # the rate follows lambda: the targets below are real searches
    for target, rung in ((at_first * 0.7, low), ((at_first + at_second) / 2, mid), ((at_second + peak) / 2, top)):
        enc = encode_image(ladder, img, Rate(bpp=target))
        assert enc.codec is rung
        assert enc.result.bpp == pytest.approx(target, rel=0.01)


def test_a_target_between_one_rung_at_its_switch_and_the_next_rungs_bottom_is_met_by_the_lower(
        tmp_path, save_rate_following_model, sample_image):
    """Rungs that code one lambda at different rates leave a gap at the seam: the lower rung goes on above it."""
    from plic.codec import Codec

    low = Codec(zoo.load_weights(save_rate_following_model(tmp_path / "low.safetensors", 3, lambda_min=0.001,
                                                           lambda_max=0.03, lambda_ref=0.0932)))
    # the upper rung starts at the switch and codes more bits there than the lower one
    high = Codec(zoo.load_weights(save_rate_following_model(tmp_path / "high.safetensors", 4, scale=60,
                                                            lambda_min=0.004, lambda_max=0.0932)))
    ladder, img = CodecLadder((low, high), (0.004,)), read_image(sample_image)
    at_switch, bottom = low.encode(img, lmbda=0.004).bpp, high.encode(img, lmbda=0.004).bpp
    assert at_switch * 1.1 < bottom < low.encode(img, lmbda=0.03).bpp  # a gap the lower rung spans
    target = (at_switch + bottom) / 2
    with pytest.raises(OutOfReach, match="out of this model's reach") as upper:
        high.encode_to_bpp(img, target)
    assert upper.value.below  # under the upper rung's files: a lower rung may reach it
    searched = []
    low.encode_to_bpp = lambda *a, **k: searched.append(a[1]) or Codec.encode_to_bpp(low, *a, **k)
    enc = ladder.encode_to_bpp(img, target)
    assert searched == [target] and bitstream.parse(enc.data).header.fingerprint == low.model.fingerprint
    assert enc.bpp == pytest.approx(target, rel=0.01)
    beyond = high.encode(img, lmbda=0.0932).bpp * 2
    with pytest.raises(OutOfReach) as direct:
        high.encode_to_bpp(img, beyond)
    with pytest.raises(OutOfReach) as via_ladder:  # out of both rungs' reach: the upper rung's reach is reported
        ladder.encode_to_bpp(img, beyond)
    assert str(via_ladder.value) == str(direct.value) and not direct.value.below
    assert searched == [target]  # above the upper rung's reach: the lower rung is not searched in vain


def test_the_cli_codes_with_each_rung_and_decodes_without_being_told_which(shipped_ladder, sample_image, tmp_path,
                                                                          monkeypatch):
    runner = CliRunner()
    loaded = []
    real_load = zoo.load_model
    monkeypatch.setattr(zoo, "load_model", lambda name, *a, **k: loaded.append(name) or real_load(name, *a, **k))
    for quality, rung in (("1", "tiny-low"), ("4", "tiny-mid"), ("8", "tiny")):
        out, png = tmp_path / f"q{quality}.plic", tmp_path / f"q{quality}.png"
        loaded.clear()
        r = runner.invoke(main, ["compress", str(sample_image), "-o", str(out), "-m", "tiny", "-q", quality],
                          catch_exceptions=False)
        assert r.exit_code == 0 and f"({rung}, lambda" in r.output, r.output
        assert loaded == [rung]  # the ladder builds the rung it codes with, not every rung
        r = runner.invoke(main, ["info", str(out)], catch_exceptions=False)
        assert f"(the shipped weights: {rung})" in r.output, r.output
        loaded.clear()
        r = runner.invoke(main, ["decompress", str(out), "-o", str(png)], catch_exceptions=False)
        assert r.exit_code == 0 and png.is_file(), r.output
        assert loaded == [rung]  # the rung that wrote the file, not the whole ladder


def test_an_eval_names_every_rung_and_switch(shipped_ladder):
    """``plic eval`` keeps points only for the weights and switches that made them: all are in the version."""
    from plic.eval.learned import _load_codec, make_codec

    _load_codec.cache_clear()  # "tiny" is a monkeypatched name: no other test's codec of that name
    try:
        version = make_codec("plic:tiny").version()
    finally:
        _load_codec.cache_clear()
    low, mid, top = (r.model.fingerprint.hex()[:16] for r in shipped_ladder.rungs)
    assert version == f"plic tiny (weights {low} up to lambda 0.004, {mid} up to lambda 0.02, {top} above)"


def test_bench_names_the_rung_it_timed(shipped_ladder, sample_image):
    for quality, rung in zip(("1", "4", "8"), shipped_ladder.rungs):
        r = CliRunner().invoke(main, ["bench", str(sample_image), "-m", "tiny", "-q", quality, "--repeat", "1",
                                      "--warmup", "0", "--devices", "cpu"], catch_exceptions=False)
        assert r.exit_code == 0 and f"({rung.label} {rung.model.fingerprint.hex()[:16]})" in r.output, r.output


def test_a_refinement_optimises_for_the_rung_that_codes(shipped_ladder, sample_image):
    ladder, img = shipped_ladder, read_image(sample_image)
    for rate, rung in ((Rate(quality=1), ladder.rungs[0]), (Rate(quality=8), ladder.rungs[-1])):
        enc = encode_image(ladder, img, rate, Refinement("sga+", steps=2))
        assert enc.codec is rung and enc.before is not None
        for coded in (enc.before, enc.result):
            assert bitstream.parse(coded.data).header.fingerprint == rung.model.fingerprint


def test_a_ladder_needs_rungs_that_fit(rung_files):
    from plic.codec import Codec

    low, mid, top = (Codec(zoo.load_weights(rung_files[n])) for n in ("tiny-low", "tiny-mid", "tiny"))
    assert CodecLadder((low, mid, top), (0.004, 0.02)).pick(0.01) is mid  # a middle rung may start higher
    with pytest.raises(ValueError, match="overlap"):
        CodecLadder((low, top), (0.01,))  # above the low rung's top
    with pytest.raises(ValueError, match="overlap"):
        CodecLadder((low, mid, top), (0.002, 0.02))  # below the middle rung's bottom
    with pytest.raises(ValueError, match="at or below"):
        CodecLadder((top, low), (0.005,))  # the rungs the wrong way round
    with pytest.raises(ValueError, match="rise strictly"):
        CodecLadder((low, mid, top), (0.02, 0.004))
    with pytest.raises(ValueError, match="one switch fewer"):
        CodecLadder((low, mid, top), (0.004,))
    # a rung known by its header is built when it codes, and must be what the header said
    told = Rung(low.name, top.model.fingerprint, 0.001, 0.006, "cpu", lambda: low)
    ladder = CodecLadder((told, mid, top), (0.004, 0.02))
    assert ladder.pick(0.01) is mid
    with pytest.raises(PlicError, match="not the ones their metadata describes"):
        ladder.pick(0.002)
