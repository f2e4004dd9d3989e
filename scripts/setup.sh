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
# plic itself (editable) with compressai, numpy<2, Pillow, safetensors, click, tqdm, pytest
$PY -m pip install --quiet -e ".[test]"
$PY -c "import plic.cli, compressai; print('plic', __import__('plic').__version__, 'with compressai', compressai.__version__, 'ready')"
