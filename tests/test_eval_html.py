"""``plic eval --html``: the comparison page holds every codec's real decoded file and works in a browser."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from plic.cli import main


@pytest.fixture(scope="module")
def page(tmp_path_factory, sample_image):
    out = tmp_path_factory.mktemp("html") / "res"
    r = CliRunner().invoke(main, ["eval", "--data", str(sample_image), "--codecs", "jpeg,webp", "--metrics",
                                  "psnr,lpips-alex", "--targets", "0.3", "--no-sweep", "--out", str(out), "--html",
                                  "--quiet"])
    assert r.exit_code == 0, r.output
    assert "1 comparison page(s)" in r.output
    return out, out / "html" / "chelsea_bpp0.3.html"


def _embedded(text):
    sources = re.search(r"const SRC = (\[.*?\]);", text).group(1)
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(s.split(",", 1)[1])))) for s in eval(sources)]


def test_page_embeds_the_decoded_files_and_their_numbers(page, sample_image):
    import json

    out, path = page
    text = path.read_text()
    assert "http" not in text.replace("http-equiv", "")  # self-contained: nothing to fetch
    pictures = _embedded(text)
    original = np.asarray(Image.open(sample_image).convert("RGB"))
    assert len(pictures) == 3 and np.array_equal(pictures[0], original)
    for i, codec in enumerate(("jpeg", "webp"), start=1):
        point = json.loads((out / "points" / codec / "bpp0.3" / "chelsea.json").read_text())
        from plic.eval.codecs import classical_codec

        ext = {"jpeg": "jpg", "webp": "webp"}[codec]
        decoded = classical_codec(codec).decode((out / "files" / codec / "bpp0.3" / f"chelsea.{ext}").read_bytes())
        assert np.array_equal(pictures[i], decoded)  # the very file the numbers were measured on
        assert f"{point['bpp']:.4f}" in text and f"{point['metrics']['psnr']:.2f}" in text


def test_html_needs_target_rates(tmp_path, sample_image):
    r = CliRunner().invoke(main, ["eval", "--data", str(sample_image), "--codecs", "jpeg", "--out",
                                  str(tmp_path / "r"), "--html"])
    assert r.exit_code == 1 and "give --targets" in r.output
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless Chromium not installed (scripts/setup.sh)")
def test_page_runs_in_headless_chromium(page, tmp_path):
    _, path = page
    args = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run(args + ["--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120).stdout
    # the script ran: the viewer's two layers and every thumbnail got their pictures
    assert re.search(r'id="imgA"[^>]*src="data:image/png', dom) or re.search(r'src="data:image/png[^"]*"[^>]*id="imgA"', dom)
    assert dom.count('src="data:image/png') >= 2 + 3
    shot = tmp_path / "shot.png"
    subprocess.run(args + ["--window-size=1000,900", f"--screenshot={shot}", path.as_uri()], capture_output=True,
                   timeout=120)
    im = np.asarray(Image.open(shot).convert("RGB")).astype(float)
    viewer = im[150:400, 20:460]  # where the full-resolution viewer is drawn
    assert viewer.std() > 20  # a photograph, not an empty frame
