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
    # a run started with --init continues another run: record the whole chain, first stage first
    stages, chain = [], state
    while True:
        c = chain["config"]
        stages.insert(0, {"steps": chain["step"], "lr": c["lr"], "lr_milestones": c["lr_milestones"],
                          "init": c.get("init"), "batch_size": c["batch_size"], "crop": c["crop"],
                          "lambda_range": [c["lambda_min"], c["lambda_max"]], "recipe": c.get("recipe", "rd"),
                          "recipe_args": c.get("recipe_args", {})})
        parent = Path(c["init"]).parent / "state.json" if c.get("init") else None
        if parent is None or not parent.is_file():
            if c.get("init") and Path(c["init"]).is_file():
                # a weight file, not a run: its own metadata holds its stages
                earlier = json.loads(zoo.read_metadata(c["init"]).get("plic_training", "{}"))
                stages[:0] = earlier.get("stages", [])
            break
        chain = json.loads(parent.read_text())
    record = {
        "steps": sum(st["steps"] for st in stages), "stages": stages,
        "batch_size": cfg["batch_size"], "crop": cfg["crop"],
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
