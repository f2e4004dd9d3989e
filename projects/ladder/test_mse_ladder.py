"""A low-rate model and its high-rate partner coding as one codec (projects/ladder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plic import bitstream, zoo
from plic.codec import Codec
from plic.errors import PlicError
from plic.image_io import read_image
from plic.ladder import CodecLadder


@pytest.fixture(scope="module")
def sample_image() -> Path:
    return Path(__file__).resolve().parents[2] / "assets" / "chelsea.png"


@pytest.fixture(scope="module")
def ladder(tmp_path_factory, save_rate_following_model):
    folder = tmp_path_factory.mktemp("ladder")

    def _model(path, seed, **config):
        return Codec(zoo.load_weights(save_rate_following_model(path, seed, **config)))

    low = _model(folder / "low.safetensors", 1, lambda_min=0.0018, lambda_max=0.0932)
    high = _model(folder / "high.safetensors", 5, levels=3, lambda_min=0.01, lambda_max=0.5)
    return CodecLadder((low, high), (0.03,))


def test_each_lambda_is_coded_by_its_rung_and_decoded_by_the_same(ladder, sample_image):
    img = read_image(sample_image)
    low, high = ladder.rungs
    for lam, rung in ((0.002, low), (0.03, low), (0.031, high), (0.5, high)):
        data = ladder.encode(img, lmbda=lam).data
        f = bitstream.parse(data)
        assert f.header.fingerprint == rung.model.fingerprint
        assert ladder.pick(f.header.lmbda) is rung
        pil, _ = ladder.decode(data)
        assert np.array_equal(np.asarray(pil), np.asarray(rung.decode(data)[0]))
    # quality spans the ladder's whole range: 8 is the partner's lambda_max, 1 the low model's lambda_min
    assert ladder.resolve_lambda(quality=8) == pytest.approx(0.5, rel=1e-6)
    assert ladder.resolve_lambda(quality=1) == pytest.approx(0.0018, rel=1e-6)
    assert ladder.pick(ladder.resolve_lambda(quality=1)) is low


def test_lambdas_outside_both_ranges_are_refused(ladder, sample_image):
    img = read_image(sample_image)
    assert ladder.resolve_lambda(lmbda=0.5) == pytest.approx(0.5)  # beyond the low model, inside the partner
    for lam in (0.001, 0.6):
        with pytest.raises(PlicError, match=r"outside this model's range \[0.0018, 0.5\]"):
            ladder.encode(img, lmbda=lam)
    with pytest.raises(ValueError, match="overlap"):
        CodecLadder(ladder.rungs, (0.2,))


def test_rate_targets_search_the_rung_that_reaches_them(ladder, sample_image):
    img = read_image(sample_image)
    (low, high), (switch,) = ladder.rungs, ladder.switches
    at_switch = low.encode(img, lmbda=switch).bpp
    assert 0.1 < at_switch < 3  # the rate follows lambda: the targets below are real searches
    for target, rung in ((at_switch * 0.5, low), (high.encode(img, lmbda=0.2).bpp, high)):
        enc = ladder.encode_to_bpp(img, target)
        f = bitstream.parse(enc.data)
        assert f.header.fingerprint == rung.model.fingerprint
        assert enc.bpp == pytest.approx(target, rel=0.01)


def test_a_ladders_curve_takes_each_rung_between_its_switches(tmp_path):
    """ladder_curve.py composes the ladder from its rungs' swept points: the low rung's at lambdas up to the
    switch, the high rung's above (a middle rung's between its two); a rung better at equal rate shows as a
    negative BD-rate."""
    import json
    import subprocess
    import sys

    from plic.models import MeanScaleHyperprior

    tiny_model_path, mid_path = tmp_path / "low.safetensors", tmp_path / "mid.safetensors"
    # the low rung starts at the top rung's bottom and ends at the middle one's top, as a ladder's rungs may
    zoo.save_weights(MeanScaleHyperprior(N=32, M=48, lambda_min=0.0001, lambda_max=0.05), tiny_model_path)
    zoo.save_weights(MeanScaleHyperprior(N=32, M=48, lambda_min=0.005, lambda_max=0.05), mid_path)
    low_model, mid_model = zoo.load_model(str(tiny_model_path)), zoo.load_model(str(mid_path))
    high_model = zoo.load_model("hyperprior")
    high = f"plic:{zoo.shipped_path('hyperprior')}"  # the default model alone: plic:hyperprior is a ladder
    switch = low_model.quality_to_lambda(5)
    for codec, model, psnr_bonus in ((f"plic:{tiny_model_path}", low_model, 0.5), (high, high_model, 0.0),
                                     (f"plic:{mid_path}", mid_model, 0.3),
                                     ("plic:hyperprior", high_model, 0.0)):  # as if a ladder's sweep
        for q in range(1, 9):
            lam = model.quality_to_lambda(q)
            bpp = 0.02 * (lam / 1e-4) ** 0.4  # one R-D curve in lambda for both, the low rung 0.5 dB above it
            psnr = 22 + 3 * np.log2(bpp / 0.02) + psnr_bonus
            d = tmp_path / "eval" / "points" / codec.replace(":", "-").replace("/", "_") / f"q{q}"
            d.mkdir(parents=True)
            point = {"image": "a.png", "codec": codec, "setting": f"q{q}", "knob_value": q, "target_bpp": None,
                     "bpp": bpp, "metrics": {"psnr": psnr}, "encode_s": 0.1, "decode_s": 0.1}
            (d / "a.json").write_text(json.dumps(point))
    out = tmp_path / "report"

    def run(at: float, *extra: str, high: str = high):
        return subprocess.run([sys.executable, str(Path(__file__).with_name("ladder_curve.py")), str(tmp_path / "eval"),
                               "--low", f"plic:{tiny_model_path}", "--high", high, "--switch", str(at),
                               "--out", str(out), *extra], capture_output=True, text=True)

    r = run(0.2)  # above the low rung's range: no such ladder
    assert r.returncode != 0 and r.stderr.count("\n") == 1 and "no such ladder: switch 0.2 must lie" in r.stderr
    r = run(switch, "--switch", str(switch / 2))  # two switches for two rungs
    assert r.returncode != 0 and r.stderr.count("\n") == 1 and "one switch fewer (got 2 rungs, 2 switches)" in r.stderr
    assert not out.with_suffix(".json").exists()
    r = run(switch)
    assert r.returncode == 0, r.stderr
    report = json.loads(out.with_suffix(".json").read_text())
    names = [p["point"] for p in report["points"]]
    assert all(p["lambda"] <= switch * (1 + 1e-6) for p in report["points"] if p["point"].startswith("low"))
    assert all(p["lambda"] > switch for p in report["points"] if p["point"].startswith("high"))
    assert sum(n.startswith("low") for n in names) == 5 and any(n.startswith("high") for n in names)
    assert report["against"] == [high] and report["bd_rate"][high]["psnr"] < 0
    lead = [p["better_at_equal_rate"][high].get("psnr") for p in report["points"] if p["point"].startswith("low")]
    assert all(v is None or 0.3 < v < 0.7 for v in lead) and any(v is not None for v in lead)  # the 0.5 dB put in
    # against several codecs: one BD-rate row each (the ladder against the low rung alone: equal where it is that rung)
    r = run(switch, "--against", high, "--against", f"plic:{tiny_model_path}")
    assert r.returncode == 0, r.stderr
    both = json.loads(out.with_suffix(".json").read_text())
    assert both["bd_rate"][high] == report["bd_rate"][high]
    on_low = [p["better_at_equal_rate"][f"plic:{tiny_model_path}"] for p in both["points"] if p["point"].startswith("low")]
    assert any(on_low) and all(abs(g["psnr"]) < 1e-6 for g in on_low if g)
    table = out.with_suffix(".md").read_text()
    assert "| the top rung alone |" in table and f"| `plic:{tiny_model_path}` |" in table
    r = run(switch, "--against", "jpeg")
    assert r.returncode != 0 and r.stderr.count("\n") == 1 and "not in" in r.stderr
    # a shipped name with rungs below it codes as a ladder: not one rung
    r = run(switch, high="plic:hyperprior")
    assert r.returncode != 0 and r.stderr.count("\n") == 1 and "codes as a ladder" in r.stderr
    # three rungs: the middle one between the two switches, 0.3 dB above the top rung's curve there
    low_switch = low_model.quality_to_lambda(6)
    r = subprocess.run([sys.executable, str(Path(__file__).with_name("ladder_curve.py")), str(tmp_path / "eval"),
                        "--low", f"plic:{tiny_model_path}", "--mid", f"plic:{mid_path}", "--high", high,
                        "--switch", str(low_switch), "--switch", "0.04", "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    three = json.loads(out.with_suffix(".json").read_text())
    spans = {"low": (0, low_switch), "mid": (low_switch, 0.04), "high": (0.04, 1)}
    for label, (lo, hi) in spans.items():
        mine = [p for p in three["points"] if p["point"].split()[0] == label]
        assert len(mine) == {"low": 6, "mid": 5, "high": 3}[label]
        assert all(lo * (1 + 1e-6) < p["lambda"] <= hi * (1 + 1e-6) for p in mine)
    lead = [p["better_at_equal_rate"][high].get("psnr") for p in three["points"] if p["point"].startswith("mid")]
    assert all(v is None or 0.2 < v < 0.4 for v in lead) and any(v is not None for v in lead)
    assert three["rungs"] == [f"plic:{tiny_model_path}", f"plic:{mid_path}", high]
    assert "up to lambda 0.04, `" + high + "` above" in out.with_suffix(".md").read_text()
