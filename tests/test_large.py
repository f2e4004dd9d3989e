"""A 24-megapixel photo within 6 GB of RAM (slow: run with ``-m slow``)."""

from __future__ import annotations

import resource
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

SCRIPT = r"""
import sys, resource, time
from plic import zoo, bitstream
from plic.codec import Codec, psnr
from plic.image_io import read_image, quantize_rgb
model = zoo.load_weights(sys.argv[2]) if len(sys.argv) > 2 else zoo.load_model("hyperprior")
codec = Codec(model)
img = read_image(sys.argv[1])
t = time.time(); enc = codec.encode(img, quality=4); te = time.time() - t
t = time.time(); rec = codec.decode_file(bitstream.parse(enc.data)); td = time.time() - t
print(f"{img.width}x{img.height}: {enc.bpp:.4f} bpp, {psnr(quantize_rgb(rec), img.rgb):.2f} dB, "
      f"encode {te:.1f} s, decode {td:.1f} s, peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
"""


def make_photo(path, width=6000, height=4000):
    # smooth structure plus fine noise: something a codec has to work for
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (height // 50, width // 50, 3), dtype=np.uint8)
    im = Image.fromarray(small).resize((width, height), Image.BICUBIC)
    arr = np.asarray(im).astype(np.int16) + rng.integers(-6, 7, (height, width, 3), dtype=np.int16)
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path)


@pytest.mark.slow
def test_24_megapixels_within_6_gb(tmp_path):
    photo = tmp_path / "big.png"
    make_photo(photo)
    p = subprocess.run([sys.executable, "-c", SCRIPT, str(photo)], capture_output=True, text=True, timeout=3000)
    assert p.returncode == 0, p.stderr[-2000:]
    print(p.stdout)
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    assert peak_gib < 6.0, p.stdout
