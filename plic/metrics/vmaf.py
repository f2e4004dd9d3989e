"""VMAF (Netflix, model vmaf_v0.6.1) of a still image, through ffmpeg's libvmaf.

The ffmpeg bundled in the PyPI package ``imageio-ffmpeg`` is built with
libvmaf and its built-in models, so no model file or network is needed. Both
images become one-frame videos in 4:4:4 YUV (BT.601, as ffmpeg's default RGB
conversion; VMAF's features read luma only) and are scored as one frame.
``PLIC_FFMPEG`` names another ffmpeg with libvmaf.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from plic.errors import PlicError


@functools.lru_cache(maxsize=None)
def ffmpeg_with_vmaf() -> str:
    exe = os.environ.get("PLIC_FFMPEG")
    if not exe:
        try:
            import imageio_ffmpeg
        except ImportError as exc:
            raise PlicError("VMAF needs ffmpeg with libvmaf: pip install imageio-ffmpeg") from exc
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    res = subprocess.run([exe, "-hide_banner", "-filters"], capture_output=True, text=True)
    if "libvmaf" not in res.stdout:
        raise PlicError(f"{exe} has no libvmaf filter; VMAF needs the ffmpeg of imageio-ffmpeg")
    return exe


def vmaf(ref: np.ndarray, dist: np.ndarray, model: str = "vmaf_v0.6.1") -> float:
    """VMAF score (0..100, higher is better) of ``dist`` against ``ref`` (HxWx3 uint8).

    Odd sizes are cropped to even ones (4:2:0 is not used, but libvmaf wants even planes).
    """
    h, w = ref.shape[0] & ~1, ref.shape[1] & ~1
    if h == 0 or w == 0:
        return float("nan")
    with tempfile.TemporaryDirectory() as tmp:
        r, d, log = Path(tmp, "ref.png"), Path(tmp, "dist.png"), Path(tmp, "vmaf.json")
        Image.fromarray(ref[:h, :w]).save(r)
        Image.fromarray(dist[:h, :w]).save(d)
        graph = (f"[0:v]format=yuv444p[d];[1:v]format=yuv444p[r];"
                 f"[d][r]libvmaf=model=version={model}:log_fmt=json:log_path={log.as_posix()}:n_threads=2")
        cmd = [ffmpeg_with_vmaf(), "-hide_banner", "-loglevel", "error", "-nostdin",
               "-i", str(d), "-i", str(r), "-lavfi", graph, "-f", "null", "-"]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0 or not log.is_file():
            last = (res.stderr.strip().splitlines() or ["no output"])[-1]
            raise PlicError(f"ffmpeg libvmaf failed: {last}")
        report = json.loads(log.read_text())
    return float(report["pooled_metrics"]["vmaf"]["mean"])


def vmaf_batch(refs: np.ndarray, dists: np.ndarray, model: str = "vmaf_v0.6.1") -> np.ndarray:
    """VMAF of many same-sized pairs (N x H x W x 3 uint8) in one ffmpeg process.

    A training step scores a batch of patches; one process per pair would be
    dominated by ffmpeg's start-up. The pairs become frames of one raw video.
    VMAF's motion feature compares each reference frame with its neighbours,
    which would mix unrelated patches, so every pair is sent twice in a row:
    the motion score of each frame (the minimum over its two neighbours) is
    then zero, exactly as for a still image, and each pair scores what
    :func:`vmaf` gives it alone.
    """
    refs, dists = np.asarray(refs, dtype=np.uint8), np.asarray(dists, dtype=np.uint8)
    if refs.shape != dists.shape or refs.ndim != 4 or refs.shape[-1] != 3:
        raise PlicError(f"vmaf_batch needs two N x H x W x 3 arrays of one shape, not {refs.shape} and {dists.shape}")
    n, h, w = refs.shape[0], refs.shape[1] & ~1, refs.shape[2] & ~1
    if n == 0:
        return np.zeros(0)
    if h == 0 or w == 0:
        return np.full(n, np.nan)
    with tempfile.TemporaryDirectory() as tmp:
        r, d, log = Path(tmp, "ref.rgb"), Path(tmp, "dist.rgb"), Path(tmp, "vmaf.json")
        np.repeat(np.ascontiguousarray(refs[:, :h, :w]), 2, axis=0).tofile(r)
        np.repeat(np.ascontiguousarray(dists[:, :h, :w]), 2, axis=0).tofile(d)
        raw = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-framerate", "25"]
        graph = (f"[0:v]format=yuv444p[d];[1:v]format=yuv444p[r];"
                 f"[d][r]libvmaf=model=version={model}:log_fmt=json:log_path={log.as_posix()}:n_threads=2")
        cmd = [ffmpeg_with_vmaf(), "-hide_banner", "-loglevel", "error", "-nostdin",
               *raw, "-i", str(d), *raw, "-i", str(r), "-lavfi", graph, "-f", "null", "-"]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0 or not log.is_file():
            last = (res.stderr.strip().splitlines() or ["no output"])[-1]
            raise PlicError(f"ffmpeg libvmaf failed: {last}")
        frames = json.loads(log.read_text())["frames"]
    scores = np.array([f["metrics"]["vmaf"] for f in frames], dtype=np.float64)
    if scores.size != 2 * n:
        raise PlicError(f"ffmpeg libvmaf scored {scores.size} frames, expected {2 * n}")
    return scores[0::2]
