"""Regenerate tests/golden.json after the shipped weights change.

    python scripts/update_golden.py

Records, for every shipped model and assets/chelsea.png, the SHA-256 of the
bitstream and of the decoded pixels at a few qualities, and the byte count. The
golden test then pins determinism: the same file must come out of the encoder
and the same pixels out of the decoder on every machine that runs the tests.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from plic import zoo
from plic.codec import Codec
from plic.image_io import read_image

ROOT = Path(__file__).resolve().parents[1]
QUALITIES = (1, 3, 8)


def measure_model(name: str) -> dict:
    model = zoo.load_model(name)
    codec = Codec(model)
    img = read_image(ROOT / "assets" / "chelsea.png")
    out = {"fingerprint": model.fingerprint.hex(), "points": {}}
    for q in QUALITIES:
        data = codec.encode(img, quality=q).data
        pil, _ = codec.decode(data)
        out["points"][str(q)] = {
            "bitstream_sha256": hashlib.sha256(data).hexdigest(),
            "pixels_sha256": hashlib.sha256(np.asarray(pil).tobytes()).hexdigest(),
            "bytes": len(data),
        }
    return out


def measure() -> dict:
    return {"default": zoo.DEFAULT_MODEL, "models": {name: measure_model(name) for name in sorted(zoo.PRETRAINED)}}


if __name__ == "__main__":
    path = ROOT / "tests" / "golden.json"
    path.write_text(json.dumps(measure(), indent=1) + "\n")
    print(f"wrote {path}")
