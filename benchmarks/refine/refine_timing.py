"""Time per optimisation step of SGA+ and SNIC on one Kodak image (no other jobs running).

    python benchmarks/refine/refine_timing.py --data ../shared/datasets/kodak --out benchmarks/refine/refine_timing

Seconds per step as the optimisation measures them (the mean over ``--steps``
steps), for the latent (SGA+) and image (SNIC) spaces, on the CPU or, with
``--device cuda``, on a GPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from plic import zoo
from plic.codec import Codec
from plic.image_io import read_image
from plic.refine import Objective, Settings
from plic.refine.optimize import optimise


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/datasets/kodak")
    ap.add_argument("--image", default="kodim01.png")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--lmbda", type=float, default=0.0067)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default="benchmarks/refine/refine_timing")
    args = ap.parse_args()

    path = Path(args.data) / args.image
    if not path.is_file():
        sys.exit(f"{path}: no such image")
    img = read_image(path)
    codec = Codec(zoo.load_model("hyperprior", args.device), device=args.device)
    rows = []
    for space, plan in (("latent", "sga+"), ("image", "snic")):
        t0 = time.perf_counter()
        res = optimise(codec, img, args.lmbda, Objective(args.lmbda),
                       Settings(steps=args.steps, rounding="ssl" if space == "latent" else "noise"), space=space)
        rows.append({"plan": plan, "space": space, "steps": args.steps,
                     "seconds_per_step": res.seconds_per_step, "wall_seconds": time.perf_counter() - t0,
                     "seconds_per_100_steps": 100 * res.seconds_per_step})
        print(rows[-1], flush=True)
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else \
        f"{platform.machine()} CPU, {torch.get_num_threads()} threads"
    result = {"command": "python benchmarks/refine/refine_timing.py " + " ".join(sys.argv[1:]), "image": args.image,
              "size": [img.width, img.height], "device": device, "torch": torch.__version__, "rows": rows}
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    lines = [f"# Encode-time optimisation: time per step ({args.image}, {img.width}x{img.height})", "",
             f"Command: `{result['command']}`; {device}, torch {torch.__version__}; nothing else running.", "",
             "| plan | s per step | s per 100 steps |", "|---|---|---|"]
    lines += [f"| {r['plan']} ({r['space']}) | {r['seconds_per_step']:.3f} | {r['seconds_per_100_steps']:.1f} |"
              for r in rows]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
