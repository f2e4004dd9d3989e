"""Golden values for the shipped models: bit-exact files and pixels everywhere.

If the shipped weights change on purpose, run ``python scripts/update_golden.py``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from plic import bitstream, zoo
from plic.codec import Codec, psnr
from plic.image_io import quantize_rgb, read_image

GOLDEN = json.loads((Path(__file__).parent / "golden.json").read_text())


CASES = [(name, q) for name, g in sorted(GOLDEN["models"].items()) for q in sorted(g["points"])]


@pytest.fixture(scope="module")
def shipped():
    """The default codec as plic compress codes with it: a ladder (its lower-rate rungs up to their switches)."""
    from plic.ladder import shipped_codec

    return shipped_codec(zoo.DEFAULT_MODEL)


def test_every_shipped_model_has_golden_values():
    assert sorted(GOLDEN["models"]) == sorted(zoo.PRETRAINED) and GOLDEN["default"] == zoo.DEFAULT_MODEL


@pytest.mark.parametrize("name", sorted(GOLDEN["models"]))
def test_shipped_weights_are_the_golden_ones(name):
    assert zoo.load_model(name).fingerprint.hex() == GOLDEN["models"][name]["fingerprint"]


@pytest.mark.parametrize("name,quality", CASES)
def test_bitstream_and_pixels_match_golden(sample_image, name, quality):
    codec = Codec(zoo.load_model(name))
    g = GOLDEN["models"][name]["points"][quality]
    img = read_image(sample_image)
    data = codec.encode(img, quality=float(quality)).data
    assert hashlib.sha256(data).hexdigest() == g["bitstream_sha256"]
    pil, _ = codec.decode(data)
    assert hashlib.sha256(np.asarray(pil).tobytes()).hexdigest() == g["pixels_sha256"]


@pytest.mark.parametrize("name,quality", CASES)
def test_default_float32_decode_is_within_one_level_of_the_exact_pixels(sample_image, name, quality):
    """The CLI's default decode (float32 transforms) against the golden float64 one, on the golden files."""
    model = zoo.load_model(name)
    exact, fast = Codec(model), Codec(model, exact=False)
    data = exact.encode(read_image(sample_image), quality=float(quality)).data
    a = np.asarray(exact.decode(data)[0]).astype(int)
    assert hashlib.sha256(np.asarray(exact.decode(data)[0]).tobytes()).hexdigest() == \
        GOLDEN["models"][name]["points"][quality]["pixels_sha256"]
    b = np.asarray(fast.decode(data)[0]).astype(int)
    diff = np.abs(a - b)
    differ = int((diff > 0).sum())
    print(f"{name} q{quality}: {differ} of {diff.size} values differ by one level (float32 vs float64)")
    assert diff.max() <= 1 and differ <= 0.01 * diff.size


def test_shipped_model_rate_and_quality_rise_together(shipped, sample_image):
    img = read_image(sample_image)
    points, writers = [], []
    for q in range(1, 9):  # across every switch of the ladder
        enc = shipped.encode(img, quality=q)
        f = bitstream.parse(enc.data)
        writers.append([r.model.fingerprint for r in shipped.rungs].index(f.header.fingerprint))
        rec = shipped.decode_file(f)
        points.append((enc.bpp, psnr(quantize_rgb(rec), img.rgb)))
    # each rung writes the qualities on its side of its switches, lowest rung first, and every rung some
    assert writers == sorted(writers) and set(writers) == set(range(len(shipped.rungs))), writers
    bpps, psnrs = zip(*points, strict=True)
    # strictly rising: every quality step buys bits and dB, across the seams too
    assert all(a < b for a, b in zip(bpps, bpps[1:])) and all(a < b for a, b in zip(psnrs, psnrs[1:]))
    assert psnrs[0] > 21 and psnrs[-1] > 34  # a trained codec, not noise (0.03 .. 1.4 bpp here)


def test_cli_defaults_to_the_shipped_model(sample_image, tmp_path):
    from click.testing import CliRunner

    from plic.cli import main

    # the default is a ladder too: its low-rate rung (quality 3), its middle one (5), its own weights at the top
    for q, rung in (("3", "hyperprior-low"), ("5", "hyperprior-mid"), ("8", "hyperprior")):
        out = tmp_path / f"d{q}.plic"
        r = CliRunner().invoke(main, ["compress", str(sample_image), "-o", str(out), "--quality", q])
        assert r.exit_code == 0, r.output
        r = CliRunner().invoke(main, ["info", str(out)])
        assert f"(the shipped weights: {rung})" in r.output, r.output
        r = CliRunner().invoke(main, ["decompress", str(out), "-o", str(out.with_suffix(".png")),
                                      "--reference", str(sample_image)])
        assert r.exit_code == 0 and "dB PSNR" in r.output


def test_perceptual_variant_round_trip_needs_no_model_path(sample_image, tmp_path):
    from click.testing import CliRunner

    from plic.cli import main

    runner = CliRunner()
    mse, per, above = tmp_path / "m.plic", tmp_path / "p.plic", tmp_path / "a.plic"
    # --perceptual is a ladder: its low-rate rung up to the switch lambda, the name's own weights above
    for out, extra in ((mse, ["--lambda", "0.003"]), (per, ["--lambda", "0.003", "--perceptual"]),
                       (above, ["--lambda", "0.01", "--perceptual"])):
        r = runner.invoke(main, ["compress", str(sample_image), "-o", str(out), *extra])
        assert r.exit_code == 0, r.output
    for out, rung in ((per, "hyperprior-perceptual-low"), (above, "hyperprior-perceptual")):
        r = runner.invoke(main, ["info", str(out)])
        assert f"(the shipped weights: {rung})" in r.output and "post-filter" not in r.output, r.output
    for f in (mse, per, above):
        r = runner.invoke(main, ["decompress", str(f), "-o", str(f.with_suffix(".png"))])
        assert r.exit_code == 0, r.output
    # the whole codec was finetuned (PO-ELIC): other bits, held near the MSE model's rate at the same lambda
    a_file, b_file = bitstream.parse(mse.read_bytes()), bitstream.parse(per.read_bytes())
    assert a_file.payloads != b_file.payloads
    assert 0.7 < per.stat().st_size / mse.stat().st_size < 1.3
    from PIL import Image

    a = np.asarray(Image.open(mse.with_suffix(".png")), dtype=np.int16)
    b = np.asarray(Image.open(per.with_suffix(".png")), dtype=np.int16)
    assert a.shape == b.shape and np.abs(a - b).mean() > 0.5
