"""Turn a training run into the shipped default weights (float16 safetensors).

    python scripts/ship_weights.py runs/hyperprior-vr plic/weights/hyperprior-mse-vr.safetensors

Parameters are rounded to float16 and the CDF tables recomputed from the
rounded values (plic.zoo.save_weights), so the shipped file is self-consistent.
The training record (steps, data, hardware) goes into the file's metadata.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import torch

from plic import zoo


def main(run: str, out: str) -> None:
    run_dir = Path(run)
    state = json.loads((run_dir / "state.json").read_text())
    model = zoo.load_weights(run_dir / "checkpoint.safetensors")
    cfg = state["config"]
    record = {
        "steps": state["step"], "batch_size": cfg["batch_size"], "crop": cfg["crop"],
        "lambda_range": [cfg["lambda_min"], cfg["lambda_max"]], "lr": cfg["lr"],
        "lr_milestones": cfg["lr_milestones"], "data": cfg["data"], "metric": cfg["metric"],
        "hardware": f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
    }
    fp = zoo.save_weights(model, out, half=True, metadata={"plic_training": json.dumps(record)})
    size = Path(out).stat().st_size
    print(f"wrote {out}: {size / 2**20:.2f} MiB, fingerprint {fp.hex()}")
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
