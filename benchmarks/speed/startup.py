"""Whole-process times of the everyday commands, as a user at a shell sees them.

    python benchmarks/speed/startup.py --repeat 7 --out benchmarks/speed

Each command runs ``--repeat`` times as a new process (the installed ``plic``
entry point, nothing cached in memory between runs but the OS's file cache);
the median and the fastest wall time are reported against issue 18's targets:
``--help`` and ``info`` under 0.3 s, ``compress``/``decompress`` of the sample
image under 2.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "assets" / "chelsea.png"


def timed(argv, repeat: int):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        p = subprocess.run(argv, capture_output=True)
        times.append(time.perf_counter() - t0)
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(map(str, argv))} failed: {p.stderr.decode().strip()}")
    return {"median_s": statistics.median(times), "min_s": min(times), "runs": len(times)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "speed")
    args = ap.parse_args()
    plic = shutil.which("plic")
    if plic is None:
        raise SystemExit("the plic entry point is not on PATH (bash scripts/setup.sh)")
    work = Path(tempfile.mkdtemp())
    f, png = work / "c.plic", work / "c.png"
    subprocess.run([plic, "compress", str(SAMPLE), "-o", str(f), "-q", "3"], check=True, capture_output=True)
    commands = {
        "plic --help": ([plic, "--help"], 0.3),
        "plic compress --help": ([plic, "compress", "--help"], 0.3),
        "plic info chelsea.plic": ([plic, "info", str(f)], 0.3),
        "plic compress chelsea.png -q 3": ([plic, "compress", str(SAMPLE), "-o", str(f), "-q", "3", "-f"], 2.5),
        "plic decompress chelsea.plic": ([plic, "decompress", str(f), "-o", str(png), "-f"], 2.5),
        "python -c pass (the interpreter alone)": ([shutil.which("python3") or "python3", "-c", "pass"], None),
    }
    rows = []
    for name, (argv, target) in commands.items():
        r = timed(argv, args.repeat)
        rows.append({"command": name, "target_s": target, **r})
        print(f"{name:<42} median {r['median_s']:.3f} s  min {r['min_s']:.3f} s"
              + (f"  (target {target} s: {'met' if r['median_s'] < target else 'MISSED'})" if target else ""))
    shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()[0]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, load average {load:.2f} when finished"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "startup.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1) + "\n")
    lines = ["# Start-up: whole-process wall time", "",
             f"`python benchmarks/speed/startup.py --repeat {args.repeat}` on {machine}.", "",
             "| command | median s | fastest s | target s |", "|---|---|---|---|"]
    for r in rows:
        met = "" if r["target_s"] is None else (" (met)" if r["median_s"] < r["target_s"] else " (missed)")
        lines.append(f"| `{r['command']}` | {r['median_s']:.3f} | {r['min_s']:.3f} | "
                     f"{'' if r['target_s'] is None else r['target_s']}{met} |")
    (args.out / "startup.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out / 'startup.md'}")


if __name__ == "__main__":
    main()
